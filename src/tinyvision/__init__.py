"""tinyvision: the basics of deep learning for vision, as one tested toolkit."""

__version__ = "0.1.0"
