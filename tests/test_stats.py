"""Mixed models, post-hoc contrasts and Tukey on planted tables; the PASS rule on hand-made values;
Table 2 per data set x model group on hand-made result folders."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, ttest_1samp

from cxrsal.stats import (POSTHOC, POSTHOC_COLUMNS, better_than, finding, mixed_model, pairwise_contrasts, tukey,
                          vs_threshold)
from cxrsal.stats.kinds.compare import compare_tests
from cxrsal.stats.kinds.randomization import randomization_tests
from cxrsal.stats.kinds.score import utility_tests
from cxrsal.stats.questions import table2, table2_columns
from cxrsal.stats.sources import result_info
from cxrsal.stats.study import run_stats
from cxrsal.stats.text import POOLING
from helpers import loaded_by, quiet


def planted(effects, n_images=60, seed=0, noise=0.05, image_sd=0.2):
    """AUPRC-like values: a random intercept per image plus a fixed effect per method."""
    rng = np.random.default_rng(seed)
    image_effect = rng.normal(0, image_sd, n_images)
    rows = []
    for method, effect in effects.items():
        for i in range(n_images):
            rows.append(dict(image_id=f"im{i}", method=method, value=0.4 + image_effect[i] + effect
                             + rng.normal(0, noise)))
    return pd.DataFrame(rows)


def pairs(table):
    return {(r.group1, r.group2): r for r in table.itertuples()}


# ---------------------------------------------------------------- models and post-hoc procedures

def test_mixed_model_finds_a_planted_difference():
    df = planted({"baseline:avg": 0.0, "gcam": 0.1, "grad": 0.0})
    res = {r["level"]: r for r in mixed_model(df, reference="baseline:avg")}
    assert res["gcam"]["estimate"] == pytest.approx(0.1, abs=0.02) and res["gcam"]["p_value"] < 1e-6
    assert res["gcam"]["ci_low"] < 0.1 < res["gcam"]["ci_high"]
    assert res["grad"]["p_value"] > 0.05        # none planted: none found
    assert better_than(res["gcam"]["estimate"], res["gcam"]["p_value"]) == "PASS"
    assert better_than(res["grad"]["estimate"], res["grad"]["p_value"]) == "FAIL"


def test_mixed_model_uses_the_random_intercept():
    # the image effect (sd 0.2) dwarfs the method effect (0.03); pairing by image recovers it
    df = planted({"ref": 0.0, "m": 0.03}, noise=0.01)
    res = mixed_model(df, reference="ref")[0]
    assert res["p_value"] < 1e-6
    from scipy.stats import ttest_ind
    unpaired = ttest_ind(df[df.method == "m"].value, df[df.method == "ref"].value).pvalue
    assert unpaired > 0.05


def test_tukey_on_planted_groups():
    df = planted({"a": 0.0, "b": 0.0, "c": 0.2})
    t = pairs(tukey(df))
    assert bool(t[("a", "c")].reject) and bool(t[("b", "c")].reject)
    assert not bool(t[("a", "b")].reject)
    assert t[("a", "c")].meandiff == pytest.approx(0.2, abs=0.03)     # group2 - group1
    assert t[("a", "c")].test == "Tukey HSD (unpaired)"


def test_contrasts_find_what_unpaired_tukey_misses():
    # image sd 0.2 >> method difference 0.03 >> residual noise 0.01
    df = planted({"a": 0.0, "b": 0.03, "c": 0.0}, noise=0.01)
    mixed, unpaired = pairs(pairwise_contrasts(df)), pairs(tukey(df))
    assert bool(mixed[("a", "b")].reject) and mixed[("a", "b")].p_adj < 1e-6
    assert not bool(unpaired[("a", "b")].reject)                       # Tukey misses it
    assert mixed[("a", "b")].meandiff == pytest.approx(0.03, abs=0.005)
    assert not bool(mixed[("a", "c")].reject) and mixed[("a", "c")].p_adj > 0.05   # none planted
    assert bool(mixed[("b", "c")].reject) and mixed[("b", "c")].meandiff < 0
    assert list(pairwise_contrasts(df).columns) == list(POSTHOC_COLUMNS)
    assert mixed[("a", "b")].test == "mixedlm contrasts (t, Satterthwaite df, holm)"


def test_contrasts_match_the_two_way_anova():
    # balanced design, random intercept per image: the REML contrast is the difference of the
    # method means, with SE sqrt(2 MSE / n), MSE the image x method residual mean square
    n, alpha = 40, 0.05
    df = planted({"a": 0.0, "b": 0.02, "c": 0.05}, n_images=n, seed=3, noise=0.03)
    t = pairwise_contrasts(df, alpha=alpha, stat="wald")       # z intervals: the identity below
    wide = df.pivot(index="image_id", columns="method", values="value")[["a", "b", "c"]].to_numpy()
    resid = wide - wide.mean(1, keepdims=True) - wide.mean(0, keepdims=True) + wide.mean()
    mse = (resid ** 2).sum() / ((n - 1) * (3 - 1))
    se = np.sqrt(2 * mse / n)
    means = dict(zip("abc", wide.mean(0)))
    z = norm.ppf(1 - alpha / (2 * 3))                                    # Bonferroni, 3 pairs
    raw = []
    for r in t.itertuples():
        est = means[r.group2] - means[r.group1]
        assert r.meandiff == pytest.approx(est, abs=1e-9)
        assert (r.upper - r.lower) / (2 * z) == pytest.approx(se, rel=1e-3)
        raw.append(2 * norm.sf(abs(est) / se))
    # Holm by hand: sorted p times (m - rank), made monotone, capped at 1
    order = np.argsort(raw)
    holm = np.empty(3)
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw[k]))
        holm[k] = running
    np.testing.assert_allclose(t.p_adj, holm, rtol=1e-2)


def test_two_method_contrast_is_the_paired_t():
    df = planted({"a": 0.0, "b": 0.01}, n_images=30, seed=5, noise=0.02)
    r = pairwise_contrasts(df, stat="wald").iloc[0]
    wide = df.pivot(index="image_id", columns="method", values="value")
    d = (wide["b"] - wide["a"]).to_numpy()
    assert r.meandiff == pytest.approx(d.mean(), abs=1e-9)
    se = (r.upper - r.lower) / (2 * norm.ppf(1 - 0.05 / 2))              # one pair: no adjustment
    assert se == pytest.approx(d.std(ddof=1) / np.sqrt(len(d)), rel=1e-3)


def test_contrasts_of_one_level_are_empty():
    t = pairwise_contrasts(planted({"a": 0.0}, n_images=5))
    assert t.empty and list(t.columns) == list(POSTHOC_COLUMNS)


# ---------------------------------------------------------------- the PASS rule

def test_decision_rules():
    # one rule for low and high baselines: PASS only when significantly better
    assert [better_than(e, p) for e, p in ((0.1, 0.001), (0.1, 0.3), (-0.2, 0.001), (-0.2, 0.3), (0.1, 0.05))] \
        == ["PASS", "FAIL", "FAIL", "FAIL", "FAIL"]
    assert [finding(e, p) for e, p in ((0.1, 0.001), (0.1, 0.3), (-0.2, 0.001), (-0.2, 0.3), (0.1, 0.05))] \
        == ["better", "no difference", "worse", "no difference", "no difference"]
    assert better_than(0.1, float("nan")) == "undefined" and finding(0.1, float("nan")) == "undefined"
    assert better_than(0.1, 0.02, alpha=0.01) == "FAIL"
    assert vs_threshold(0.29, 0.3) == ("PASS", "below threshold")
    assert vs_threshold(0.3, 0.3) == ("FAIL", "not below threshold")
    assert vs_threshold(0.2, float("nan")) == ("undefined", "undefined")


def scores_of(df, model="run-a"):
    return df.assign(model=model, metric="auprc", step="trained", label=1)


def test_utility_rule_is_the_same_against_high_baselines():
    # [A]: XRAI's one PASS against a high baseline was a significant win over RetinaNet
    df = scores_of(planted({"baseline:avg": 0.0, "baseline:detector": 0.2, "gcam": 0.1, "grad": 0.0, "xrai": 0.3}))
    res = {(r["comparison"], r["method"]): r for r in utility_tests(df)}
    assert (res[("baseline:avg", "gcam")]["decision"], res[("baseline:avg", "gcam")]["finding"]) == ("PASS", "better")
    assert (res[("baseline:avg", "grad")]["decision"], res[("baseline:avg", "grad")]["finding"]) \
        == ("FAIL", "no difference")
    assert (res[("baseline:detector", "gcam")]["decision"], res[("baseline:detector", "gcam")]["finding"]) \
        == ("FAIL", "worse")
    assert (res[("baseline:detector", "xrai")]["decision"], res[("baseline:detector", "xrai")]["finding"]) \
        == ("PASS", "better")
    assert res[("baseline:detector", "xrai")]["question"] == "utility vs localization network"


def test_compare_rules_two_sided():
    df = planted({"gcam": 0.4, "grad": -0.1, "baseline:localization": 0.3}, noise=0.02, image_sd=0.05)
    df = df.assign(model_a="m1", model_b="m2", metric="ssim")
    res = {(r["question"], r["method"]): r for r in compare_tests(df, "repeatability")}
    low = res[("repeatability vs 0.5", "gcam")]
    ref = ttest_1samp(df[df.method == "gcam"].value, 0.5)                # two-sided
    assert low["p_value"] == pytest.approx(ref.pvalue, rel=1e-9) and low["estimate"] == pytest.approx(
        df[df.method == "gcam"].value.mean() - 0.5)
    assert (low["decision"], low["finding"]) == ("PASS", "better")
    assert (res[("repeatability vs 0.5", "grad")]["decision"], res[("repeatability vs 0.5", "grad")]["finding"]) \
        == ("FAIL", "worse")
    high = res[("repeatability vs localization network", "gcam")]
    assert (high["decision"], high["finding"], high["model"]) == ("PASS", "better", "m1 vs m2")
    assert res[("repeatability vs localization network", "grad")]["finding"] == "worse"


def test_randomization_rule_uses_each_groups_last_step():
    rows = []
    # resnet18 has 3 steps, inceptionv3 5: each group's fully randomized step is its own last
    for group, last in (("d/resnet18", 2), ("d/inceptionv3", 4)):
        for step in range(last + 1):
            for i in range(5):
                for method, v in (("gcam", 0.1 + 0.01 * i), ("gbp", 0.8 + 0.01 * i)):
                    rows.append(dict(dataset="d", group=group, source=group, image_id=f"im{i}", model="00-m",
                                     method=method, step=step, metric="ssim", value=0.9 if step < last else v))
    rand = pd.DataFrame(rows)
    thr = pd.DataFrame([dict(dataset="d", group=g, source=g, model="00-m", method=m, threshold=0.5)
                        for g in ("d/resnet18", "d/inceptionv3") for m in ("gcam", "gbp")])
    res = {(r["group"], r["method"]): r for r in randomization_tests(rand, thr)}
    for g in ("d/resnet18", "d/inceptionv3"):
        assert (res[(g, "gcam")]["decision"], res[(g, "gcam")]["finding"]) == ("PASS", "below threshold")
        assert (res[(g, "gbp")]["decision"], res[(g, "gbp")]["finding"]) == ("FAIL", "not below threshold")
        assert res[(g, "gcam")]["estimate"] == pytest.approx(0.12 - 0.5)


def test_table2_one_block_per_group():
    rows = [
        dict(dataset="aaa", group="aaa/resnet18", question="utility vs average mask", method="gcam", decision="PASS"),
        dict(dataset="aaa", group="aaa/resnet18", question="utility vs localization network", method="gcam",
             decision="FAIL"),
        dict(dataset="aaa", group="aaa/resnet18", question="trained vs randomized", method="gcam", decision="PASS"),
        dict(dataset="aaa", group="aaa/resnet18", question="utility vs average mask", method="grad", decision="FAIL"),
        # two models of one group disagree: not a PASS
        dict(dataset="aaa", group="aaa/resnet18", question="repeatability vs 0.5", method="grad", decision="PASS"),
        dict(dataset="aaa", group="aaa/resnet18", question="repeatability vs 0.5", method="grad", decision="FAIL"),
        # the same method on other data, and on another architecture: separate rows, never pooled
        dict(dataset="bbb", group="bbb/resnet18", question="utility vs average mask", method="gcam", decision="FAIL"),
        dict(dataset="aaa", group="aaa/resnet18-wildcat", question="utility vs average mask", method="gcam",
             decision="undefined"),
    ]
    t = table2(pd.DataFrame(rows))
    assert list(t.columns) == ["dataset", "model", "method", *table2_columns()]
    assert list(zip(t.dataset, t.model, t.method)) == [("aaa", "resnet18", "grad"), ("aaa", "resnet18", "gcam"),
                                                       ("aaa", "resnet18-wildcat", "gcam"), ("bbb", "resnet18", "gcam")]
    cell = lambda d, m, meth, q: t[(t.dataset == d) & (t.model == m) & (t.method == meth)][q].item()
    assert cell("aaa", "resnet18", "gcam", "utility vs average mask") == "PASS"
    assert cell("bbb", "resnet18", "gcam", "utility vs average mask") == "FAIL"
    assert cell("aaa", "resnet18-wildcat", "gcam", "utility vs average mask") == "undefined"
    assert cell("aaa", "resnet18", "gcam", "utility vs localization network") == "FAIL"
    assert cell("aaa", "resnet18", "grad", "repeatability vs 0.5") == "FAIL"
    assert cell("aaa", "resnet18", "gcam", "reproducibility vs 0.5") == "no data"


# ---------------------------------------------------------------- hand-made result folders

def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


HASH_A, HASH_B = "a" * 64, "b" * 64


def make_score(folder, df, **meta):
    folder.mkdir(parents=True)
    df.to_csv(folder / "scores.csv", index=False)
    (folder / "pointwise.csv").write_text("\n")          # what an empty table writes
    write_json(folder / "score.json", {"maps": str(folder / "no-store"), "baselines": "avg", **meta})


@pytest.fixture
def results(tmp_path):
    """Three data set x model groups; one older score folder that only its run card describes."""
    root = tmp_path / "results"
    better = scores_of(planted({"baseline:avg": 0.0, "gcam": 0.1, "grad": 0.0}), "r18-a")
    worse = scores_of(planted({"baseline:avg": 0.0, "gcam": -0.1, "grad": 0.0}, seed=1), "r18-other")
    make_score(root / "score-a", better, model="r18-a", data_hash=HASH_A, arch="resnet18", head="classification",
               choices={"similarity.maps": "processed", "pointwise.centres": "receptive-field"})
    make_score(root / "score-b", worse, model="r18-other", data_hash=HASH_B, arch="resnet18", head="classification",
               choices={"similarity.maps": "processed"})
    # older: no data_hash / arch; its data folder and the run card say
    data = tmp_path / "prepared"
    data.mkdir()
    (data / "manifest.csv").write_text("image_id,split\nx,test\n")
    write_json(root / "wc-run" / "run.json", {"arch": "resnet18", "head": "wildcat", "metrics": {}})
    make_score(root / "score-old", scores_of(planted({"baseline:avg": 0.0, "wildcat": 0.2}, seed=2), "wc-run"),
               model="wc-run", data=str(data))
    cmp = planted({"gcam": 0.4, "baseline:localization": 0.2}, noise=0.02, image_sd=0.05).assign(
        model_a="r18-a", model_b="r34", metric="ssim")
    (root / "reproducibility").mkdir()
    cmp.to_csv(root / "reproducibility" / "compare.csv", index=False)
    write_json(root / "reproducibility" / "compare.json",
               {"models": ["/x/r18-a", "/x/r34"], "data_hash": HASH_A, "archs": ["resnet18", "resnet34"],
                "heads": ["classification", "classification"], "choices": {"similarity.maps": "raw"}})
    return root, data


def test_result_info_reads_new_keys_and_falls_back(results, tmp_path):
    from cxrsal.data.manifest import manifest_hash

    root, data = results
    new = result_info(root / "score-a", "score")
    assert (new["data_hash"], new["dataset"], new["models"][0]["key"]) == (HASH_A, "a" * 12, "resnet18")
    old = result_info(root / "score-old", "score", {"wc-run": root / "wc-run"})
    assert old["data_hash"] == manifest_hash(data) and old["models"][0]["key"] == "resnet18-wildcat"
    cmp = result_info(root / "reproducibility", "compare")
    assert [m["key"] for m in cmp["models"]] == ["resnet18", "resnet34"]
    write_json(tmp_path / "bare" / "compare.json", {"models": ["/nowhere/m1", "/nowhere/m2"]})
    bare = result_info(tmp_path / "bare", "compare")
    assert bare["data_hash"] == "unknown" and [m["key"] for m in bare["models"]] == ["unknown", "unknown"]
    # "unknown" in a result JSON is not an answer: the run cards are asked
    write_json(tmp_path / "asked" / "compare.json", {"models": [str(root / "wc-run"), "/nowhere/m2"],
                                                      "archs": ["unknown", "unknown"], "data_hash": "unknown"})
    asked = result_info(tmp_path / "asked", "compare")
    assert [m["key"] for m in asked["models"]] == ["resnet18-wildcat", "unknown"]


def test_run_stats_never_pools_data_sets_or_architectures(results, tmp_path):
    root, data = results
    logged = []
    res = run_stats([root], tmp_path / "stats", log=logged.append)
    old = json.loads((root / "score-old" / "score.json").read_text())
    from cxrsal.data.manifest import manifest_hash
    old_ds = manifest_hash(old["data"])[:12]
    groups = {f"{'a' * 12}/resnet18", f"{'b' * 12}/resnet18", f"{old_ds}/resnet18-wildcat"}
    assert set(res["groups"]) == groups and logged[0].startswith("3 group(s)")

    tests = pd.read_csv(tmp_path / "stats" / "tests.csv")
    assert {"dataset", "group", "finding", "decision"} <= set(tests.columns)
    util = tests[(tests.method == "gcam") & (tests.question == "utility vs average mask")].set_index("dataset")
    assert util.loc["a" * 12, "decision"] == "PASS" and util.loc["b" * 12, "decision"] == "FAIL"
    assert util.loc["b" * 12, "finding"] == "worse"
    # reproducibility (two architectures) sits in model A's group and names the pair
    rep = tests[tests.question.str.startswith("reproducibility")]
    assert set(rep.group) == {f"{'a' * 12}/resnet18"} and set(rep.model) == {"r18-a vs r34"}

    t2 = pd.read_csv(tmp_path / "stats" / "table2.csv", keep_default_na=False)
    assert list(t2.columns[:3]) == ["dataset", "model", "method"]
    blocks = list(dict.fromkeys(zip(t2.dataset, t2.model)))
    assert blocks == sorted(blocks) and len(blocks) == 3
    assert t2[(t2.dataset == "a" * 12) & (t2.method == "gcam")]["reproducibility vs localization network"].item() \
        == "PASS"

    md = (tmp_path / "stats" / "tables.md").read_text()
    assert md.count("## Table 2 ([A]): data set") == 3 and md.count(POOLING) == 3
    assert f"data set {'a' * 12}, model resnet18" in md and str(data) in md
    assert "- similarity.maps: processed, raw" in md
    assert "WARNING: results in this group used different values of similarity.maps" in md
    assert md.count("WARNING") == 1                       # group b has one value only
    assert "record no choices" in md                       # the older folder
    assert "single-step adjusted as R's multcomp" in md and "significantly better than the baseline" in md

    choices = pd.read_csv(tmp_path / "stats" / "choices.csv")
    assert list(choices.columns) == ["folder", "kind", "dataset", "group", "key", "value"]
    assert len(choices) == 4 and set(choices.kind) == {"score", "compare"}

    post = pd.read_csv(tmp_path / "stats" / "posthoc.csv")
    assert set(post.test) == {"multcomp single-step (z, multivariate normal)"} and set(post.group) == groups
    run_stats([root], tmp_path / "holm", posthoc="holm", log=lambda *_: None)
    assert set(pd.read_csv(tmp_path / "holm" / "posthoc.csv").test) == {"mixedlm contrasts (t, Satterthwaite df, holm)"}
    assert not (tmp_path / "stats" / "tukey.csv").exists()
    run_stats([root], tmp_path / "tukey", posthoc="tukey-hsd-unpaired", log=lambda *_: None)
    assert set(pd.read_csv(tmp_path / "tukey" / "posthoc.csv").test) == {"Tukey HSD (unpaired)"}


def write_text(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def folder_meta(models, archs):
    return {"models": models, "data_hash": "c" * 64, "archs": archs, "heads": ["classification"] * len(archs),
            "choices": {"similarity.maps": "processed"}}


def test_table2_cells_from_hand_made_randomization_and_repeatability_folders(tmp_path):
    """Randomization: gcam's fully randomized SSIM (0.10 +- 0.01) lies far under its threshold
    0.40 (PASS: the map degraded); grad's (0.90) far over its 0.40 (FAIL). Repeatability: gcam's
    SSIM between replicates 0.80 beats 0.5 and the localization networks' 0.30 (PASS, PASS);
    grad's 0.20 beats neither (FAIL, FAIL). The values vary by image, so every test has variance."""
    root = tmp_path / "results"
    ids = [f"img{i}" for i in range(8)]
    wobble = np.linspace(-0.01, 0.01, len(ids))
    rows = []
    for method, final in (("gcam", 0.10), ("grad", 0.90)):
        for step, name in enumerate(("trained", "logits", "conv5")):
            level = 1.0 if step == 0 else (1.0 + final) / 2 if step == 1 else final
            rows += [dict(image_id=i, model="00-r18-a", method=method, step=step, step_name=name, metric="ssim",
                          value=level + (w if step else 0.0)) for i, w in zip(ids, wobble)]
    write_text(root / "rand" / "randomization.csv", pd.DataFrame(rows).to_csv(index=False))
    write_text(root / "rand" / "thresholds.csv", pd.DataFrame([dict(model="00-r18-a", method=m, threshold=0.40)
                                                               for m in ("gcam", "grad")]).to_csv(index=False))
    write_text(root / "rand" / "randomization.json", json.dumps(folder_meta(["/x/r18-a"], ["resnet18"])))

    cmp = []
    for method, level in (("gcam", 0.80), ("grad", 0.20), ("baseline:localization", 0.30)):
        cmp += [dict(image_id=i, model_a="r18-a", model_b="r18-b", method=method, metric="ssim", value=level + w)
                for i, w in zip(ids, wobble[::-1] if method == "grad" else wobble)]
    write_text(root / "rep" / "compare.csv", pd.DataFrame(cmp).to_csv(index=False))
    write_text(root / "rep" / "compare.json",
               json.dumps(folder_meta(["/x/r18-a", "/x/r18-b"], ["resnet18", "resnet18"])))

    run_stats([root], tmp_path / "stats", log=quiet)
    t2 = pd.read_csv(tmp_path / "stats" / "table2.csv", keep_default_na=False).set_index("method")
    assert t2.loc["gcam", "trained vs randomized"] == "PASS"
    assert t2.loc["grad", "trained vs randomized"] == "FAIL"
    assert t2.loc["gcam", "repeatability vs 0.5"] == "PASS"
    assert t2.loc["gcam", "repeatability vs localization network"] == "PASS"
    assert t2.loc["grad", "repeatability vs 0.5"] == "FAIL"
    assert t2.loc["grad", "repeatability vs localization network"] == "FAIL"
    tests = pd.read_csv(tmp_path / "stats" / "tests.csv")
    rand = tests[tests.question == "trained vs randomized"].set_index("method")
    # the estimate is the last step's mean minus the threshold: 0.10 - 0.40 and 0.90 - 0.40
    assert rand.loc["gcam", "estimate"] == pytest.approx(-0.30, abs=1e-12)
    assert rand.loc["grad", "estimate"] == pytest.approx(0.50, abs=1e-12)
    half = tests[tests.question == "repeatability vs 0.5"].set_index("method")
    assert half.loc["gcam", "estimate"] == pytest.approx(0.30, abs=1e-12)


def test_cli_posthoc_option(results, tmp_path):
    from click.testing import CliRunner

    from cxrsal.cli.main import cli

    root, _ = results
    r = CliRunner().invoke(cli, ["stats", "--results", str(root), "--out", str(tmp_path / "s"), "--posthoc",
                                 "tukey-hsd-unpaired"])
    assert r.exit_code == 0, r.output
    assert "posthoc.csv" in r.output.splitlines()[-1]
    assert set(pd.read_csv(tmp_path / "s" / "posthoc.csv").test) == {"Tukey HSD (unpaired)"}
    bad = CliRunner().invoke(cli, ["stats", "--results", str(root), "--out", str(tmp_path / "s"), "--posthoc", "x"])
    assert bad.exit_code == 2 and "'x' is not one of 'holm', 'multcomp', 'tukey-hsd-unpaired'" in bad.output
    # the option lists exactly the registered procedures
    for command in ("stats", "report"):
        option = next(p for p in cli.commands[command].params if p.name == "posthoc")
        assert sorted(option.type.choices) == POSTHOC.names() and option.default is None   # stats.posthoc's
    # the same through the config: --set stats.posthoc
    r = CliRunner().invoke(cli, ["stats", "--results", str(root), "--out", str(tmp_path / "h"), "--set",
                                 "stats.posthoc=holm"])
    assert r.exit_code == 0 and set(pd.read_csv(tmp_path / "h" / "posthoc.csv").test) == {
        "mixedlm contrasts (t, Satterthwaite df, holm)"}


def test_report_shows_each_group_with_its_choices(tmp_path):
    from cxrsal.report import build_report

    # compare results only: the report needs no figure (and so no TensorFlow)
    root = tmp_path / "results"
    for name, arch_b, maps in (("repeat", "resnet18", "processed"), ("reprod", "resnet34", "raw")):
        (root / name).mkdir(parents=True)
        planted({"gcam": 0.3, "baseline:localization": 0.2}, noise=0.02, image_sd=0.05).assign(
            model_a="m1", model_b="m2", metric="ssim").to_csv(root / name / "compare.csv", index=False)
        write_json(root / name / "compare.json", {"models": ["/x/m1", "/x/m2"], "data_hash": HASH_A,
                                                   "archs": ["resnet18", arch_b],
                                                   "heads": ["classification", "classification"],
                                                   "choices": {"similarity.maps": maps}})
    page = build_report([root], tmp_path / "report", posthoc="tukey-hsd-unpaired", log=lambda *_: None).read_text()
    assert page.count("<h2>Table 2 ([A]): data set") == 1 and POOLING in page
    assert "WARNING: results in this group used different values of similarity.maps" in page
    assert "Tukey HSD (unpaired: ignores the pairing by image)" in page
    md = (tmp_path / "report" / "report.md").read_text()
    assert "repeatability vs 0.5" in md and "Table 1 ([B]), utility" in md
    assert set(pd.read_csv(tmp_path / "report" / "stats" / "posthoc.csv").test) == {"Tukey HSD (unpaired)"}


def test_docstring_examples():
    import doctest

    import cxrsal.stats
    import cxrsal.stats.power

    assert doctest.testmod(cxrsal.stats).failed == 0
    assert doctest.testmod(cxrsal.stats.power).failed == 0


def test_stats_import_no_tensorflow():
    assert loaded_by("import cxrsal.stats.study, cxrsal.report", ("tensorflow", "keras")) == []


def test_localization_table_intervals_against_a_slow_loop():
    """AUPRC, hit rate and mIoU per method with paired image-level bootstrap intervals: each
    interval equals a loop over the same replicate image sets (bootstrap_indices, seed 0)."""
    from cxrsal.metrics import bootstrap_indices
    from cxrsal.stats.kinds.score import localization_table

    rng = np.random.default_rng(3)
    ids = [f"img{i}" for i in range(12)]
    rows = []
    for method in ("gcam", "grad"):
        for i in ids:
            for metric, value in (("auprc", rng.random()), ("hit", float(rng.random() < 0.5)), ("iou", rng.random())):
                rows.append(dict(dataset="d", group="d/resnet18", model="m", method=method, step="trained",
                                 metric=metric, value=value, label=1, image_id=i))
    rows.append(dict(dataset="d", group="d/resnet18", model="m", method="gcam", step="trained", metric="auprc",
                     value=0.99, label=0, image_id="negative"))          # negatives are not scored for utility
    scores = pd.DataFrame(rows)
    t = localization_table(scores, replicates=200, seed=0).set_index("method")
    assert list(t.index) == ["grad", "gcam"]                              # [A]'s order
    idx = bootstrap_indices(len(ids), replicates=200, seed=0)
    for method in ("gcam", "grad"):
        for metric, name in (("auprc", "AUPRC"), ("hit", "hit rate"), ("iou", "mIoU")):
            d = scores[(scores.method == method) & (scores.metric == metric) & (scores.label == 1)]
            v = d.set_index("image_id").loc[sorted(ids), "value"].to_numpy()
            means = [v[r].mean() for r in idx]
            low, high = np.percentile(means, [2.5, 97.5])
            assert t.loc[method, name] == pytest.approx(v.mean())
            assert t.loc[method, f"{name} 95% CI"] == f"[{low:.3f}, {high:.3f}]"
    assert t.loc["gcam", "positives"] == 12


def test_threshold_interval_is_the_bootstrap_of_the_mean():
    from cxrsal.metrics import bootstrap_indices
    from cxrsal.stats.questions import mean_interval

    v = np.random.default_rng(0).normal(0.3, 0.1, 40)
    idx = bootstrap_indices(40, replicates=1000, seed=0)
    low, high = np.percentile([v[r].mean() for r in idx], [2.5, 97.5])
    assert mean_interval(v, 0.05) == pytest.approx((low, high), abs=1e-12)


def test_a_no_difference_says_what_it_could_have_detected(results, tmp_path):
    """grad planted equal to the average mask finds no difference; its row gives the smallest
    difference its test could have found at 80 % power: statsmodels' TTestPower of a t-test with
    the row's degrees of freedom, in units of the row's standard error. Table 2 shows it beside
    the FAIL; rows that found a difference have none."""
    from scipy.stats import t
    from statsmodels.stats.power import TTestPower

    root, _ = results
    run_stats([root], tmp_path / "stats", log=quiet)
    tests = pd.read_csv(tmp_path / "stats" / "tests.csv")
    row = tests[(tests.method == "grad") & (tests.question == "utility vs average mask")
                & (tests.dataset == "a" * 12)].iloc[0]
    assert row.finding == "no difference" and row.decision == "FAIL"
    se = (row.ci_high - row.ci_low) / (2 * t.ppf(0.975, row.df))
    n = row.df + 1               # TTestPower's t has nobs - 1 degrees of freedom, effect in units of SE x sqrt(nobs)
    effect = TTestPower().solve_power(nobs=n, alpha=0.05, power=0.8)
    assert row.detectable == pytest.approx(effect * se * np.sqrt(n), rel=1e-5)     # statsmodels solves to ~1e-6
    assert tests[tests.finding != "no difference"].detectable.isna().all()
    md = (tmp_path / "stats" / "tables.md").read_text()
    assert f"FAIL (no difference; detectable {row.detectable:.3f})" in md
    assert "smallest difference its test could have detected with 80 % power" in md
    # the five lines at the top: per area the methods that PASS, the power of the no-differences, the findings
    lines = md.split("What this run found:\n")[1].split("\n\n")[0].splitlines()
    assert len(lines) == 5 and lines[0].startswith("- Localization utility, the methods that PASS")
    assert f"gcam ({'a' * 12}/resnet18)" in lines[0] and f"none ({'b' * 12}/resnet18)" in lines[0]
    nd = tests[(tests.decision == "FAIL") & (tests.finding == "no difference")]
    assert lines[3].startswith(f"- Power: {len(nd)} of {int((tests.decision == 'FAIL').sum())} FAILs found no "
                               "difference") and f"median {nd.detectable.median():.3f}" in lines[3]
    assert lines[4].startswith("- The papers' headline findings: ")
