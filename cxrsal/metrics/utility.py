"""The utility metrics `cxrsal score` gives each map of a positive image, one registered record
each: its function, its display name, and how scoring treats it.

Adding a metric is one registration here (and its check against a reference in
tests/test_registries.py): the score table, the summary and the printed lines follow the registry.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..registry import Registry
from .localization import auprc_score, auroc_score, iou_score, pointing_hit

UTILITY_METRICS = Registry("utility metric")


@dataclass(frozen=True)
class UtilityMetric:
    """One utility metric of a map against its ground-truth mask.

    `fn(mask, smap)` -> float, or `fn(mask, smap, threshold)` for a `tuned` metric: one whose
    threshold is tuned on the validation split's maps of the same model (CheXlocalize, Saporta et
    al. 2022: the threshold of highest mean IoU, `tune_threshold`), never on the images scored;
    a tuned metric reads the map on [0, 1] (where thresholds are tuned), the others any monotone
    copy of it (the store's integers rank pixels exactly). `localization`: a column of the
    localization table as clinicians read it (the lines `cxrsal score` prints, the study's
    localization table). `order`: position in tables and printed lines."""
    name: str
    label: str
    fn: Callable
    order: int
    tuned: bool = False
    localization: bool = False


def register_metric(name, label, order, **kw):
    """Decorator: register `fn` as the utility metric `name` (see `UtilityMetric`)."""
    def deco(fn):
        UTILITY_METRICS.register(name)(UtilityMetric(name=name, label=label, fn=fn, order=order, **kw))
        return fn
    return deco


def utility_metrics(*, tuned=None, localization=None):
    """The registered metrics in table order; `tuned` / `localization` True or False keep those
    that are (or are not)."""
    found = [UTILITY_METRICS.get(n) for n in UTILITY_METRICS.names()]
    return sorted((m for m in found if (tuned is None or m.tuned == tuned)
                   and (localization is None or m.localization == localization)), key=lambda m: (m.order, m.name))


def utility_scores(mask, smap, *, threshold=None, unit_map=None):
    """{name: value} of one map of a positive image, in table order: every metric that needs no
    threshold, and the tuned ones when `threshold` is given (on `unit_map`, the map on [0, 1];
    `smap` when None)."""
    out = {}
    for m in utility_metrics():
        if not m.tuned:
            out[m.name] = m.fn(mask, smap)
        elif threshold is not None:
            out[m.name] = m.fn(mask, smap if unit_map is None else unit_map, threshold)
    return out


@register_metric("auprc", "AUPRC", 0, localization=True)
def auprc(mask, smap):
    """Average precision of the pixels ranked by the map (scikit-learn's definition)."""
    return auprc_score(mask, smap)


@register_metric("auprc_trapezoid", "AUPRC (trapezoid)", 1)
def auprc_trapezoid(mask, smap):
    """AUPRC by the trapezoid rule, as [A]'s code computed it."""
    return auprc_score(mask, smap, method="trapezoid")


@register_metric("auroc", "AUROC", 2)
def auroc(mask, smap):
    """Area under the pixels' ROC curve; NaN when the mask covers the whole image."""
    return auroc_score(mask, smap) if not np.asarray(mask).all() else float("nan")


@register_metric("hit", "hit rate", 3, localization=True)
def hit(mask, smap):
    """CheXlocalize's pointing game: 1.0 when the map's maximum lies in the mask."""
    return float(pointing_hit(mask, smap))


@register_metric("iou", "mIoU", 4, tuned=True, localization=True)
def iou(mask, smap, threshold):
    """CheXlocalize's IoU of the map thresholded at the threshold tuned on validation maps."""
    return iou_score(mask, smap, threshold=threshold)
