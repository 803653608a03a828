"""``python -m onnx2tflite`` runs the command line."""
import sys

from onnx2tflite.cli import main

sys.exit(main())
