"""No verdict from a degenerate statistic: planted inputs whose answer is known by construction
(constant maps, identical maps, too few images, a mixed model that cannot converge, an interval
of one image), each followed through `cxrsal stats` to Table 2, the sanity table and the summary."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel

from cxrsal import stats
from cxrsal.experiments.randomization import threshold_verdicts
from cxrsal.metrics import degradation_threshold, ssim_score
from cxrsal.metrics.defined import pair_similarity, relative_rise, threshold_reason
from cxrsal.metrics.complexity import emprt_table
from cxrsal.stats import mixed_model, pairwise_contrasts
from cxrsal.stats.study import run_stats

HASH = "c" * 64


def quiet(*_):
    pass


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def meta(models, archs):
    return {"models": models, "data_hash": HASH, "archs": archs, "heads": ["classification"] * len(archs)}


def smooth_maps(n, size=16, seed=0):
    """n distinct non-constant maps (random blobs), values in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(3, size - 3, 2)
        out.append(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0))
    return np.asarray(out)


def rand_folder(root, name, ssim, *, threshold, threshold_reason="", n=8, undefined="", constant=False,
                complexity=None):
    """A `cxrsal randomize` folder of one model: SSIM rows of the trained step (1) and the fully
    randomized one (`ssim`, a value or one per image) for gcam over `n` images; the threshold row
    as `analyse` writes it (with its reason); optional complexity rows (trained, randomized)."""
    ids = [f"img{i}" for i in range(n)]
    ssim = np.broadcast_to(np.asarray(ssim, float), (n,))
    rows = []
    for step, name_ in ((0, "trained"), (1, "logits")):
        for i, v in zip(ids, ssim):
            rows.append(dict(image_id=i, model="00-m", method="gcam", step=step, step_name=name_, metric="ssim",
                             value=1.0 if step == 0 and np.isfinite(v) else v, constant=constant,
                             undefined=undefined if not np.isfinite(v) else ""))
    if complexity is not None:
        for step, values in enumerate(complexity):
            for i, v in zip(ids, np.broadcast_to(np.asarray(values, float), (n,))):
                rows.append(dict(image_id=i, model="00-m", method="gcam", step=step, step_name=str(step),
                                 metric="complexity", value=v, constant=False,
                                 undefined="" if np.isfinite(v) else "all-zero map"))
    folder = root / name
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "randomization.csv", index=False)
    pd.DataFrame([dict(model="00-m", method="gcam", threshold=threshold, images=n,
                       constant=n if threshold_reason else 0, reason=threshold_reason)]).to_csv(
        folder / "thresholds.csv", index=False)
    write_json(folder / "randomization.json", meta(["/x/m"], ["resnet18"]))
    return folder


# ---------------------------------------------------------------- the rule, per statistic

def test_similarity_with_a_constant_map_is_undefined_and_identical_maps_are_one():
    a, b = smooth_maps(2)
    flat = np.zeros_like(a)
    ssim = lambda x, y: ssim_score(x, y, data_range=1.0)
    assert pair_similarity(a, a.copy(), ssim) == (1.0, "")
    # a constant trained map: nothing to lose, undefined
    value, why = pair_similarity(flat, b, ssim, undefined_when="reference")
    assert np.isnan(value) and why == "trained map constant"
    # a structured trained map that became constant lost its structure: defined, and low
    value, why = pair_similarity(a, flat, ssim, undefined_when="reference")
    assert why == "" and value == pytest.approx(ssim_score(a, flat)) and value < 0.1
    # two maps of equal standing: undefined only when neither has structure
    assert pair_similarity(a, flat, ssim)[1] == ""
    assert pair_similarity(flat, np.full_like(a, 0.3), ssim, sides=("first", "second"))[1] == "both maps constant"
    # scikit-image would give 1 for the two constant maps (what made a threshold of 1.0)
    assert ssim_score(flat, flat) == pytest.approx(1.0)
    # a rank correlation needs spread on both sides
    value, why = pair_similarity(a, flat, ssim, undefined_when="either")
    assert np.isnan(value) and why == "randomized map constant"


def test_threshold_of_constant_trained_maps_is_undefined():
    maps = np.zeros((4, 16, 16))
    assert np.isnan(degradation_threshold(maps, pairs_per_image=5))
    assert threshold_reason(4, 4, 5) == "trained maps constant on 4 of 4 images; n = 4 < 5 images"
    # some constant: the pairs with a constant map are left out (the randomized SSIMs it is compared
    # with rest on structured trained maps only), the mean is the loop over the others
    maps = np.concatenate([smooth_maps(6), np.zeros((2, 16, 16))])
    mean, pairs, values = degradation_threshold(maps, pairs_per_image=10, return_pairs=True)
    flat = (pairs >= 6).any(axis=1)
    expected = [ssim_score(maps[i], maps[j]) for (i, j), f in zip(pairs, flat) if not f]
    assert flat.any() and np.isnan(values[flat]).all() and np.isfinite(values[~flat]).all()
    assert mean == pytest.approx(np.mean(expected))
    assert threshold_reason(8, 2, 5) == "" and threshold_reason(8, 4, 5) == "trained maps constant on 4 of 8 images"
    # too few images is said even where some maps are constant
    assert threshold_reason(4, 1, 5) == "trained maps constant on 1 of 4 images; n = 4 < 5 images"


def test_constant_trained_maps_never_pass_randomization():
    """The case seen on InceptionV3: constant trained maps gave a threshold of 1.0 and every
    randomized SSIM passed it."""
    last = pd.DataFrame(dict(image_id=["a", "b"], model="00-m", method="gcam", value=[0.087, 0.09],
                             undefined=""))
    thr = pd.DataFrame([dict(model="00-m", method="gcam", threshold=float("nan"), images=2, constant=2,
                             reason=threshold_reason(2, 2, 5))])
    v = threshold_verdicts(last, thr, 5).iloc[0]
    assert v.result == "undefined" and "trained maps constant on 2 of 2 images" in v.reason


def test_identical_maps_are_a_defined_fail():
    """A map that does not depend on the model: SSIM 1 with its randomized self (FAIL, not
    undefined), a complexity rise of exactly 0 (eMPRT FAIL with p = 1)."""
    last = pd.DataFrame(dict(image_id=list("abcdef"), model="00-m", method="edge", value=1.0, undefined=""))
    thr = pd.DataFrame([dict(model="00-m", method="edge", threshold=0.4, images=6, constant=0, reason="")])
    v = threshold_verdicts(last, thr, 5).iloc[0]
    assert (v.result, v.reason) == ("FAIL", "")
    rows = [dict(image_id=i, model="00-m", method="edge", step=s, step_name=str(s), metric="complexity",
                 value=1.0 + 0.1 * k) for k, i in enumerate("abcdef") for s in (0, 1)]
    e = emprt_table(pd.DataFrame(rows)).iloc[0]
    assert (e.result, e.p_value, e.rise, e.reason) == ("FAIL", 1.0, 0.0, "")
    # a rise relative to a complexity of 0 is undefined, 0 / 0 too; (3 - 2) / 2 = 0.5
    np.testing.assert_array_equal(relative_rise([0.0, 0.0, 2.0], [0.5, 0.0, 3.0]), [np.nan, np.nan, 0.5])


def test_emprt_from_constant_trained_maps_is_undefined():
    """The histogram entropy of a constant trained map is 0: every rise from it is relative to 0,
    undefined, its pair left out."""
    rows = [dict(image_id=i, model="00-m", method="gcam", step=s, step_name=str(s), metric="complexity",
                 value=0.0 if s == 0 else 2.0) for i in "abcdef" for s in (0, 1)]
    e = emprt_table(pd.DataFrame(rows)).iloc[0]
    assert e.result == "undefined" and e.n == 0 and e.undefined == 6 and np.isnan(e.rise)
    assert e.reason == "n = 0 < 5 images; rise relative to a trained complexity of 0 on 6 of 6 images"


def test_emprt_on_undefined_complexities_is_undefined():
    rows = [dict(image_id=i, model="00-m", method="gcam", step=s, step_name=str(s), metric="complexity",
                 value=float("nan") if s == 0 else 2.0) for i in "abcdefgh" for s in (0, 1)]
    e = emprt_table(pd.DataFrame(rows)).iloc[0]
    assert e.result == "undefined" and e.n == 0 and e.undefined == 8
    assert e.reason == "n = 0 < 5 images; trained complexity undefined on 8 of 8 images"
    # two all-zero pairs among eight: decided on the six others, the two said in left_out
    rows = [dict(r, value=float(k % 4 + 1) if r["step"] == 0 else float(k % 4 + 2)) for k, r in enumerate(rows)]
    rows[0]["value"] = rows[2]["value"] = float("nan")
    e = emprt_table(pd.DataFrame(rows)).iloc[0]
    assert e.result == "PASS" and e.n == 6 and e.left_out == "trained complexity undefined on 2 of 8 images"


def test_no_spread_is_decided_at_its_limit():
    assert stats.one_sample([1.0] * 6, 0.5) == 0.0 and stats.one_sample([0.5] * 6, 0.5) == 1.0
    assert stats.paired_t([0.2] * 6)[3] == 0.0 and stats.paired_t([0.0] * 6)[3] == 1.0
    assert np.isnan(stats.one_sample([0.7], 0.5))


def test_a_mixed_model_that_does_not_converge_falls_back_to_the_paired_t():
    """Every value equal (a zero-variance table): statsmodels' fit does not converge, so the
    comparison is the paired t-test, decided at its limit (no difference: p = 1, FAIL)."""
    df = pd.DataFrame(dict(image_id=list(range(6)) * 2, method=["ref"] * 6 + ["gcam"] * 6, value=0.5))
    fit, trouble = stats._fit(stats._clean(df, "method"), "method", "ref")
    assert trouble == "mixed model did not converge" and not fit.converged
    r = mixed_model(df, reference="ref")[0]
    assert r["test"] == "paired t-test (mixed model did not converge)" and r["p_value"] == 1.0
    assert stats.better_than(r["estimate"], r["p_value"]) == "FAIL"


def test_the_fallback_is_scipys_paired_t(monkeypatch):
    rng = np.random.default_rng(3)
    base = rng.uniform(0.2, 0.6, 9)
    other = base + rng.normal(0.05, 0.03, 9)
    df = pd.DataFrame(dict(image_id=list(range(9)) * 2, method=["ref"] * 9 + ["gcam"] * 9,
                           value=np.r_[base, other]))
    monkeypatch.setattr(stats, "_fit", lambda *a: (None, "mixed model did not converge"))
    r = mixed_model(df, reference="ref")[0]
    assert r["p_value"] == pytest.approx(ttest_rel(other, base).pvalue)
    assert r["estimate"] == pytest.approx(np.mean(other - base))
    t = pairwise_contrasts(df.assign(method=df.method.replace({"ref": "grad"})))
    assert t.test.iloc[0] == "paired t-tests (mixed model did not converge, holm)"
    assert t.p_adj.iloc[0] == pytest.approx(ttest_rel(base, other).pvalue)     # one pair: Holm changes nothing


def test_the_baselines_undefined_values_are_said_beside_each_method():
    """Two localization networks' heatmaps both constant on one image: that baseline value is left
    out (n = 5 paired images), and every method's row says so."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(dict(image_id=list(range(6)) * 2, method=["baseline:localization"] * 6 + ["gcam"] * 6,
                           value=np.r_[np.nan, rng.uniform(0.2, 0.4, 5), rng.uniform(0.5, 0.7, 6)],
                           undefined=["both maps constant"] + [""] * 11))
    r = mixed_model(df, reference="baseline:localization")[0]
    assert r["n"] == 5 and r["reason"] == ""
    assert r["left_out"] == "baseline:localization: both maps constant on 1 of 6 images"


def test_too_few_images_are_undefined():
    df = pd.DataFrame(dict(image_id=[0, 1] * 2, method=["ref"] * 2 + ["gcam"] * 2, value=[0.1, 0.2, 0.5, 0.7]))
    r = mixed_model(df, reference="ref")[0]
    assert r["reason"] == "n = 2 < 5 images" and np.isnan(r["p_value"])
    assert mixed_model(df, reference="ref", min_images=2)[0]["reason"] == ""
    t = pairwise_contrasts(df)
    assert t.reason.iloc[0] == "n = 2 < 5 images" and np.isnan(t.p_adj.iloc[0])


# ---------------------------------------------------------------- through `cxrsal stats` to Table 2

def test_planted_folders_reach_table2_as_undefined_with_their_reasons(tmp_path):
    root = tmp_path / "results"
    # constant trained maps (threshold undefined): randomized SSIM low, yet no PASS
    rand_folder(root, "constant", 0.05, threshold=float("nan"),
                threshold_reason="trained maps constant on 8 of 8 images", constant=True,
                complexity=(float("nan"), 2.0))
    # two images: undefined whatever the numbers
    (root / "two").mkdir()
    cmp = pd.DataFrame(dict(image_id=["a", "b"] * 2, model_a="m", model_b="m2", method=["gcam"] * 2 + ["grad"] * 2,
                            metric="ssim", value=[0.9, 0.95, 0.1, 0.12], constant=0, undefined=""))
    cmp.to_csv(root / "two" / "compare.csv", index=False)
    write_json(root / "two" / "compare.json", meta(["/x/m", "/x/m2"], ["resnet18", "resnet18"]))
    res = run_stats([root], tmp_path / "stats", log=quiet)

    t2 = res["table2"].set_index("method")
    assert t2.loc["gcam", "trained vs randomized"] == "undefined"
    assert t2.loc["gcam", "repeatability vs 0.5"] == "undefined"
    assert t2.loc["grad", "repeatability vs 0.5"] == "undefined"
    tests = pd.read_csv(tmp_path / "stats" / "tests.csv", keep_default_na=False)
    why = {(r.question, r.method): r.reason for r in tests.itertuples()}
    assert why[("trained vs randomized", "gcam")] == "trained maps constant on 8 of 8 images"
    assert why[("repeatability vs 0.5", "gcam")] == "n = 2 < 5 images"
    assert why[("eMPRT top-down", "gcam")] == "n = 0 < 5 images; trained complexity undefined on 8 of 8 images"
    assert set(tests.decision) == {"undefined"} and set(tests.finding) == {"undefined"}
    sanity = res["sanity"].set_index("method")
    assert sanity.loc["gcam", "MPRT top-down"] == "undefined" and sanity.loc["gcam", "eMPRT top-down"] == "undefined"
    # the reasons beside the tables, the constant maps counted, the summary's count
    undefined = pd.read_csv(tmp_path / "stats" / "undefined.csv", keep_default_na=False)
    assert set(undefined.table) == {"Table 2", "sanity"}
    assert "trained maps constant on 8 of 8 images" in set(undefined.reason)
    md = (tmp_path / "stats" / "tables.md").read_text()
    assert "- gcam, trained vs randomized: trained maps constant on 8 of 8 images" in md
    assert f"{len(tests)} tests: 0 PASS, 0 FAIL, {len(tests)} undefined" in md
    constant = res["constant"].set_index("method")
    # the 8 trained maps flagged constant (the folder says so; a randomized step's are not counted),
    # the 4 compared maps not
    assert (constant.loc["gcam", "maps"], constant.loc["gcam", "constant"]) == (8 + 4, 8)
    assert "dead model" not in constant.loc["gcam", "likely cause"]      # grad's maps are not constant
    assert "feature map too coarse" in constant.loc["gcam", "likely cause"]
    assert t2.loc["gcam", "constant maps"] == "8 of 12" and t2.loc["grad", "constant maps"] == "0 of 4"


def test_a_decided_question_says_what_it_left_out(tmp_path):
    """Two of ten randomized SSIMs undefined (a constant randomized map): decided on the eight
    others, tests.csv says so."""
    ssim = np.r_[[float("nan")] * 2, np.linspace(0.05, 0.1, 8)]
    rand_folder(tmp_path / "results", "r", ssim, threshold=0.4, n=10, undefined="randomized map constant")
    res = run_stats([tmp_path / "results"], tmp_path / "stats", log=quiet)
    row = res["tests"].set_index("question").loc["trained vs randomized"]
    assert (row.decision, row.n, row.reason) == ("PASS", 8, "")
    assert row.left_out == "randomized map constant on 2 of 10 images"
    assert row.estimate == pytest.approx(np.mean(ssim[2:]) - 0.4)


def test_min_images_is_a_setting(tmp_path):
    """The same two-image folder is decided once stats.min_images allows it (and the CLI says
    where a bad value came from)."""
    from click.testing import CliRunner

    from cxrsal.cli.main import cli

    rand_folder(tmp_path / "results", "r", np.linspace(0.05, 0.1, 3), threshold=0.4, n=3)
    assert run_stats([tmp_path / "results"], tmp_path / "s5", log=quiet)["table2"].set_index("method").loc[
        "gcam", "trained vs randomized"] == "undefined"
    r = CliRunner().invoke(cli, ["stats", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "s3"),
                                 "--min-images", "3"])
    assert r.exit_code == 0, r.output
    assert pd.read_csv(tmp_path / "s3" / "table2.csv").set_index("method").loc[
        "gcam", "trained vs randomized"] == "PASS"
    r = CliRunner().invoke(cli, ["stats", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "s1"),
                                 "--set", "stats.min_images=1"])
    assert r.exit_code != 0 and "stats.min_images" in r.output and "Traceback" not in r.output


def test_zero_variance_utility_table_reaches_table2_through_the_fallback(tmp_path):
    """A score folder whose method and average mask score the same on every image: the mixed
    model cannot converge; the paired t-test finds no difference: FAIL (not PASS, not undefined)."""
    folder = tmp_path / "results" / "score"
    folder.mkdir(parents=True)
    rows = [dict(image_id=f"i{k}", model="m", method=m, step="trained", metric="auprc", value=0.3, label=1,
                 constant=False) for k in range(6) for m in ("baseline:avg", "gcam")]
    pd.DataFrame(rows).to_csv(folder / "scores.csv", index=False)
    (folder / "pointwise.csv").write_text("\n")
    write_json(folder / "score.json", {"maps": str(folder / "no-store"), "baselines": "avg", "model": "m",
                                       "data_hash": HASH, "arch": "resnet18", "head": "classification"})
    res = run_stats([tmp_path / "results"], tmp_path / "stats", log=quiet)
    row = res["tests"].iloc[0]
    assert row.test.startswith("paired t-test (mixed model")     # no usable fit: said in the test column
    assert (row.decision, row.finding, row.p_value) == ("FAIL", "no difference", 1.0)
    assert res["table2"].set_index("method").loc["gcam", "utility vs average mask"] == "FAIL"
    assert res["posthoc"].test.iloc[0].startswith("paired t-tests (mixed model")


def test_an_interval_of_one_image_says_so():
    """One positive image: no bootstrap interval ("undefined (1 image)"), its constant map counted;
    the same table's model of three images has an interval."""
    from cxrsal.stats.kinds.score import localization_table

    rows = [dict(dataset="d", group="d/resnet18", model=model, image_id=f"i{k}", method="gcam", step="trained",
                 metric="auprc", value=0.2 + 0.1 * k, label=1, constant=k == 0)
            for model, n in (("one", 1), ("three", 3)) for k in range(n)]
    t = localization_table(pd.DataFrame(rows)).set_index("model")
    assert t.loc["one", "AUPRC 95% CI"] == "undefined (1 image)" and t.loc["one", "constant maps"] == "1 of 1"
    assert t.loc["three", "AUPRC 95% CI"].startswith("[") and t.loc["three", "constant maps"] == "1 of 3"


def test_an_undefined_verdict_neither_holds_nor_breaks_a_finding():
    from cxrsal.stats.findings import findings

    tests = pd.DataFrame([dict(group="d/r18", question="trained vs randomized", method=m, decision=d, estimate=0.1)
                          for m, d in (("gcam", "undefined"), ("gbp", "PASS"), ("ggcam", "FAIL"))])
    empty = pd.DataFrame()
    res = {"tests": tests, "table1": empty, "table1_utility": empty}
    holds = {r.finding.split(": ")[1]: r.holds for r in findings(res).itertuples()}
    assert holds["gcam passes cascading randomization"] == "undefined"
    assert holds["gbp passes cascading randomization"] == "yes"
    assert holds["ggcam passes cascading randomization"] == "no"
    assert holds["xrai fails cascading randomization"] == "no data"


def test_replicates_count_their_images_once():
    """Two replicate models of three images each: 6 values, but n = 3 images < 5: undefined, and the
    reason counts images, not image-model pairs."""
    last = pd.DataFrame(dict(image_id=list("abc") * 2, model=["00-a"] * 3 + ["01-b"] * 3, method="gcam",
                             value=[0.1, 0.1, np.nan, 0.1, 0.2, np.nan], undefined=["", "", "randomized map constant"] * 2))
    thr = pd.DataFrame([dict(model=m, method="gcam", threshold=0.5, images=3, constant=0, reason="")
                        for m in ("00-a", "01-b")])
    v = threshold_verdicts(last, thr, 2).iloc[0]
    assert (v.result, v.n) == ("PASS", 2)
    v = threshold_verdicts(last, thr, 5).iloc[0]
    assert v.result == "undefined" and v.reason == "n = 2 < 5 images; randomized map constant on 1 of 3 images"


def test_a_rise_from_a_trained_complexity_of_zero_is_left_out():
    """One-pixel trained maps (complexity 0) whose randomized maps spread: a rise relative to 0,
    undefined; eMPRT does not PASS on them."""
    rows = [dict(image_id=i, model="00-m", method="gcam", step=s, step_name=str(s), metric="complexity",
                 value=0.0 if s == 0 else 1.5) for i in "abcdefgh" for s in (0, 1)]
    e = emprt_table(pd.DataFrame(rows)).iloc[0]
    assert e.result == "undefined" and e.n == 0
    assert e.reason == "n = 0 < 5 images; rise relative to a trained complexity of 0 on 8 of 8 images"


def test_older_results_without_flags_are_not_counted_as_structured():
    from cxrsal.stats.kinds.score import constant_counts, flagged

    rows = pd.DataFrame(dict(dataset="d", group="d/r18", model="m", image_id=list("abcd"), method="gcam",
                             constant=[True, False, np.nan, np.nan]))
    assert constant_counts(rows, ["model", "method"]) == {("m", "gcam"): "1 of 2"}
    f = flagged(rows, ["dataset", "group", "model", "image_id", "method"]).iloc[0]
    assert (f.maps, f.constant) == (2, 1)
    assert flagged(rows.assign(constant=np.nan), ["dataset", "group", "model", "image_id", "method"]) is None


def test_a_fit_without_reliable_standard_errors_falls_back_too():
    """Each method constant over the images (0.5 and 0.7): statsmodels does not converge, says its
    Hessian is not positive definite, or ends with no residual variance (which of the three
    depends on the CPU's floating point); either way no Wald test stands on it. The paired
    differences are all 0.2 (no spread): p = 0, PASS."""
    df = pd.DataFrame(dict(image_id=list(range(6)) * 2, method=["ref"] * 6 + ["gcam"] * 6,
                           value=[0.5] * 6 + [0.7] * 6))
    _, trouble = stats._fit(stats._clean(df, "method"), "method", "ref")
    assert trouble in ("mixed model did not converge", "mixed model's Hessian not positive definite",
                       "mixed model has no residual variance")
    r = mixed_model(df, reference="ref")[0]
    assert r["test"] == f"paired t-test ({trouble})"
    assert r["estimate"] == pytest.approx(0.2) and r["p_value"] == 0.0
    assert stats.better_than(r["estimate"], r["p_value"]) == "PASS"
    t = stats.tukey(df.assign(image_id=df.image_id), min_images=7)
    assert t.reason.iloc[0] == "n = 6 < 7 images" and np.isnan(t.p_adj.iloc[0])


def test_a_baseline_without_one_defined_value_is_undefined_not_missing():
    """Both localization networks' heatmaps constant on every image: no baseline value at all. The
    comparison is undefined with that reason (before: no test, so Table 2 said "no data")."""
    df = pd.DataFrame(dict(image_id=list(range(6)) * 2, method=["baseline:localization"] * 6 + ["gcam"] * 6,
                           value=[np.nan] * 6 + list(np.linspace(0.5, 0.7, 6)),
                           undefined=["both maps constant"] * 6 + [""] * 6))
    r = mixed_model(df, reference="baseline:localization")[0]
    assert r["level"] == "gcam" and r["n"] == 0 and r["reason"] == "n = 0 < 5 images"
    assert r["left_out"] == "baseline:localization: both maps constant on 6 of 6 images"


def test_the_posthoc_settings_domain_is_the_registry():
    from cxrsal.config_schema import POSTHOCS
    from cxrsal.stats import POSTHOC

    assert sorted(POSTHOCS) == POSTHOC.names()
