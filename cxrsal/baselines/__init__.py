"""High baselines of [A]: a U-Net segmentation network (and, to come, RetinaNet detection)."""
