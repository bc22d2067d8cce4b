"""shapecheck: find shape bugs in PyTorch models before anything runs."""

__version__ = "0.1.0"
__all__ = ["__version__"]
