"""Explanation complexity, the quantity of eMPRT (Hedstroem et al. 2023, "Sanity checks
revisited: an exploration to repair the model parameter randomisation test").

eMPRT replaces MPRT's similarity by the rise in complexity from the trained to the fully
randomized model: a map that explains a model that learnt something concentrates on few values;
the same method on a randomized model should spread them.

Two complexities (`emprt.complexity`):

- ``histogram`` (the authors' default, their code's ``discrete_entropy``): the Shannon entropy
  of the histogram of the raw map's values (`histogram_entropy`), with equal-width bins over
  the map's own range; the number of bins is fixed (`emprt.bins`, 100) or a bin rule's
  (`bin_count`), chosen once per method over the trained model's maps;
- ``spatial``: the entropy of the normalized |map| over its pixels (`explanation_entropy`).

The score per image is the relative rise (H_random - H_trained) / H_trained (`defined.relative_rise`).
"""

import math

import numpy as np

from ..config_schema import BIN_RULES, COMPLEXITIES  # noqa: F401  (emprt.bins' rules, emprt.complexity's names)
from .defined import MIN_IMAGES, UNDEFINED, constant_reason, counted, joined, relative_rise, too_few

# every rule's count of bins is clipped to these (the authors' limits)
BIN_LIMITS = (10, 200)
DEFAULT_BINS = 100


def histogram_entropy(smap, bins=DEFAULT_BINS):
    """Shannon entropy (nats) of the histogram of a map's values: `bins` equal-width bins over
    the map's own min..max (`np.histogram`), p_k = count_k / pixels, H = - sum_k p_k ln p_k.

    No absolute value and no normalization (the authors' `discrete_entropy`): 0 for a constant
    map (one bin holds every value), ln 2 for a map of two values in equal halves, ln(bins) for
    values spread evenly over every bin. NaN for a map with a non-finite value.

    >>> histogram_entropy([[0.0, 0.0], [1.0, 1.0]]) == float(np.log(2))
    True
    >>> histogram_entropy(np.full((3, 3), -2.0))
    0.0
    """
    a = np.asarray(smap, np.float64).ravel()
    if a.size == 0 or not np.isfinite(a).all():
        return float("nan")
    counts, _ = np.histogram(a, bins=int(bins))
    p = counts[counts > 0] / a.size
    return float(-(p * np.log(p)).sum()) + 0.0      # + 0.0: one bin gives 0.0, not -0.0


def bin_count(values, rule, pixels, limits=BIN_LIMITS):
    """The number of histogram bins a rule gives, clipped to `limits` (10..200).

    `values`: every value of the trained model's maps of one method (their spread: IQR, standard
    deviation, range); `pixels`: n, the number of values in one map (what one histogram holds).
    The textbook rules, k = ceil(range / h) for the width rules:

    - freedman-diaconis: h = 2 IQR / n^(1/3)
    - scott: h = (24 sqrt(pi))^(1/3) sigma / n^(1/3) (= 3.49 sigma / n^(1/3))
    - sqrt: k = ceil(sqrt(n)); sturges: k = ceil(log2 n) + 1; rice: k = ceil(2 n^(1/3))

    A width of 0 with values that spread (an IQR of 0: more than half the values equal) is the
    upper limit; values that do not spread give the lower one. (The authors' code passes the
    array's number of dimensions as n, which sends sqrt, Sturges and Rice to the lower limit.)

    >>> bin_count(np.arange(4096.0), "sqrt", 4096), bin_count(np.arange(4096.0), "sturges", 4096)
    (64, 13)
    """
    lo, hi = limits
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    n = int(pixels)
    if n < 1:
        raise ValueError("bin_count: a map of at least one pixel")
    spread = float(v.max() - v.min()) if v.size else 0.0
    if rule in ("freedman-diaconis", "scott"):
        if rule == "freedman-diaconis":
            q75, q25 = np.percentile(v, [75, 25]) if v.size else (0.0, 0.0)
            width = 2.0 * (q75 - q25) / n ** (1 / 3)
        else:
            width = (24 * math.sqrt(math.pi)) ** (1 / 3) * (float(v.std()) if v.size else 0.0) / n ** (1 / 3)
        if spread <= 0:
            k = lo
        elif width <= 0:
            k = hi
        else:
            k = math.ceil(spread / width)
    elif rule == "sqrt":
        k = math.ceil(math.sqrt(n))
    elif rule == "sturges":
        k = math.ceil(math.log2(n)) + 1
    elif rule == "rice":
        k = math.ceil(2 * n ** (1 / 3))
    else:
        raise ValueError(f"bin rule {rule!r}: one of {', '.join(BIN_RULES)}")
    return int(min(max(k, lo), hi))


def bins_for(trained_maps, bins):
    """`emprt.bins` resolved for one method: a count as given, a rule (`bin_count`) over the
    trained model's maps of the method (2-D maps, all of one size)."""
    if not isinstance(bins, str):
        return int(bins)
    maps = [np.asarray(m, np.float64) for m in trained_maps]
    return bin_count(np.concatenate([m.ravel() for m in maps]), bins, maps[0].size)


def explanation_entropy(smap):
    """The ``spatial`` complexity: Shannon entropy (nats) of the normalized absolute map:

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
    return float(-(p * np.log(p)).sum()) + 0.0      # + 0.0: one pixel gives 0.0, not -0.0


def emprt_table(table, alpha=0.05, min_images=MIN_IMAGES):
    """eMPRT per method: complexity of the trained model's maps against the fully randomized
    model's, paired by (model, image); PASS when it rises significantly (Wilcoxon signed-rank,
    one-sided "greater", p < alpha), under the rule of `defined`:

    - a pair with an undefined complexity (a ``spatial`` one of an all-zero map) is left out
      (`undefined` counts them, `left_out` says which side);
    - a pair whose trained complexity is 0 (a constant map's ``histogram`` entropy) is a rise
      relative to 0, undefined, and left out too;
    - fewer than `min_images` images with a defined pair make the result "undefined", with its
      `reason`;
    - identical complexities above 0 (maps that did not move) are a defined rise of 0, p = 1: FAIL.

    `rise` is eMPRT's score, the mean over the defined pairs of the relative rise
    (H_random - H_trained) / H_trained (> 0: more complex; `defined.relative_rise`).
    """
    import pandas as pd
    from scipy.stats import wilcoxon

    c = table[table.metric == "complexity"]
    rows = []
    for method, d in c.groupby("method", sort=False):
        last = d.groupby("model")["step"].transform("max")
        pairs = (d[d.step == 0].set_index(["model", "image_id"]).value.to_frame("trained")
                 .join(d[d.step == last].set_index(["model", "image_id"]).value.rename("randomized"), how="inner"))
        why = [constant_reason(np.isnan(t), np.isnan(r)).replace("maps constant", "complexities undefined")
               .replace("map constant", "complexity undefined")
               or ("rise relative to a trained complexity of 0" if t == 0 else "")
               for t, r in zip(pairs.trained, pairs.randomized)]
        ok = pairs[[not w for w in why]]
        images = pairs.index.get_level_values("image_id")
        diff = ok.randomized - ok.trained
        reason = too_few(ok.index.get_level_values("image_id").nunique(), min_images)
        if reason:
            p = float("nan")
            reason = joined(reason, counted(why, images))
        elif (diff == 0).all():
            p = 1.0           # nothing moved: a defined zero rise
        else:
            p = float(wilcoxon(ok.randomized, ok.trained, alternative="greater", zero_method="wilcox").pvalue)
        rise = relative_rise(ok.trained, ok.randomized)
        rows.append(dict(method=method, trained=float(ok.trained.mean()) if len(ok) else float("nan"),
                         randomized=float(ok.randomized.mean()) if len(ok) else float("nan"),
                         rise=float(np.nanmean(rise)) if np.isfinite(rise).any() else float("nan"),
                         n=int(len(ok)), undefined=int(len(pairs) - len(ok)), p_value=p,
                         result=UNDEFINED if reason else ("PASS" if p < alpha else "FAIL"), reason=reason,
                         left_out=counted(why, images)))
    return pd.DataFrame(rows, columns=["method", "trained", "randomized", "rise", "n", "undefined", "p_value",
                                       "result", "reason", "left_out"])
