"""Training with tf.distribute: strategy choice, the resumable fit loop, evaluation."""

from . import classifier  # noqa: F401  (registers the classification task in cxrsal.runs.TASKS)
