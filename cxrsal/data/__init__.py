"""Data layer: image reading, SIIM RLE, RSNA/SIIM/folder/COCO labels, splits, cache and the tf.data pipeline."""

from . import coco, folder, rsna, siim  # noqa: F401  (register the datasets)
from .items import DATASETS
from .masks import boxes_to_mask

__all__ = ["DATASETS", "boxes_to_mask"]
