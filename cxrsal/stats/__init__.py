"""Statistics of [A]: linear mixed-effects models (random intercept per image), post-hoc pairwise
contrasts, and the one PASS rule of Table 2."""

import warnings
from dataclasses import dataclass

import numpy as np

from ..metrics.defined import MIN_IMAGES, UNDEFINED, counted, joined, no_spread_p, texts, too_few
from ..registry import Registry

ALPHA = 0.05
POSTHOC = Registry("post-hoc procedure")   # each procedure says what it is in its `meaning`
NO_ESTIMATE = "mixed model gave no standard error (singular fit)"
POSTHOC_COLUMNS = ("group1", "group2", "meandiff", "p_adj", "lower", "upper", "reject", "test", "n", "reason")


@dataclass(frozen=True)
class Rules:
    """What every test decides with: the significance level, the least number of images with a
    defined value a question needs (`stats.min_images`; fewer: "undefined", cxrsal.metrics.defined)
    and how a mixed model is tested (`stats.test`: "satterthwaite", lmerTest's t, or "wald", z)."""
    alpha: float = ALPHA
    min_images: int = MIN_IMAGES
    test: str = "satterthwaite"


def _fit(df, term, reference):
    """REML fit of value ~ C(term) (treatment coding against `reference`) with a random intercept
    per image, and what went wrong: (fit, "") or (fit or None, the trouble). A fit whose optimizer
    did not converge, or whose Hessian is not positive definite (no reliable standard errors), is
    not used; statsmodels' warnings are captured, not printed."""
    import statsmodels.formula.api as smf

    formula = f"value ~ C({term}, Treatment(reference={reference!r}))"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = smf.mixedlm(formula, df, groups=df["image_id"]).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError) as e:
            return None, f"mixed model could not be fitted ({str(e).strip().splitlines()[0][:60]})"
    said = " ".join(str(w.message) for w in caught)
    if not fit.converged:
        return fit, "mixed model did not converge"
    if not (np.isfinite(fit.scale) and fit.scale > 0):
        return fit, "mixed model has no residual variance"
    if "not positive definite" in said:
        return fit, "mixed model's Hessian not positive definite"
    return fit, ""


def _clean(df, term):
    df = df[["image_id", term, "value"]].dropna().copy()
    df[term] = df[term].astype(str)
    return df


def _coef_name(fit, level):
    return next((k for k in fit.fe_params.index if k.endswith(f"[T.{level}]")), None)


def _design(df, term, reference):
    """(RandomIntercept model, the other levels in its columns' order) of value ~ term, treatment
    coded against `reference` (intercept first)."""
    from .lmm import RandomIntercept

    levels = sorted(l for l in set(df[term]) if l != reference)
    X = np.column_stack([np.ones(len(df))] + [(df[term] == l).to_numpy(float) for l in levels])
    return RandomIntercept(X, df["value"].to_numpy(float), df["image_id"].to_numpy()), levels


def t_tests(df, term, reference, fit, contrasts, alpha, test="satterthwaite"):
    """(estimate, low, high, p, df) of every contrast (rows over [intercept, levels...] as
    `_design` orders them) of the fitted model: lmerTest's t with Satterthwaite degrees of freedom
    (`lmm.satterthwaite`), or statsmodels' Wald z (df inf) with `test` "wald"."""
    from scipy.stats import norm
    from scipy.stats import t as student

    model, levels = _design(df, term, reference)
    L = np.atleast_2d(np.asarray(contrasts, float))
    if test == "wald":
        names = ["Intercept"] + [_coef_name(fit, l) for l in levels]
        beta = fit.fe_params.loc[names].to_numpy(float)
        cov = fit.cov_params().loc[names, names].to_numpy(float)
        est, se = L @ beta, np.sqrt(np.maximum(np.einsum("mp,pq,mq->m", L, cov, L), 0))
        dof = np.full(len(L), np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = 2 * norm.sf(np.abs(est / se))
        half = norm.ppf(1 - alpha / 2) * se
    else:
        from .lmm import satterthwaite

        sd_b = float(np.sqrt(max(float(np.asarray(fit.cov_re)[0, 0]), 0.0)))
        try:
            with np.errstate(all="ignore"):
                est, se, dof, t = satterthwaite(model, sd_b, float(np.sqrt(fit.scale)), L)
        except np.linalg.LinAlgError:           # a degenerate fit: no t-test (the caller falls back)
            nan = np.full(len(L), np.nan)
            return nan, nan, nan, nan, nan
        with np.errstate(divide="ignore", invalid="ignore"):
            p = 2 * student.sf(np.abs(t), dof)
            half = student.ppf(1 - alpha / 2, dof) * se
    return est, est - half, est + half, p, dof


def _paired(df, term, a, b):
    """Per image with a value of both levels: value of `b` minus value of `a` (images in order)."""
    wide = df[df[term].isin([a, b])].pivot_table(index="image_id", columns=term, values="value", aggfunc="mean")
    if a not in wide.columns or b not in wide.columns:
        return np.zeros(0)
    wide = wide.dropna()
    return (wide[b] - wide[a]).to_numpy(float)


def paired_t(diffs, alpha=ALPHA):
    """(estimate, ci_low, ci_high, p) of a two-sided paired t-test of per-image differences; with no
    spread, p at its limit (`defined.no_spread_p`) and the interval the estimate itself; NaN below
    two differences.

    >>> [round(v, 4) for v in paired_t([0.1, 0.3, 0.2, 0.4])]
    [0.25, 0.0446, 0.4554, 0.0305]
    """
    from scipy.stats import t as student, ttest_1samp

    d = np.asarray(diffs, float)
    if len(d) < 2:
        return float("nan"), float("nan"), float("nan"), float("nan")
    est = float(d.mean())
    p = no_spread_p(d, 0.0)
    if p is not None:
        return est, est, est, p
    half = float(student.ppf(1 - alpha / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return est, est - half, est + half, float(ttest_1samp(d, 0.0).pvalue)


def undefined_values(d):
    """The reasons of the undefined values among rows `d` (NaN values; the `undefined` column says
    why when the table has one), counted among its images ("" when every value is defined)."""
    bad = ~np.isfinite(d.value.to_numpy(float))
    if not bad.any():
        return ""
    return counted([(w or "value undefined") if b else "" for w, b in zip(texts(d, "undefined"), bad)], d.image_id)


def left_out(df, level, term="method"):
    """What `level`'s undefined values were ("" when none), counted among the level's images."""
    return undefined_values(df[df[term].astype(str) == str(level)])


def mixed_model(df, *, reference, term="method", alpha=ALPHA, min_images=MIN_IMAGES, test="satterthwaite"):
    """value ~ term (treatment coding against `reference`) with a random intercept per image.

    A level compared on fewer than `min_images` images with a value of both is undefined (its
    `reason` says so); when the model did not converge (or gives no estimate), the level is
    compared by a paired t-test of its values against the reference's, image by image, and the
    `test` says so.

    Returns
    -------
    list of dict
        One per other level: level, reference, estimate (level - reference), ci_low, ci_high
        (1 - alpha), p_value (two-sided: lmerTest's t with Satterthwaite df, or Wald z with `test`
        "wald"), df (inf for z), test, n (images compared), reason (why undefined, "" when defined),
        left_out (the level's undefined values, then the reference's).
    """
    raw = df
    named = [str(l) for l in raw[term].dropna().astype(str).unique()]     # with or without a defined value
    levels = [l for l in named if l != reference]
    if reference not in named or not levels:
        return []
    df = _clean(df, term)
    fit, trouble = (_fit(df, term, reference) if reference in set(df[term]) and df[term].nunique() > 1
                    else (None, ""))          # no defined value of one side: every level is too few
    theirs = left_out(raw, reference, term)
    theirs = f"{reference}: {theirs}" if theirs else ""
    out = []
    tested = {}
    if fit is not None and not trouble:
        others = _design(df, term, reference)[1]
        L = np.eye(len(others) + 1)[1:]
        tested = {l: r for l, *r in zip(others, *t_tests(df, term, reference, fit, L, alpha, test))}
    label = "mixedlm t (Satterthwaite df)" if test == "satterthwaite" else "mixedlm z (Wald)"
    for level in levels:
        diffs = _paired(df, term, reference, level)
        row = dict(level=level, reference=reference, estimate=float("nan"), ci_low=float("nan"),
                   ci_high=float("nan"), p_value=float("nan"), df=float("nan"), test=label, n=len(diffs),
                   reason=too_few(len(diffs), min_images), left_out=joined(left_out(raw, level, term), theirs))
        if row["reason"]:
            out.append(row)
            continue
        got = tested.get(level)
        if got is not None and np.isfinite(got[3]) and not np.isnan(got[4]):      # df inf: a z-test
            row.update(estimate=float(got[0]), ci_low=float(got[1]), ci_high=float(got[2]), p_value=float(got[3]),
                       df=float(got[4]))
        else:
            est, lo, hi, p = paired_t(diffs, alpha)
            row.update(estimate=est, ci_low=lo, ci_high=hi, p_value=p, df=float(len(diffs) - 1),
                       test=f"paired t-test ({trouble or NO_ESTIMATE})")
        out.append(row)
    return out


def _empty_posthoc():
    import pandas as pd

    return pd.DataFrame(columns=list(POSTHOC_COLUMNS))


@POSTHOC.register("holm")
def pairwise_contrasts(df, *, term="method", alpha=ALPHA, adjust="holm", min_images=MIN_IMAGES, stat="satterthwaite"):
    """Every pairwise contrast between the levels of `term` from one fitted mixed model.

    The model is value ~ term with a random intercept per image (as `mixed_model`), so a contrast
    compares the methods' maps *of the same images*. For levels g1 < g2 (sorted), the contrast
    g2 - g1 is b[g2] - b[g1] of the fixed effects (b = 0 for the reference level); its variance is
    L' C L with C their covariance. Two-sided t-test with Satterthwaite degrees of freedom
    (lmerTest's, `t_tests`), or Wald z with `stat` "wald"; `p_adj` adjusted across all pairs by
    `adjust` (a `statsmodels.stats.multitest.multipletests` method, Holm by default).
    `lower`/`upper` are Bonferroni simultaneous (1 - alpha) intervals, at 1 - alpha / (2 m) for m
    pairs: with Holm they are slightly conservative, so a rejected pair's interval can (rarely)
    touch 0.

    When the model did not converge, every pair is a paired t-test instead (same adjustment,
    Bonferroni t intervals; `test` says so). A pair with fewer than `min_images` images holding
    both values has no p-value and its `reason`.

    Returns
    -------
    pandas.DataFrame
        group1, group2, meandiff (group2 - group1, the sign convention of `tukey`), p_adj, lower,
        upper, reject, test, n (images with both values), reason ("" when defined).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame(dict(image_id=[0, 1, 2, 3] * 2, method=["a"] * 4 + ["b"] * 4,
    ...                        value=[0.1, 0.5, 0.3, 0.9, 0.3, 0.72, 0.49, 1.1]))
    >>> t = pairwise_contrasts(df, min_images=4)
    >>> round(float(t.meandiff[0]), 4)       # mean of the paired differences b - a
    0.2025
    """
    import pandas as pd
    from statsmodels.stats.multitest import multipletests

    df = _clean(df, term)
    levels = sorted(df[term].unique())
    if len(levels) < 2:
        return _empty_posthoc()
    pairs = [(a, b) for i, a in enumerate(levels) for b in levels[i + 1:]]
    diffs = [_paired(df, term, a, b) for a, b in pairs]
    reasons = [too_few(len(d), min_images) for d in diffs]
    fit, trouble = _fit(df, term, levels[0])
    test = (f"mixedlm contrasts ({'t, Satterthwaite df' if stat == 'satterthwaite' else 'Wald z'}, {adjust})")
    est = np.full(len(pairs), np.nan)
    p = np.full(len(pairs), np.nan)
    half = np.full(len(pairs), np.nan)
    if fit is not None and not trouble:
        _, others = _design(df, term, levels[0])
        L = np.zeros((len(pairs), len(others) + 1))
        for k, (a, b) in enumerate(pairs):
            L[k, 1 + others.index(b)] += 1.0
            if a != levels[0]:
                L[k, 1 + others.index(a)] -= 1.0
        # simultaneous (Bonferroni) intervals: each at alpha / m
        est, low, _, p, _ = t_tests(df, term, levels[0], fit, L, alpha / len(pairs), stat)
        half = est - low
    if not np.isfinite(p[[not r for r in reasons]]).all():      # no usable fit: paired t-tests
        test = f"paired t-tests ({trouble or NO_ESTIMATE}, {adjust})"
        for k, d in enumerate(diffs):
            if len(d) >= 2:       # Bonferroni simultaneous intervals: each at alpha / m
                est[k], low, _, p[k] = paired_t(d, alpha / len(pairs))
                half[k] = est[k] - low
    p[[bool(r) for r in reasons]] = np.nan
    ok = np.isfinite(p)
    p_adj = np.full(len(pairs), np.nan)
    reject = np.zeros(len(pairs), bool)
    if ok.any():
        reject[ok], p_adj[ok] = multipletests(p[ok], alpha=alpha, method=adjust)[:2]
    return pd.DataFrame(dict(group1=[a for a, _ in pairs], group2=[b for _, b in pairs], meandiff=est,
                             p_adj=p_adj, lower=est - half, upper=est + half, reject=reject, test=test,
                             n=[len(d) for d in diffs], reason=reasons))


MC_DRAWS = 2 ** 20       # quasi-random draws of the multivariate normal behind multcomp's single-step p-values


@POSTHOC.register("multcomp")
def multcomp(df, *, term="method", alpha=ALPHA, min_images=MIN_IMAGES, draws=MC_DRAWS, seed=0):
    """Every pairwise contrast of the fitted mixed model with the single-step adjustment of R's
    `summary(glht(fit, mcp(method = "Tukey")))` on an lmer fit, as [A] ran it: z = contrast / SE
    (no degrees of freedom on an lmer fit), and the adjusted p of a contrast is
    P(max_j |Z_j| >= |z|) for Z multivariate normal with the contrasts' correlation, estimated
    from `draws` scrambled Sobol points (seeded; quasi-Monte Carlo, as mvtnorm's Genz-Bretz
    integration is), whose error is of the order of 1e-4.
    Where fewer than 10 draws exceed |z| (p below 1e-5) the Bonferroni bound m x p is given, which
    the single-step p never exceeds. `lower`/`upper`: simultaneous (1 - alpha) intervals at the
    draws' (1 - alpha) quantile of max |Z|. A model that did not converge: Holm-adjusted paired
    t-tests (`pairwise_contrasts`' fallback), said in `test`.

    Returns the columns of `pairwise_contrasts`.
    """
    import pandas as pd
    from scipy.stats import norm

    df = _clean(df, term)
    levels = sorted(df[term].unique())
    if len(levels) < 2:
        return _empty_posthoc()
    fit, trouble = _fit(df, term, levels[0])
    if fit is None or trouble:
        return pairwise_contrasts(df, term=term, alpha=alpha, min_images=min_images)
    pairs = [(a, b) for i, a in enumerate(levels) for b in levels[i + 1:]]
    diffs = [_paired(df, term, a, b) for a, b in pairs]
    reasons = [too_few(len(d), min_images) for d in diffs]
    model, others = _design(df, term, levels[0])
    sd_b = float(np.sqrt(max(float(np.asarray(fit.cov_re)[0, 0]), 0.0)))
    beta, cov = model.beta_cov(sd_b, float(np.sqrt(fit.scale)))
    L = np.zeros((len(pairs), len(others)))            # over the levels' coefficients (reference: 0)
    for k, (a, b) in enumerate(pairs):
        L[k, others.index(b)] += 1.0
        if a != levels[0]:
            L[k, others.index(a)] -= 1.0
    sub = cov[1:, 1:]
    est = L @ beta[1:]
    se = np.sqrt(np.einsum("mp,pq,mq->m", L, sub, L))
    z = np.abs(est / se)
    from scipy.stats import qmc

    chol = np.linalg.cholesky(sub + 1e-12 * np.trace(sub) / len(sub) * np.eye(len(sub)))
    sobol = qmc.Sobol(d=len(sub), scramble=True, seed=seed)     # quasi-random: error ~ 1 / draws
    exceed = np.zeros(len(pairs))
    maxima = []
    chunk = 2 ** 17
    draws = chunk * max(1, int(np.ceil(int(draws) / chunk)))     # whole chunks of 2^k points
    for _ in range(draws // chunk):
        u = norm.ppf(np.clip(sobol.random(chunk), 1e-16, 1 - 1e-16)) @ chol.T
        top = np.abs(u @ L.T / se).max(axis=1)
        exceed += (top[:, None] >= z[None, :]).sum(axis=0)
        maxima.append(top)
    crit = float(np.quantile(np.concatenate(maxima), 1 - alpha))
    bonferroni = np.minimum(1.0, len(pairs) * 2 * norm.sf(z))
    p_adj = np.where(exceed >= 10, exceed / draws, bonferroni)
    p_adj[[bool(r) for r in reasons]] = np.nan
    reject = np.isfinite(p_adj) & (p_adj < alpha)
    return pd.DataFrame(dict(group1=[a for a, _ in pairs], group2=[b for _, b in pairs], meandiff=est, p_adj=p_adj,
                             lower=est - crit * se, upper=est + crit * se, reject=reject,
                             test="multcomp single-step (z, multivariate normal)", n=[len(d) for d in diffs],
                             reason=reasons))


multcomp.meaning = ("all pairwise contrasts of the fitted mixed model, single-step adjusted as R's multcomp "
                    "(glht, Tukey contrasts) on [A]'s lmer fit")


pairwise_contrasts.meaning = "pairwise contrasts from the fitted mixed model (paired by image, Holm-adjusted)"


@POSTHOC.register("tukey-hsd-unpaired")
def tukey(df, *, term="method", alpha=ALPHA, min_images=MIN_IMAGES):
    """Tukey HSD over every pair of levels, treating each method's values as an independent
    sample (it ignores the pairing by image: kept as an option, see `pairwise_contrasts`). A pair
    where a level has fewer than `min_images` values has no p-value and its `reason`.

    Returns
    -------
    pandas.DataFrame
        group1, group2, meandiff (group2 - group1), p_adj, lower, upper, reject, test, n, reason.
    """
    import pandas as pd
    from statsmodels.stats.multicomp import pairwise_tukeyhsd

    df = df[[term, "value"]].dropna()
    if df[term].nunique() < 2:
        return _empty_posthoc()
    res = pairwise_tukeyhsd(df["value"].to_numpy(float), df[term].astype(str).to_numpy(), alpha=alpha)
    table = pd.DataFrame(res.summary().data[1:], columns=list(POSTHOC_COLUMNS[:-3]))
    table = table.astype({"group1": str, "group2": str, "meandiff": float, "p_adj": float, "lower": float,
                          "upper": float, "reject": bool})
    table["test"] = "Tukey HSD (unpaired)"
    counts = df.groupby(term)["value"].count()
    table["n"] = [int(min(counts[a], counts[b])) for a, b in zip(table.group1, table.group2)]
    table["reason"] = [too_few(n, min_images) for n in table.n]
    few = table.reason != ""
    table.loc[few, "p_adj"] = np.nan
    table.loc[few, "reject"] = False
    return table


tukey.meaning = "Tukey HSD (unpaired: ignores the pairing by image)"


def one_sample(values, threshold, alternative="two-sided"):
    """p-value of a one-sample t-test of the mean of `values` against `threshold`: NaN below two
    finite values; with no spread, its limit (`defined.no_spread_p`: 1 when every value equals the
    threshold, else 0).

    >>> one_sample([1.0, 1.0, 1.0], 0.5), one_sample([0.5, 0.5], 0.5)
    (0.0, 1.0)
    """
    from scipy.stats import ttest_1samp

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan")
    limit = no_spread_p(values, threshold)
    if limit is not None:
        return limit
    return float(ttest_1samp(values, threshold, alternative=alternative).pvalue)


def better_than(estimate, p, alpha=ALPHA):
    """The PASS rule of every Table 2 comparison with a baseline, low or high ([A]): PASS when
    significantly better (estimate > 0 and p < alpha), FAIL otherwise, "undefined" without a p-value.

    >>> better_than(0.1, 0.01), better_than(0.1, 0.2), better_than(-0.1, 0.01), better_than(0.1, float("nan"))
    ('PASS', 'FAIL', 'FAIL', 'undefined')
    """
    if not np.isfinite(p):
        return UNDEFINED
    return "PASS" if estimate > 0 and p < alpha else "FAIL"


def finding(estimate, p, alpha=ALPHA):
    """What a comparison found, three ways: "better", "worse" (significant, by the estimate's
    sign), "no difference" (p >= alpha) or "undefined" (no p-value). A FAIL is "worse" or "no
    difference".

    >>> finding(0.1, 0.01), finding(-0.1, 0.01), finding(-0.1, 0.2)
    ('better', 'worse', 'no difference')
    """
    if not np.isfinite(p):
        return UNDEFINED
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
        return UNDEFINED, UNDEFINED
    return ("PASS", "below threshold") if mean < threshold else ("FAIL", "not below threshold")


def decided(row):
    """A tests.csv row under the one rule: a row with a `reason` is "undefined" (decision and
    finding), whatever its numbers say; a row without a p-value gets the reason "no p-value"."""
    if not row.get("reason") and row.get("decision") == UNDEFINED:
        row["reason"] = "no p-value"
    if row.get("reason"):
        row["decision"] = row["finding"] = UNDEFINED
    return row


# the study's result kinds register themselves (last: they use the functions above)
from . import kinds  # noqa: E402,F401
