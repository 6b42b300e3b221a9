"""Data layer: DICOM reading, SIIM RLE, RSNA/SIIM labels, splits, cache and the tf.data pipeline."""

from .masks import boxes_to_mask

__all__ = ["boxes_to_mask"]
