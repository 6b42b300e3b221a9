"""Metrics of localization (the registered utility metrics, `UTILITY_METRICS`), similarity and
complexity, and their bootstrap intervals (NumPy, SciPy and pandas; no TensorFlow).

Functions in the scikit-learn style: truth first, options keyword-only, `*_score` when higher
is better.
"""

from .bootstrap import bootstrap_ap_ci, bootstrap_auc_ci, bootstrap_indices, bootstrap_mean_ci, paired_intervals
from .complexity import emprt_table, explanation_entropy
from .detection import (argmax_points, box_heatmap, pointwise_average_precision, pointwise_hits, points_in_boxes,
                        points_in_masks)
from .faithfulness import (FaithfulnessCurves, class_probability, curve_area, deletion_batch, faithfulness_curves,
                           gaussian_blur, impute, insertion_batch, relevance_order, road_batch)
from .localization import (auprc_score, auroc_score, average_mask, iou_score, miou_curve, pointing_hit,
                           precision_recall_points, tune_threshold)
from .similarity import degradation_threshold, ssim_score
from .utility import UTILITY_METRICS, UtilityMetric, register_metric, utility_metrics, utility_scores

__all__ = ["explanation_entropy", "emprt_table", "paired_intervals", "auprc_score", "auroc_score", "average_mask", "precision_recall_points", "ssim_score",
           "degradation_threshold", "box_heatmap", "pointwise_average_precision", "pointwise_hits",
           "argmax_points", "points_in_boxes", "points_in_masks", "pointing_hit", "iou_score", "miou_curve",
           "tune_threshold", "bootstrap_indices", "bootstrap_mean_ci", "bootstrap_ap_ci", "bootstrap_auc_ci",
           "UTILITY_METRICS", "UtilityMetric", "register_metric", "utility_metrics", "utility_scores",
           "FaithfulnessCurves", "class_probability", "curve_area", "deletion_batch", "faithfulness_curves",
           "gaussian_blur", "impute", "insertion_batch", "relevance_order", "road_batch"]
