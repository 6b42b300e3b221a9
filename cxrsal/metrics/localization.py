"""Localization utility: every pixel a sample, the mask its label, the map its score.

Pixels are grouped by distinct score (as scikit-learn's thresholds): an integer map (the
store's uint16 maps) is counted with `bincount` in O(n); a float map is sorted once.
"""

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
