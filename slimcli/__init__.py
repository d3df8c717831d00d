"""slimcli: the TF-Slim image-classification toolkit on TensorFlow 2."""

__version__ = "0.1.0"
