"""Training with tf.distribute: strategy choice, the resumable fit loop, evaluation."""
