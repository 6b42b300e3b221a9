"""Metrics of localization and similarity (NumPy and SciPy only, no TensorFlow).

Functions in the scikit-learn style: truth first, options keyword-only, `*_score` when higher
is better.
"""

from .detection import (argmax_points, box_heatmap, pointwise_average_precision, pointwise_hits, points_in_boxes,
                        points_in_masks)
from .localization import auprc_score, auroc_score, average_mask, precision_recall_points
from .similarity import degradation_threshold, ssim_score

__all__ = ["auprc_score", "auroc_score", "average_mask", "precision_recall_points", "ssim_score",
           "degradation_threshold", "box_heatmap", "pointwise_average_precision", "pointwise_hits",
           "argmax_points", "points_in_boxes", "points_in_masks"]
