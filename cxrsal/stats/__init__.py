"""Statistics of [A]: linear mixed-effects models (random intercept per image), Tukey HSD,
and the PASS/FAIL decisions of Table 2."""

import warnings

import numpy as np

ALPHA = 0.05


def mixed_model(df, *, reference, term="method", alpha=ALPHA):
    """value ~ term (treatment coding against `reference`) with a random intercept per image.

    Returns one dict per other level: estimate (level - reference), 95 % CI, p-value (two-sided).
    """
    import statsmodels.formula.api as smf

    df = df[["image_id", term, "value"]].dropna().copy()
    df[term] = df[term].astype(str)
    levels = [l for l in df[term].unique() if l != reference]
    if reference not in set(df[term]) or not levels:
        return []
    formula = f"value ~ C({term}, Treatment(reference={reference!r}))"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = smf.mixedlm(formula, df, groups=df["image_id"]).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError):
            fit = None
    out = []
    for level in levels:
        row = dict(level=level, reference=reference, estimate=float("nan"), ci_low=float("nan"),
                   ci_high=float("nan"), p_value=float("nan"), test="mixedlm")
        if fit is not None:
            key = next((k for k in fit.params.index if k.endswith(f"[T.{level}]")), None)
            if key is not None:
                ci = fit.conf_int(alpha=alpha).loc[key]
                row.update(estimate=float(fit.params[key]), ci_low=float(ci[0]), ci_high=float(ci[1]),
                           p_value=float(fit.pvalues[key]))
        out.append(row)
    return out


def tukey(df, *, term="method", alpha=ALPHA):
    """Tukey HSD over every pair of levels: rows (group1, group2, meandiff, p_adj, lower, upper, reject)."""
    import pandas as pd
    from statsmodels.stats.multicomp import pairwise_tukeyhsd

    df = df[[term, "value"]].dropna()
    if df[term].nunique() < 2:
        return pd.DataFrame(columns=["group1", "group2", "meandiff", "p_adj", "lower", "upper", "reject"])
    res = pairwise_tukeyhsd(df["value"].to_numpy(float), df[term].astype(str).to_numpy(), alpha=alpha)
    table = pd.DataFrame(res.summary().data[1:], columns=["group1", "group2", "meandiff", "p_adj", "lower",
                                                          "upper", "reject"])
    return table


def one_sample(values, threshold, alternative):
    """t-test of the mean of `values` against `threshold` ('greater' or 'less')."""
    from scipy.stats import ttest_1samp

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2 or values.std() == 0:
        return float("nan")
    return float(ttest_1samp(values, threshold, alternative=alternative).pvalue)


def better_than(estimate, p, alpha=ALPHA):
    """PASS when significantly above the (low) baseline."""
    if not np.isfinite(p):
        return "n/a"
    return "PASS" if estimate > 0 and p < alpha else "FAIL"


def not_worse_than(estimate, p, alpha=ALPHA):
    """PASS unless significantly below the (high) baseline."""
    if not np.isfinite(p):
        return "n/a"
    return "FAIL" if estimate < 0 and p < alpha else "PASS"
