"""Model zoo: real-world architectures with seeded random weights, exported to ONNX offline.

    python -m model_zoo.build [names...] [--force] [--sample]
    python -m model_zoo.run [names...] [--quick] [--json PATH]
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
CACHE_DIR = ROOT / ".cache"
SAMPLE_PATH = ROOT / "samples" / "sample_cnn.onnx"
