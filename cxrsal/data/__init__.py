"""Data layer: DICOM reading, SIIM RLE, RSNA/SIIM labels, splits, cache and the tf.data pipeline."""

from . import rsna, siim  # noqa: F401  (register the datasets)
from .items import DATASETS
from .masks import boxes_to_mask

__all__ = ["DATASETS", "boxes_to_mask"]
