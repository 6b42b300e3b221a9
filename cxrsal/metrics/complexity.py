"""Explanation complexity, the quantity of eMPRT (Hedstroem et al. 2023, "Sanity checks
revisited: an exploration to repair the model parameter randomisation test").

eMPRT replaces MPRT's similarity by the rise in complexity from the trained to the randomized
model: a map that explains a model that learnt something concentrates its mass on few pixels;
the same method on a randomized model should spread it.
"""

import numpy as np


def explanation_entropy(smap):
    """Shannon entropy (nats) of the normalized absolute map:

        p_i = |a_i| / sum_j |a_j|,    H(a) = - sum_i p_i ln p_i     (0 ln 0 = 0)

    0 for a map with all its mass on one pixel, ln(n) for a map uniform over its n pixels. A map
    of several channels is reduced first (sum of |values| over channels, as the post-processing
    does) by the caller. An all-zero map has no distribution: NaN (counted, never averaged in).

    >>> round(explanation_entropy([[1, 1], [1, 1]]), 6) == round(float(np.log(4)), 6)
    True
    >>> explanation_entropy([[0, 0], [0, 3]])
    0.0
    """
    a = np.abs(np.asarray(smap, np.float64)).ravel()
    total = a.sum()
    if not total > 0 or not np.isfinite(total):
        return float("nan")
    p = a[a > 0] / total
    return float(-(p * np.log(p)).sum())
