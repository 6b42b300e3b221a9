"""Statistics of [A]: linear mixed-effects models (random intercept per image), post-hoc pairwise
contrasts, and the one PASS rule of Table 2."""

import warnings

import numpy as np

from ..registry import Registry

ALPHA = 0.05
POSTHOC = Registry("post-hoc procedure")   # each procedure says what it is in its `meaning`
POSTHOC_COLUMNS = ("group1", "group2", "meandiff", "p_adj", "lower", "upper", "reject", "test")


def _fit(df, term, reference):
    """REML fit of value ~ C(term) (treatment coding against `reference`) with a random intercept
    per image; None when statsmodels cannot fit it (singular data)."""
    import statsmodels.formula.api as smf

    formula = f"value ~ C({term}, Treatment(reference={reference!r}))"
    with warnings.catch_warnings():
        # convergence / boundary warnings: a failed fit shows up as NaN estimates instead
        warnings.simplefilter("ignore")
        try:
            return smf.mixedlm(formula, df, groups=df["image_id"]).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError):
            return None


def _clean(df, term):
    df = df[["image_id", term, "value"]].dropna().copy()
    df[term] = df[term].astype(str)
    return df


def _coef_name(fit, level):
    return next((k for k in fit.fe_params.index if k.endswith(f"[T.{level}]")), None)


def mixed_model(df, *, reference, term="method", alpha=ALPHA):
    """value ~ term (treatment coding against `reference`) with a random intercept per image.

    Returns
    -------
    list of dict
        One per other level: level, reference, estimate (level - reference), ci_low, ci_high
        (Wald, 1 - alpha), p_value (two-sided Wald z), test.
    """
    df = _clean(df, term)
    levels = [l for l in df[term].unique() if l != reference]
    if reference not in set(df[term]) or not levels:
        return []
    fit = _fit(df, term, reference)
    out = []
    for level in levels:
        row = dict(level=level, reference=reference, estimate=float("nan"), ci_low=float("nan"),
                   ci_high=float("nan"), p_value=float("nan"), test="mixedlm")
        key = _coef_name(fit, level) if fit is not None else None
        if key is not None:
            ci = fit.conf_int(alpha=alpha).loc[key]
            row.update(estimate=float(fit.params[key]), ci_low=float(ci.iloc[0]), ci_high=float(ci.iloc[1]),
                       p_value=float(fit.pvalues[key]))
        out.append(row)
    return out


def _empty_posthoc():
    import pandas as pd

    return pd.DataFrame(columns=list(POSTHOC_COLUMNS))


@POSTHOC.register("mixedlm")
def pairwise_contrasts(df, *, term="method", alpha=ALPHA, adjust="holm"):
    """Every pairwise contrast between the levels of `term` from one fitted mixed model.

    The model is value ~ term with a random intercept per image (as `mixed_model`), so a contrast
    compares the methods' maps *of the same images*. For levels g1 < g2 (sorted), the contrast
    g2 - g1 is b[g2] - b[g1] of the fixed effects (`fit.fe_params`, b = 0 for the reference level);
    its variance is L' C L with C the fixed-effects block of `fit.cov_params()`. Wald z test,
    two-sided; `p_adj` adjusted across all pairs by `adjust` (a `statsmodels.stats.multitest.
    multipletests` method, Holm by default). `lower`/`upper` are Bonferroni simultaneous
    (1 - alpha) intervals, z at 1 - alpha / (2 m) for m pairs: with Holm they are slightly
    conservative, so a rejected pair's interval can (rarely) touch 0.

    Returns
    -------
    pandas.DataFrame
        group1, group2, meandiff (group2 - group1, the sign convention of `tukey`), p_adj, lower,
        upper, reject, test.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame(dict(image_id=[0, 1, 2, 3] * 2, method=["a"] * 4 + ["b"] * 4,
    ...                        value=[0.1, 0.5, 0.3, 0.9, 0.3, 0.72, 0.49, 1.1]))
    >>> t = pairwise_contrasts(df)
    >>> round(float(t.meandiff[0]), 4)       # mean of the paired differences b - a
    0.2025
    """
    import pandas as pd
    from scipy.stats import norm
    from statsmodels.stats.multitest import multipletests

    df = _clean(df, term)
    levels = sorted(df[term].unique())
    if len(levels) < 2:
        return _empty_posthoc()
    pairs = [(a, b) for i, a in enumerate(levels) for b in levels[i + 1:]]
    fit = _fit(df, term, levels[0])
    est = np.full(len(pairs), np.nan)
    se = np.full(len(pairs), np.nan)
    if fit is not None:
        names = list(fit.fe_params.index)
        cov = fit.cov_params().loc[names, names].to_numpy(float)
        beta = fit.fe_params.to_numpy(float)
        col = {lv: names.index(_coef_name(fit, lv)) for lv in levels[1:] if _coef_name(fit, lv) is not None}
        for k, (a, b) in enumerate(pairs):
            if (a != levels[0] and a not in col) or b not in col:
                continue
            contrast = np.zeros(len(names))
            contrast[col[b]] += 1.0
            if a != levels[0]:
                contrast[col[a]] -= 1.0
            est[k] = contrast @ beta
            se[k] = np.sqrt(max(contrast @ cov @ contrast, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * norm.sf(np.abs(est / se))
    ok = np.isfinite(p)
    p_adj = np.full(len(pairs), np.nan)
    reject = np.zeros(len(pairs), bool)
    if ok.any():
        reject[ok], p_adj[ok] = multipletests(p[ok], alpha=alpha, method=adjust)[:2]
    half = norm.ppf(1 - alpha / (2 * len(pairs))) * se
    return pd.DataFrame(dict(group1=[a for a, _ in pairs], group2=[b for _, b in pairs], meandiff=est,
                             p_adj=p_adj, lower=est - half, upper=est + half, reject=reject,
                             test=f"mixedlm contrasts (Wald z, {adjust})"))


pairwise_contrasts.meaning = "pairwise contrasts from the fitted mixed model (paired by image, Holm-adjusted)"


@POSTHOC.register("tukey")
def tukey(df, *, term="method", alpha=ALPHA):
    """Tukey HSD over every pair of levels, treating each method's values as an independent
    sample (it ignores the pairing by image: kept as an option, see `pairwise_contrasts`).

    Returns
    -------
    pandas.DataFrame
        group1, group2, meandiff (group2 - group1), p_adj, lower, upper, reject, test.
    """
    import pandas as pd
    from statsmodels.stats.multicomp import pairwise_tukeyhsd

    df = df[[term, "value"]].dropna()
    if df[term].nunique() < 2:
        return _empty_posthoc()
    res = pairwise_tukeyhsd(df["value"].to_numpy(float), df[term].astype(str).to_numpy(), alpha=alpha)
    table = pd.DataFrame(res.summary().data[1:], columns=list(POSTHOC_COLUMNS[:-1]))
    table = table.astype({"group1": str, "group2": str, "meandiff": float, "p_adj": float, "lower": float,
                          "upper": float, "reject": bool})
    table["test"] = "Tukey HSD (unpaired)"
    return table


tukey.meaning = "Tukey HSD (unpaired: ignores the pairing by image)"


def one_sample(values, threshold, alternative="two-sided"):
    """p-value of a one-sample t-test of the mean of `values` against `threshold` (NaN when fewer
    than two finite values or no spread)."""
    from scipy.stats import ttest_1samp

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2 or values.std() == 0:
        return float("nan")
    return float(ttest_1samp(values, threshold, alternative=alternative).pvalue)


def better_than(estimate, p, alpha=ALPHA):
    """The PASS rule of every Table 2 comparison with a baseline, low or high ([A]): PASS when
    significantly better (estimate > 0 and p < alpha), FAIL otherwise, "n/a" without a p-value.

    >>> better_than(0.1, 0.01), better_than(0.1, 0.2), better_than(-0.1, 0.01)
    ('PASS', 'FAIL', 'FAIL')
    """
    if not np.isfinite(p):
        return "n/a"
    return "PASS" if estimate > 0 and p < alpha else "FAIL"


def finding(estimate, p, alpha=ALPHA):
    """What a comparison found, three ways: "better", "worse" (significant, by the estimate's
    sign), "no difference" (p >= alpha) or "n/a" (no p-value). A FAIL is "worse" or "no difference".

    >>> finding(0.1, 0.01), finding(-0.1, 0.01), finding(-0.1, 0.2)
    ('better', 'worse', 'no difference')
    """
    if not np.isfinite(p):
        return "n/a"
    if p < alpha and estimate != 0:
        return "better" if estimate > 0 else "worse"
    return "no difference"


def vs_threshold(mean, threshold):
    """Randomization rule: (decision, finding); PASS when the fully randomized model's mean SSIM
    is below the method's degradation threshold, i.e. the maps changed when the weights did.

    >>> vs_threshold(0.2, 0.3), vs_threshold(0.4, 0.3)
    (('PASS', 'below threshold'), ('FAIL', 'not below threshold'))
    """
    if not (np.isfinite(mean) and np.isfinite(threshold)):
        return "n/a", "n/a"
    return ("PASS", "below threshold") if mean < threshold else ("FAIL", "not below threshold")


# the study's result kinds register themselves (last: they use the functions above)
from . import kinds  # noqa: E402,F401
