"""cxrsal: trustworthiness audit of saliency maps for chest X-ray classifiers (TensorFlow/Keras)."""

__version__ = "0.1.0"
