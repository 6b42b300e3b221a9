"""Raw map -> 2-D map in [0, 1], as [A]: |values| summed over channels, 99th-percentile clip, min-max."""

import numpy as np


def reduce_2d(raw, *, channels):
    """Sum of absolute values over the channel axis for channel maps; 2-D maps pass unchanged
    (XRAI, GradCAM, WILDCAT: no abs)."""
    raw = np.asarray(raw, np.float64)
    return np.abs(raw).sum(axis=-1) if channels else raw


def normalize(map2d, *, percentile=99.0):
    """(map in [0, 1], constant flag). (x - min) / (p99 - min) clipped to [0, 1], then min-max.

    A constant map gives zeros and flag True, never NaN. When the 99th percentile equals the
    minimum (over 99 % of the map at its floor) the clip step is skipped: it would divide by 0.

    >>> # p99 of (0, 1, 2, 4) is 3.94: 4 clips to 1, then min-max changes nothing
    >>> normalize(np.array([[0., 1.], [2., 4.]]))[0].astype(float).round(3).tolist()
    [[0.0, 0.254], [0.508, 1.0]]
    """
    m = np.asarray(map2d, np.float64)
    lo, hi = m.min(), m.max()
    if not np.isfinite(m).all() or hi <= lo:
        return np.zeros(m.shape, np.float32), True
    p = np.percentile(m, percentile)
    if p > lo:
        m = np.clip((m - lo) / (p - lo), 0.0, 1.0)
    lo, hi = m.min(), m.max()
    if hi <= lo:
        return np.zeros(m.shape, np.float32), True
    return ((m - lo) / (hi - lo)).astype(np.float32), False


def postprocess(raw, *, channels):
    return normalize(reduce_2d(raw, channels=channels))
