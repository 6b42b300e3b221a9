"""SSIM between maps and the degradation threshold of cascading randomization."""

import numpy as np

from ..errors import CxrsalError

WIN, K1, K2 = 7, 0.01, 0.03
# [A]'s low baseline of repeatability and reproducibility: SSIM 0.5 between two models' maps
LOW_BASELINE = 0.5


def ssim_score(a, b, *, data_range=1.0):
    """Mean structural similarity: uniform 7x7 window, K1 0.01, K2 0.03, sample covariance,
    the border of half a window left out -- scikit-image's `structural_similarity` defaults.

    `data_range` is always explicit: 1.0 for [0, 1] maps; 2.0 reproduces [A]'s published numbers
    (older scikit-image inferred 2 for float images).
    """
    from scipy.ndimage import uniform_filter

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise CxrsalError(f"SSIM of maps of different shapes {a.shape} and {b.shape}: resize them first")
    if min(a.shape) < WIN:
        raise CxrsalError(f"SSIM needs maps of at least {WIN}x{WIN} pixels, got {a.shape}")
    if not data_range or data_range <= 0:
        raise CxrsalError(f"SSIM data_range must be positive, got {data_range}")
    n = WIN ** a.ndim
    cov_norm = n / (n - 1)
    ux, uy = uniform_filter(a, WIN), uniform_filter(b, WIN)
    uxx, uyy, uxy = uniform_filter(a * a, WIN), uniform_filter(b * b, WIN), uniform_filter(a * b, WIN)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (WIN - 1) // 2
    return float(s[tuple(slice(pad, -pad) for _ in s.shape)].mean())


def degradation_threshold(maps, *, pairs_per_image=50, pairs=None, seed=0, data_range=1.0, return_pairs=False,
                          similarity=None):
    """Mean SSIM (or `similarity(a, b)`, sMPRT's Spearman) between the maps of random pairs of
    distinct images (one trained model).

    Default: `pairs_per_image` partners for every image ([A]'s code); `pairs=K`: K pairs in
    all ([A]'s text). A map is never paired with itself; seeded. A pair with a constant map is left
    out of the mean (`defined.pair_similarity`, undefined when "either" is constant: the
    randomized SSIMs the threshold is compared with rest on structured trained maps); NaN when
    every pair is (the caller says why: `defined.threshold_reason`). Without constant maps this
    is [A]'s mean.
    """
    from .defined import pair_similarity

    maps = np.asarray(maps)
    n = len(maps)
    if n < 2:
        raise CxrsalError("the degradation threshold needs maps of at least two images")
    rng = np.random.default_rng(seed)
    if pairs is not None:
        first = rng.integers(0, n, size=int(pairs))
    else:
        first = np.repeat(np.arange(n), int(pairs_per_image))
    # partner uniformly among the n - 1 others
    second = (first + rng.integers(1, n, size=first.size)) % n
    ssim = similarity or (lambda a, b: ssim_score(a, b, data_range=data_range))
    values = np.array([pair_similarity(maps[i], maps[j], ssim, sides=("first", "second"), undefined_when="either")[0]
                       for i, j in zip(first, second)])
    mean = float(np.mean(values[np.isfinite(values)])) if np.isfinite(values).any() else float("nan")
    return (mean, np.stack([first, second], 1), values) if return_pairs else mean
