"""Explanation complexity, the quantity of eMPRT (Hedstroem et al. 2023, "Sanity checks
revisited: an exploration to repair the model parameter randomisation test").

eMPRT replaces MPRT's similarity by the rise in complexity from the trained to the randomized
model: a map that explains a model that learnt something concentrates its mass on few pixels;
the same method on a randomized model should spread it.
"""

import numpy as np

from .defined import MIN_IMAGES, UNDEFINED, constant_reason, counted, joined, relative_rise, too_few


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
    return float(-(p * np.log(p)).sum()) + 0.0      # + 0.0: one pixel gives 0.0, not -0.0


def emprt_table(table, alpha=0.05, min_images=MIN_IMAGES):
    """eMPRT per method: complexity of the trained model's maps against the fully randomized
    model's, paired by (model, image); PASS when it rises significantly (Wilcoxon signed-rank,
    one-sided "greater", p < alpha), under the rule of `defined`: a pair with an all-zero map has
    no complexity and is left out (`undefined` counts them, `left_out` says which side); fewer
    than `min_images` images with a defined pair make the result "undefined" with its `reason`;
    a pair whose trained complexity is 0 and randomized one is not is a rise relative to 0,
    undefined, and left out too; identical complexities (maps that did not move) are a defined
    rise of 0, p = 1: FAIL. `rise` is the mean ratio randomized / trained (eMPRT's score, > 1 =
    more complex) over the defined pairs (`defined.relative_rise`)."""
    import pandas as pd
    from scipy.stats import wilcoxon

    c = table[table.metric == "complexity"]
    rows = []
    for method, d in c.groupby("method", sort=False):
        last = d.groupby("model")["step"].transform("max")
        pairs = (d[d.step == 0].set_index(["model", "image_id"]).value.to_frame("trained")
                 .join(d[d.step == last].set_index(["model", "image_id"]).value.rename("randomized"), how="inner"))
        why = [constant_reason(np.isnan(t), np.isnan(r)).replace("constant", "all zero")
               or ("rise relative to a trained complexity of 0" if t == 0 and r != 0 else "")
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
        ratio = relative_rise(ok.trained, ok.randomized)
        rows.append(dict(method=method, trained=float(ok.trained.mean()) if len(ok) else float("nan"),
                         randomized=float(ok.randomized.mean()) if len(ok) else float("nan"),
                         rise=float(np.nanmean(ratio)) if np.isfinite(ratio).any() else float("nan"),
                         n=int(len(ok)), undefined=int(len(pairs) - len(ok)), p_value=p,
                         result=UNDEFINED if reason else ("PASS" if p < alpha else "FAIL"), reason=reason,
                         left_out=counted(why, images)))
    return pd.DataFrame(rows, columns=["method", "trained", "randomized", "rise", "n", "undefined", "p_value",
                                       "result", "reason", "left_out"])
