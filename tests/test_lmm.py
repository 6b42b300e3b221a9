"""The mixed model's t-tests against [A]'s R toolchain: lme4 + lmerTest (Satterthwaite degrees of
freedom), on tables whose reference numbers R computed once (tests/fixtures/r/reference.R,
versions in versions.txt): the demo's balanced utility table, the same with maps missing, 5 images,
600 images. Every estimate, standard error, df and p-value within 1 % of R's."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel

from cxrsal.stats import mixed_model, pairwise_contrasts

R = Path(__file__).parent / "fixtures" / "r"
TABLES = ("balanced", "unbalanced", "small", "large")


@pytest.mark.parametrize("name", TABLES)
def test_satterthwaite_t_tests_match_lmertest(name):
    d = pd.read_csv(R / f"{name}.csv")
    ref = (R / f"{name}.ref").read_text().strip()
    r = pd.read_csv(R / f"{name}.lmertest.csv").set_index("term")
    rows = {x["level"]: x for x in mixed_model(d, reference=ref, min_images=2)}
    assert set(rows) == {t[len("method"):] for t in r.index if t != "(Intercept)"}
    for level, x in rows.items():
        want = r.loc["method" + level]
        assert x["test"] == "mixedlm t (Satterthwaite df)"
        assert x["estimate"] == pytest.approx(want.estimate, rel=1e-2)
        assert x["df"] == pytest.approx(want.df, rel=1e-2)
        assert x["p_value"] == pytest.approx(want.p, rel=1e-2, abs=1e-300)
        # the interval is the t interval of the estimate's standard error (R's, recomputed)
        from scipy.stats import t

        half = t.ppf(0.975, want.df) * want.se
        assert x["ci_high"] - x["estimate"] == pytest.approx(half, rel=1e-2)


def test_wald_z_stays_an_option():
    d = pd.read_csv(R / "balanced.csv")
    z = {x["level"]: x for x in mixed_model(d, reference="baseline:avg", test="wald")}
    t = {x["level"]: x for x in mixed_model(d, reference="baseline:avg")}
    # the figures: gcam vs the average mask, z 1.3e-09 against lmerTest's t 8.3e-08
    assert z["gcam"]["test"] == "mixedlm z (Wald)" and z["gcam"]["df"] == np.inf
    assert z["gcam"]["p_value"] == pytest.approx(1.3e-9, rel=0.05)
    assert t["gcam"]["p_value"] == pytest.approx(8.25e-8, rel=0.01)
    assert all(z[k]["p_value"] < t[k]["p_value"] for k in z)          # z is anti-conservative


def test_two_methods_on_every_image_is_the_paired_t():
    """Balanced, two levels: the Satterthwaite t of the mixed model is exactly the paired t-test
    (df n - 1), the identity lmerTest shows on such designs."""
    rng = np.random.default_rng(5)
    a = rng.uniform(0.2, 0.6, 7)
    b = a + rng.normal(0.05, 0.04, 7)
    d = pd.DataFrame(dict(image_id=list(range(7)) * 2, method=["a"] * 7 + ["b"] * 7, value=np.r_[a, b]))
    x = mixed_model(d, reference="a")[0]
    assert x["df"] == pytest.approx(6, rel=1e-3)
    assert x["p_value"] == pytest.approx(ttest_rel(b, a).pvalue, rel=1e-3)
    c = pairwise_contrasts(d)
    assert c.p_adj.iloc[0] == pytest.approx(ttest_rel(b, a).pvalue, rel=1e-3)


@pytest.mark.parametrize("name", TABLES)
def test_multcomp_single_step_matches_r(name):
    """summary(glht(fit, mcp(method = "Tukey"))) on the lmer fit (R integrated to 1e-5): every
    pairwise contrast's estimate within 1 %, its adjusted p within 2 % or 2e-3."""
    from cxrsal.stats import multcomp

    d = pd.read_csv(R / f"{name}.csv")
    r = pd.read_csv(R / f"{name}.multcomp.csv")
    t = multcomp(d, min_images=2)
    ours = {frozenset((a, b)): (p, m if a < b else -m, a, b) for a, b, p, m in
            zip(t.group1, t.group2, t.p_adj, t.meandiff)}
    assert len(ours) == len(r) == 45 and set(t.test) == {"multcomp single-step (z, multivariate normal)"}
    for contrast, est, p in zip(r.contrast, r.estimate, r.p):
        second, first = contrast.split(" - ")               # R: "B - A" = b[B] - b[A]
        got_p, got_m, a, b = ours[frozenset((first, second))]
        signed = got_m if (a, b) == (first, second) else -got_m
        assert signed == pytest.approx(est, rel=1e-2, abs=1e-12)
        assert abs(got_p - p) <= max(2e-3, 0.02 * p), (contrast, got_p, p)
