"""Image-level bootstrap confidence intervals of a metric over a test set.

What is resampled is the images: replicate r draws n images with replacement (row r of
`bootstrap_indices(n, replicates=, seed=)`, NumPy's `default_rng(seed)`), and the metric is
recomputed on them. The interval is the percentile interval of the replicates' values
((1 - level) / 2 and 1 - (1 - level) / 2, NumPy's linear percentile). A replicate whose metric
is undefined (all its values NaN, no positive image, a single class) is dropped. Every method
scored on the same images shares the same replicate index sets (paired resampling): with one
seed, the interval of method A and of method B come from the very same image sets, so their
difference is resampled as a pair. Fewer than two images give a NaN interval.

All replicates are computed at once, without sorting them: a replicate is a row of a count
matrix [replicates, n] (how many times it drew each image); the mean is a matrix product, and
AP and AUC come from the counts per distinct score (images sorted once).
"""

import warnings

import numpy as np

from ..errors import CxrsalError


def bootstrap_indices(n, *, replicates=1000, seed=0):
    """The images each replicate draws: int array [replicates, n], row r the r-th resample.

    >>> bootstrap_indices(4, replicates=2, seed=0).shape
    (2, 4)
    """
    if int(n) < 1:
        raise CxrsalError(f"a bootstrap needs at least one image, got {n}")
    if int(replicates) < 1:
        raise CxrsalError(f"bootstrap replicates must be at least 1, got {replicates}")
    return np.random.default_rng(seed).integers(0, int(n), size=(int(replicates), int(n)))


def _draw_counts(n, replicates, seed):
    """How many times each replicate drew each image: int64 [replicates, n] (rows sum to n)."""
    idx = bootstrap_indices(n, replicates=replicates, seed=seed)
    idx += n * np.arange(idx.shape[0])[:, None]                     # in place: one bin range per row
    return np.bincount(idx.ravel(), minlength=idx.size).reshape(idx.shape)


def _interval(stats, level, shape):
    """Percentile interval over axis 0 of `stats` [replicates, m], NaN replicates dropped."""
    if not 0 < level < 1:
        raise CxrsalError(f"confidence level must lie strictly between 0 and 1, got {level}")
    q = 100 * np.array([(1 - level) / 2, 1 - (1 - level) / 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # a metric with no defined replicate: NaN
        low, high = np.nanpercentile(stats, q, axis=0)
    low, high = low.reshape(shape), high.reshape(shape)
    return (float(low), float(high)) if not shape else (low, high)


def _nan_interval(shape):
    nan = np.full(shape, np.nan)
    return (float(nan), float(nan)) if not shape else (nan, nan.copy())


def bootstrap_mean_ci(values, *, replicates=1000, seed=0, level=0.95):
    """Percentile interval of the mean of per-image `values` [..., n] (images on the last axis).

    NaN values are ignored (as `np.nanmean`); a replicate that drew only NaN is dropped.
    Returns (low, high) of shape [...]: floats for one method, arrays for several, all from the
    same replicate image sets.

    >>> low, high = bootstrap_mean_ci([0.2, 0.4, 0.6, 0.8], replicates=200)
    >>> bool(0.2 <= low < 0.5 < high <= 0.8)
    True
    """
    values = np.asarray(values, np.float64)
    if values.ndim == 0:
        raise CxrsalError("bootstrap_mean_ci needs per-image values, got a scalar")
    shape, n = values.shape[:-1], values.shape[-1]
    if np.isinf(values).any():
        raise CxrsalError("bootstrap_mean_ci: values must be finite or NaN (missing)")
    if n < 2:
        return _nan_interval(shape)
    flat = values.reshape(-1, n)
    missing = np.isnan(flat)
    counts = _draw_counts(n, replicates, seed).astype(np.float64)
    # small integer counts times values: sums as exact as a loop; NaN drawn k times adds 0 k times
    sums = counts @ np.where(missing, 0.0, flat).T
    drawn = counts @ (~missing).T.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(drawn > 0, sums / drawn, np.nan)
    return _interval(means, level, shape)


def _groups(scores, descending):
    """Image order by score and the start of each run of equal scores in it."""
    order = np.argsort(-scores if descending else scores, kind="stable")
    s = scores[order]
    return order, np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]


def _replicate_ap(counts, labels, scores, tp):
    """Pointwise AP of every replicate [replicates]: counts per distinct score, highest first."""
    order, starts = _groups(scores, descending=True)
    c = counts[:, order]
    drawn = np.add.reduceat(c, starts, axis=1)                      # images per threshold
    hits = np.add.reduceat(c * tp[order], starts, axis=1)           # true positives per threshold
    tps, sel = np.cumsum(hits, axis=1), np.cumsum(drawn, axis=1)
    precision = np.divide(tps, sel, out=np.zeros(tps.shape), where=sel > 0)
    positives = counts @ labels.astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(positives > 0, np.sum(hits * precision, axis=1) / positives, np.nan)


def _replicate_auc(counts, labels, scores):
    """ROC AUC of every replicate [replicates]: Mann-Whitney U from counts per distinct score."""
    order, starts = _groups(scores, descending=False)
    c = counts[:, order]
    pos = np.add.reduceat(c * labels[order], starts, axis=1)
    neg = np.add.reduceat(c, starts, axis=1) - pos
    below = np.cumsum(neg, axis=1) - neg                            # negatives scored strictly lower
    u2 = np.sum(pos * (2 * below + neg), axis=1)                    # 2U, an exact integer
    pairs = 2 * pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, u2 / np.maximum(pairs, 1), np.nan)


def _per_image(labels, *arrays):
    """Labels [n] as bool and the other arrays broadcast together to [..., n]."""
    labels = np.asarray(labels).astype(bool)
    if labels.ndim != 1:
        raise CxrsalError(f"labels must be one per image [n], got shape {labels.shape}")
    try:
        arrays = np.broadcast_arrays(*arrays)
    except ValueError:
        raise CxrsalError(f"per-image arrays of shapes {[np.shape(a) for a in arrays]} do not match") from None
    if arrays[0].ndim == 0 or arrays[0].shape[-1] != labels.size:
        raise CxrsalError(f"{labels.size} labels but per-image arrays of shape {arrays[0].shape}")
    return labels, arrays


def bootstrap_ap_ci(labels, scores, hits, *, replicates=1000, seed=0, level=0.95):
    """Percentile interval of `pointwise_average_precision` under image resampling.

    `labels` [n]; `scores` and `hits` [..., n] (broadcast together: several methods may share
    the classifier's scores). Replicates without a positive image are dropped.

    >>> low, high = bootstrap_ap_ci([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1], [True, True, False, False])
    >>> (low, high)
    (1.0, 1.0)
    """
    labels, (scores, hits) = _per_image(labels, np.asarray(scores, np.float64), np.asarray(hits).astype(bool))
    shape, n = scores.shape[:-1], labels.size
    if n < 2:
        return _nan_interval(shape)
    counts = _draw_counts(n, replicates, seed)
    scores, hits = scores.reshape(-1, n), hits.reshape(-1, n)
    aps = np.stack([_replicate_ap(counts, labels, s, labels & h) for s, h in zip(scores, hits)], axis=1)
    return _interval(aps, level, shape)


def bootstrap_auc_ci(labels, scores, *, replicates=1000, seed=0, level=0.95):
    """Percentile interval of ROC AUC (ties count one half, as sklearn.metrics.roc_auc_score)
    under image resampling. `labels` [n], `scores` [..., n]; single-class replicates are dropped.

    >>> bootstrap_auc_ci([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], replicates=500)[1]
    1.0
    """
    labels, (scores,) = _per_image(labels, np.asarray(scores, np.float64))
    shape, n = scores.shape[:-1], labels.size
    if n < 2:
        return _nan_interval(shape)
    counts = _draw_counts(n, replicates, seed)
    aucs = np.stack([_replicate_auc(counts, labels, s) for s in scores.reshape(-1, n)], axis=1)
    return _interval(aucs, level, shape)


def paired_intervals(table, rows, groups, *, replicates=1000, seed=0, level=0.95):
    """Bootstrap intervals of the mean over images of every `rows` x `groups` cell of a tidy
    `table` (columns `image_id`, `value`, `rows`, `groups`): `ci_low`, `ci_high` beside the
    cells' keys. Per group one matrix [rows, images] (an image's values averaged; NaN where a
    row lacks the image) is resampled at once, so every row of a group gets its interval from
    the same replicate image sets (paired). `replicates` 0: no rows."""
    import pandas as pd

    rows, groups = list(rows), list(groups)
    parts = []
    for key, d in table.groupby(groups, sort=False) if replicates and len(table) else ():
        wide = d.pivot_table(index=rows, columns="image_id", values="value", aggfunc="mean")
        low, high = bootstrap_mean_ci(wide.to_numpy(np.float64), replicates=replicates, seed=seed, level=level)
        parts.append(wide.index.to_frame(index=False).assign(**dict(zip(groups, key)), ci_low=low, ci_high=high))
    if not parts:
        return pd.DataFrame(columns=[*rows, *groups, "ci_low", "ci_high"])
    return pd.concat(parts, ignore_index=True)
