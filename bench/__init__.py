"""bench: export PyTorch models to ONNX and benchmark them across inference runtimes."""

__version__ = "0.1.0"
SCHEMA_VERSION = 5
