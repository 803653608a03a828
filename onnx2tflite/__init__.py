"""onnx2tflite: ONNX -> TFLite (LiteRT) converter and fixer."""
from onnx2tflite.api import ConversionResult, convert
from onnx2tflite.errors import ConversionError, InputShapeError, UnsupportedModelError

__all__ = ["convert", "ConversionResult", "ConversionError", "InputShapeError", "UnsupportedModelError"]
__version__ = "0.1.0"
