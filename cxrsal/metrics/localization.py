"""Localization utility: every pixel a sample, the mask its label, the map its score.

Pixels are grouped by distinct score (as scikit-learn's thresholds): an integer map (the
store's uint16 maps) is counted with `bincount` in O(n); a float map is sorted once.
Also CheXlocalize's pointing game and IoU of a thresholded map, with the threshold tuned on
mean IoU.
"""

import warnings

import numpy as np

from ..errors import CxrsalError

METHODS = ("ap", "trapezoid")


def _check(mask, smap):
    mask = np.asarray(mask).astype(bool).ravel()
    smap = np.asarray(smap).ravel()
    if mask.shape != smap.shape:
        raise CxrsalError(f"mask has {mask.size} pixels but the map has {smap.size}")
    if not mask.any():
        raise CxrsalError("the mask is empty: localization utility is undefined for an image without disease")
    return mask, smap


def _counts(mask, smap):
    """(positives, negatives) per distinct score, from the highest score down."""
    if np.issubdtype(smap.dtype, np.integer) and smap.size and smap.min() >= 0 and smap.max() < 1 << 20:
        pos = np.bincount(smap[mask], minlength=int(smap.max()) + 1)
        allc = np.bincount(smap, minlength=int(smap.max()) + 1)
        keep = allc > 0
        return pos[keep][::-1].astype(np.float64), (allc - pos)[keep][::-1].astype(np.float64)
    order = np.argsort(smap, kind="stable")[::-1]
    s, y = smap[order], mask[order]
    # last index of each run of equal scores (descending)
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    tps = np.cumsum(y)[ends].astype(np.float64)
    fps = (ends + 1 - tps)
    return np.diff(tps, prepend=0.0), np.diff(fps, prepend=0.0)


def precision_recall_points(mask, smap):
    """(precision, recall) at every distinct threshold, highest first (scikit-learn's points)."""
    mask, smap = _check(mask, smap)
    pos, neg = _counts(mask, smap)
    tps, fps = np.cumsum(pos), np.cumsum(neg)
    return tps / (tps + fps), tps / tps[-1]


def auprc_score(mask, smap, *, method="ap"):
    """Area under the precision-recall curve of one map against its mask.

    `ap`: average precision, scikit-learn's definition, sum of (R_n - R_n-1) P_n; `trapezoid`:
    the trapezoid rule over the curve from (recall 0, precision 1), as [A]'s code computed
    (sklearn.metrics.auc(recall, precision)).

    >>> auprc_score([[1, 0], [0, 0]], [[0.9, 0.1], [0.2, 0.3]])
    1.0
    >>> round(auprc_score([[1, 0], [1, 0]], [[0.9, 0.8], [0.1, 0.3]]), 4)   # P = 1 then 2/4
    0.75
    """
    if method not in METHODS:
        raise CxrsalError(f"auprc method {method!r}: valid choices: {', '.join(METHODS)}")
    precision, recall = precision_recall_points(mask, smap)
    if method == "ap":
        return float(np.sum(np.diff(recall, prepend=0.0) * precision))
    p = np.r_[1.0, precision]
    r = np.r_[0.0, recall]
    return float(np.sum(np.diff(r) * (p[1:] + p[:-1]) / 2))


def auroc_score(mask, smap):
    """Area under the ROC curve (ties count one half), as sklearn.metrics.roc_auc_score."""
    mask, smap = _check(mask, smap)
    if mask.all():
        raise CxrsalError("the mask covers the whole image: AUROC needs pixels outside it")
    pos, neg = _counts(mask, smap)
    above = np.cumsum(pos) - pos            # positives scored strictly higher
    return float(np.sum(neg * (above + pos / 2)) / (pos.sum() * neg.sum()))


def average_mask(masks):
    """The average-mask baseline: the pixel-wise mean of ground-truth masks [N, H, W]."""
    masks = np.asarray(masks, np.float64)
    if masks.ndim != 3 or not len(masks):
        raise CxrsalError("average_mask needs a non-empty stack of masks [N, H, W]")
    return masks.mean(axis=0)


# Pointing game and IoU of a thresholded map: the metrics of CheXlocalize (Saporta et al. 2022,
# "Benchmarking saliency methods for chest X-ray interpretation", Nature Machine Intelligence).

def _same_shape(mask, smap):
    mask, smap = np.asarray(mask).astype(bool), np.asarray(smap, np.float64)
    if mask.shape != smap.shape:
        raise CxrsalError(f"mask has shape {mask.shape} but the map has {smap.shape}")
    return mask, smap


def pointing_hit(mask, smap):
    """Pointing game: whether the map's maximum (the first in row-major order) lies in the mask.

    A constant map points nowhere: a miss.

    >>> pointing_hit([[0, 1], [0, 0]], [[0.2, 0.9], [0.9, 0.1]])    # first maximum at (0, 1)
    True
    >>> pointing_hit([[1, 1], [0, 0]], [[0.5, 0.5], [0.5, 0.5]])
    False
    """
    mask, smap = _same_shape(mask, smap)
    if not smap.size or smap.min() == smap.max():
        return False
    return bool(mask.flat[np.argmax(smap)])


def iou_score(mask, smap, *, threshold):
    """Intersection over union of the segmentation (smap >= threshold) with the mask.

    NaN for an empty mask (as CheXlocalize: IoU is taken over images with the finding only).

    >>> iou_score([[1, 1], [0, 0]], [[0.9, 0.2], [0.8, 0.1]], threshold=0.5)   # 1 / 3
    0.3333333333333333
    """
    mask, smap = _same_shape(mask, smap)
    if not mask.any():
        return float("nan")
    pred = smap >= threshold
    return float(np.sum(mask & pred) / np.sum(mask | pred))


def miou_curve(masks, maps, thresholds):
    """Mean IoU over images [T] at every threshold, images without a mask left out (NaN IoU).

    `masks`, `maps`: sequences of same-shaped pairs (images may differ in size). Each map is
    binned once against the sorted thresholds: pixels >= each threshold, in and out of the mask.
    """
    thresholds = np.asarray(thresholds, np.float64).ravel()
    if len(masks) != len(maps):
        raise CxrsalError(f"{len(masks)} masks but {len(maps)} maps")
    if not len(masks) or not thresholds.size:
        raise CxrsalError("miou_curve needs at least one image and one threshold")
    order = np.argsort(thresholds, kind="stable")
    ts, t = thresholds[order], thresholds.size
    ious = np.full((len(masks), t), np.nan)
    for i, (mask, smap) in enumerate(zip(masks, maps)):
        mask, smap = _same_shape(mask, smap)
        if not mask.any():
            continue
        # bin k = number of thresholds <= the pixel: the pixel is >= ts[j] exactly when j < k
        k = np.where(np.isnan(smap), 0, np.searchsorted(ts, smap, side="right")).ravel()
        at_least = np.cumsum(np.bincount(k, minlength=t + 1)[::-1])[::-1][1:]
        inside = np.cumsum(np.bincount(k[mask.ravel()], minlength=t + 1)[::-1])[::-1][1:]
        ious[i, order] = inside / (at_least + mask.sum() - inside)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # no image with a mask: NaN everywhere
        return np.nanmean(ious, axis=0)


def tune_threshold(masks, maps, *, thresholds=None):
    """(threshold, mean IoU) maximizing the mean IoU; ties go to the lowest threshold.

    `thresholds` default: `np.linspace(0, 1, 101)` (maps post-processed to [0, 1]). Tune on
    the validation set, never on test: CheXlocalize tuned the threshold of each saliency
    method on the validation set and applied it to the test set.

    >>> tune_threshold([[[1, 0], [0, 0]]], [[[0.9, 0.6], [0.3, 0.1]]], thresholds=[0.2, 0.5, 0.7, 0.95])
    (0.7, 1.0)
    """
    thresholds = np.linspace(0, 1, 101) if thresholds is None else np.asarray(thresholds, np.float64).ravel()
    curve = miou_curve(masks, maps, thresholds)
    if np.isnan(curve).all():
        raise CxrsalError("tune_threshold: no image has a mask, the mean IoU is undefined")
    best = np.nanmax(curve)
    j = np.flatnonzero(curve == best)
    j = j[np.argmin(thresholds[j])]
    return float(thresholds[j]), float(best)
