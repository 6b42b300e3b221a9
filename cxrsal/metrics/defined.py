"""When a statistic is defined: the one rule behind every verdict, so that no PASS or FAIL comes
from arithmetic on nothing (docs/statistics.md, "Undefined verdicts").

Per image:

- a **similarity** (SSIM) of two maps is undefined when there is no structure to compare: the
  reference map constant (the trained model's in cascading randomization, the true model's in
  data randomization), or both maps constant (two replicates, two images); a constant map is
  what the post-processing turns into zeros. A structured map against a constant one is defined
  (the structure was lost, or the two models disagree) and low. A rank correlation (Spearman)
  needs spread on both sides. Two identical non-constant maps are *defined*, with similarity 1
  (a map that does not depend on the model is a defined FAIL of a randomization check, never an
  undefined one);
- a **complexity** is undefined where it has no value (the spatial entropy of an all-zero map);
  a **rise** in complexity relative to a complexity of 0 (the histogram entropy of a constant
  map, whatever the randomized map's: 0 / 0 too) is undefined, and its pair left out of eMPRT
  (identical maps of a complexity above 0: a defined rise of 0).

Per question:

- a **degradation threshold** rests on the pairs of distinct images whose trained maps both have
  structure (as the randomized SSIMs it is compared with rest on structured trained maps), and
  is undefined when fewer than `min_images` images have a non-constant map;
- a **test** rests on the images whose values are defined: undefined below `min_images`
  (`MIN_IMAGES`, the config key `stats.min_images`);
- a test whose values have **no spread** is decided at its limit: p = 1 when every value equals
  the reference (no difference), p = 0 when every value lies on the same side of it by the same
  amount (the t statistic is infinite);
- a **mixed model** that did not converge falls back to a paired t-test (said in the `test`
  column); a **bootstrap interval** needs two images.

A verdict built on an undefined statistic is `UNDEFINED`, with the reason; a reason names what
was undefined and on how many of how many images ("trained map constant on 2 of 2 images").
"""

from collections import Counter

import numpy as np

from ..config_schema import MIN_IMAGES     # noqa: F401  (the default of stats.min_images: 5)

UNDEFINED = "undefined"
UNDEFINED_WHEN = ("reference", "both", "either")
TIE = 1e-12        # values closer than this (relative) are equal: float round-off, not spread


def is_constant(m):
    """True for a map without structure: every value equal, empty, or not finite (what the
    post-processing flags and turns into zeros).

    >>> is_constant([[0, 0], [0, 0]]), is_constant([[0, 1], [0, 0]])
    (True, False)
    """
    a = np.asarray(m, np.float64)
    return bool(a.size == 0 or not np.isfinite(a).all() or a.max() == a.min())


def constant_reason(a_constant, b_constant, sides=("trained", "randomized")):
    """Why a similarity of two maps is undefined ("" when it is defined).

    >>> constant_reason(True, False), constant_reason(True, True), constant_reason(False, False)
    ('trained map constant', 'both maps constant', '')
    """
    if a_constant and b_constant:
        return "both maps constant"
    if a_constant or b_constant:
        return f"{sides[0] if a_constant else sides[1]} map constant"
    return ""


def pair_similarity(a, b, measure, sides=("trained", "randomized"), undefined_when="both"):
    """(value, reason) of `measure(a, b)` under the rule: NaN and the reason when a constant map
    leaves nothing to compare; exactly 1.0 for identical maps; else the measure.

    `undefined_when`: "reference" (cascading and data randomization: the first map, the trained or
    true model's, must have structure; a structured map that became constant lost its structure, a
    defined low similarity), "both" (two maps of equal standing, two replicates or two images: one
    constant map against a structured one is a defined disagreement), "either" (a rank
    correlation, which needs spread on both sides).

    >>> pair_similarity([[0, 1], [2, 3]], [[0, 1], [2, 3]], lambda a, b: 0.5)
    (1.0, '')
    >>> pair_similarity([[0, 0], [0, 0]], [[0, 1], [2, 3]], lambda a, b: 0.5, undefined_when="reference")
    (nan, 'trained map constant')
    >>> pair_similarity([[0, 1], [2, 3]], [[0, 0], [0, 0]], lambda a, b: 0.02, undefined_when="reference")
    (0.02, '')
    """
    if undefined_when not in UNDEFINED_WHEN:
        raise ValueError(f"undefined_when {undefined_when!r}: one of {', '.join(UNDEFINED_WHEN)}")
    ca, cb = is_constant(a), is_constant(b)
    undefined = {"both": ca and cb, "reference": ca, "either": ca or cb}[undefined_when]
    if undefined:
        return float("nan"), constant_reason(ca, cb, sides)
    if np.array_equal(np.asarray(a), np.asarray(b)):
        return 1.0, ""
    return float(measure(a, b)), ""


def relative_rise(trained, randomized):
    """eMPRT's score per pair, (randomized - trained) / trained complexity: NaN where the trained
    complexity is 0 (a rise relative to 0, the randomized one 0 too: 0 / 0) or either is undefined.

    >>> relative_rise([1.0, 0.0, 0.0, 2.0], [1.5, 0.0, 0.3, float("nan")]).tolist()
    [0.5, nan, nan, nan]
    """
    t = np.asarray(trained, np.float64)
    r = np.asarray(randomized, np.float64)
    out = np.full(t.shape, np.nan)
    ok = np.isfinite(t) & np.isfinite(r)
    pos = ok & (t > 0)
    out[pos] = (r[pos] - t[pos]) / t[pos]
    return out


def counted(reasons, images):
    """The reasons of the undefined values, each with the number of distinct images it struck among
    all of `images` (the image id of each value: replicates share their images), most frequent
    first.

    >>> counted(["trained map constant", "", "trained map constant"], ["a", "b", "c"])
    'trained map constant on 2 of 3 images'
    >>> counted(["trained map constant", "trained map constant", ""], ["a", "a", "b"])   # two models
    'trained map constant on 1 of 2 images'
    """
    images = list(images)
    struck = {}
    for r, i in zip(reasons, images):
        if r:
            struck.setdefault(r, set()).add(i)
    total = len(set(images))
    return "; ".join(f"{r} on {len(s)} of {total} images"
                     for r, s in sorted(struck.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def too_few(n, min_images=MIN_IMAGES, what="images"):
    """The reason a question on `n` images is undefined ("" when n >= min_images).

    >>> too_few(2, 5), too_few(5, 5)
    ('n = 2 < 5 images', '')
    """
    return f"n = {int(n)} < {int(min_images)} {what}" if int(n) < int(min_images) else ""


def threshold_reason(n_images, n_constant, min_images=MIN_IMAGES):
    """Why a degradation threshold from `n_images` trained maps, `n_constant` of them constant, is
    undefined ("" when at least `min_images` maps are non-constant): the constant maps, and too
    few images where those are the cause.

    >>> threshold_reason(2, 2, 5)
    'trained maps constant on 2 of 2 images; n = 2 < 5 images'
    >>> threshold_reason(3, 0, 5), threshold_reason(9, 1, 5), threshold_reason(6, 3, 5)
    ('n = 3 < 5 images', '', 'trained maps constant on 3 of 6 images')
    """
    least = max(int(min_images), 2)
    if int(n_images) - int(n_constant) >= least:
        return ""
    return joined(f"trained maps constant on {int(n_constant)} of {int(n_images)} images" if n_constant else "",
                  too_few(n_images, least))


def no_spread_p(values, reference):
    """The p-value of a test of `values` (no spread) against `reference` at its limit: 1.0 when
    every value equals it, 0.0 otherwise (the t statistic is infinite); None when there is spread.
    Equal means equal up to float round-off (`TIE`, relative to the values' magnitude): differences
    of sums that are equal by construction are.

    >>> no_spread_p([1.0, 1.0], 1.0), no_spread_p([1.0, 1.0], 0.5), no_spread_p([1.0, 2.0], 0.5)
    (1.0, 0.0, None)
    >>> no_spread_p([0.8 - 0.3, 0.5], 0.0)
    0.0
    """
    v = np.asarray(values, np.float64)
    if len(v) == 0:
        return None
    tie = TIE * max(1.0, float(np.abs(v).max()), abs(float(reference)))
    if v.max() - v.min() > tie:
        return None
    return 1.0 if abs(float(v.mean()) - float(reference)) <= tie else 0.0


def texts(frame, column):
    """The reasons in `column` of a table, one per row: "" where empty, missing (NaN: a CSV column
    of empty reasons reads as numbers) or where the table has no such column.

    >>> import pandas as pd
    >>> texts(pd.DataFrame({"reason": [float("nan"), "n = 2 < 5 images"]}), "reason")
    ['', 'n = 2 < 5 images']
    """
    if column not in frame.columns:
        return [""] * len(frame)
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in frame[column]]


def joined(*reasons):
    """Non-empty reasons joined by "; "."""
    return "; ".join(r for r in reasons if r)
