"""Table 1 ([B]) on hand-made run folders and score tables: the best-validation run per backbone x
head (never the best test run), the RetinaNet rows, the utility part and "no data" cells."""

import json

import pandas as pd
import pytest

from cxrsal.stats.sources import NO_DATA
from cxrsal.stats.tables import chosen_runs, table1, table1_utility

HASH_A, HASH_B = "a" * 64, "b" * 64


def run(root, name, arch, head="classification", task=None, data_hash=HASH_A, **metrics):
    card = {"arch": arch, "head": head, "metrics": metrics, "data": {"dir": "/d", "manifest_sha256": data_hash}}
    if task:
        card["task"] = task
    (root / name).mkdir(parents=True)
    (root / name / "run.json").write_text(json.dumps(card))
    return root / name


@pytest.fixture
def runs(tmp_path):
    return [
        # r18-b has the better test AUC, r18-a the better validation AUC: r18-a is reported
        run(tmp_path, "r18-a", "resnet18", best_val_auc=0.90, test_auc=0.80),
        run(tmp_path, "r18-b", "resnet18", best_val_auc=0.85, test_auc=0.95),
        run(tmp_path, "r18-wc", "resnet18", head="wildcat", best_val_auc=0.88, test_auc=0.86),
        run(tmp_path, "r34", "resnet34", best_val_auc=0.70),                       # no test AUC, no maps
        # RetinaNets: the lowest validation loss wins, whatever the test AUC
        run(tmp_path, "retina-1", "resnet50", "retinanet", task="retinanet", best_val_loss=0.40, test_auc=0.83),
        run(tmp_path, "retina-2", "resnet50", "retinanet", task="retinanet", best_val_loss=0.30, test_auc=0.78),
        run(tmp_path, "unet", "unet", "segmentation", task="unet", best_val_loss=0.1, test_auc=0.99),
    ]


POINTWISE = pd.DataFrame([
    dict(model="r18-a", method="gcam", step="trained", n=20, n_negative=10, pointwise_ap=0.6),
    dict(model="r18-a", method="grad", step="trained", n=20, n_negative=10, pointwise_ap=0.1),
    dict(model="r18-b", method="gcam", step="trained", n=20, n_negative=10, pointwise_ap=0.9),
    dict(model="r18-wc", method="wildcat", step="trained", n=10, n_negative=0, pointwise_ap=0.7),
    # the detector scored beside two classifiers' maps: one value
    dict(model="retina-2", method="baseline:detector", step="trained", n=20, n_negative=10, pointwise_ap=0.55),
    dict(model="retina-2", method="baseline:detector", step="trained", n=20, n_negative=10, pointwise_ap=0.55),
    dict(model="retina-1", method="baseline:detector", step="trained", n=20, n_negative=10, pointwise_ap=0.99),
])


def row(t, backbone, head):
    return t[(t.backbone == backbone) & (t["head"] == head)].iloc[0]


def test_best_validation_run_is_chosen_not_best_test(runs):
    t = table1(runs, POINTWISE)
    r = row(t, "resnet18", "classification")
    assert (r.run, r["selected by"], r["val score"], r["test AUC"]) == ("r18-a", "best val AUC", 0.90, 0.80)
    assert r["pointwise AP"] == 0.6 and r["pointwise AP of"] == "gcam"      # GradCAM's, not grad's 0.1
    # rows: backbones in order, classification before wildcat, RetinaNet rows; no U-Net row
    assert list(zip(t.backbone, t["head"])) == [("resnet18", "classification"), ("resnet18", "wildcat"),
                                                ("resnet34", "classification"), ("resnet50", "retinanet")]


def test_retinanet_rows_use_the_lowest_validation_loss(runs):
    r = row(table1(runs, POINTWISE), "resnet50", "retinanet")
    assert (r.run, r["selected by"], r["val score"], r["test AUC"]) == ("retina-2", "lowest val loss", 0.30, 0.78)
    assert r["pointwise AP"] == 0.55 and r["pointwise AP of"] == "baseline:detector"


def test_cells_without_data_say_so(runs):
    t = table1(runs, POINTWISE)
    r = row(t, "resnet34", "classification")
    assert r["test AUC"] == NO_DATA and r["pointwise AP"] == NO_DATA
    assert set(table1(runs, pd.DataFrame())["pointwise AP"]) == {NO_DATA}


def test_positives_only_ap_is_marked(runs):
    # no negatives ranked: no false positives from them, so the AP is inflated; the cell says so
    assert row(table1(runs, POINTWISE), "resnet18", "wildcat")["pointwise AP"] == "0.700 (positives only)"


def test_data_sets_are_not_pooled(tmp_path):
    runs = [run(tmp_path, "a", "resnet18", best_val_auc=0.9, test_auc=0.7),
            run(tmp_path, "b", "resnet18", data_hash=HASH_B, best_val_auc=0.8, test_auc=0.6)]
    chosen = chosen_runs(runs)
    assert [(c["dataset"], c["run"]) for c in chosen] == [("a" * 12, "a"), ("b" * 12, "b")]


def test_utility_part_of_the_chosen_runs(runs):
    rows = []
    for model, shift in (("r18-a", 0.0), ("r18-b", 0.5), ("r18-wc", 0.2)):
        for i, v in enumerate((0.2, 0.4, 0.6)):
            for method, extra in (("gcam", 0.0), ("baseline:avg", -0.1), ("baseline:detector", 0.1)):
                rows.append(dict(image_id=f"im{i}", model=model, method=method, step="trained", metric="auprc",
                                 value=v + shift + extra, label=1))
    rows.append(dict(image_id="im0", model="r18-wc", method="wildcat", step="trained", metric="auprc", value=0.3,
                     label=1))
    # the same image scored twice counts once; other metrics and randomized steps are not utility
    rows.append(dict(image_id="im0", model="r18-wc", method="wildcat", step="trained", metric="auprc", value=0.5,
                     label=1))
    rows.append(dict(image_id="im1", model="r18-wc", method="wildcat", step="trained", metric="auprc", value=0.9,
                     label=1))
    rows.append(dict(image_id="im2", model="r18-wc", method="wildcat", step="trained", metric="auroc", value=0.0,
                     label=1))
    rows.append(dict(image_id="im2", model="r18-wc", method="wildcat", step="5", metric="auprc", value=0.0,
                     label=1))
    t = table1_utility(runs, pd.DataFrame(rows))
    assert "retinanet" not in set(t["head"])
    a = row(t, "resnet18", "classification")
    assert a.run == "r18-a" and a.positives == 3
    assert a.gcam == pytest.approx(0.4) and a["average mask"] == pytest.approx(0.3)     # means of 0.2, 0.4, 0.6
    assert a["RetinaNet heatmap"] == pytest.approx(0.5)
    assert a.wildcat == NO_DATA and a.xrai == NO_DATA
    wc = row(t, "resnet18", "wildcat")
    assert wc.wildcat == pytest.approx(((0.3 + 0.5) / 2 + 0.9) / 2)
    assert row(t, "resnet34", "classification").gcam == NO_DATA
    # [B]'s two baseline columns only, while no other baseline is scored; no constant flags recorded
    assert list(t.columns)[-3:] == ["average mask", "RetinaNet heatmap", "constant maps"]
    assert a["constant maps"] == NO_DATA


def test_other_scored_baselines_follow_bs_columns(runs):
    # a U-Net's maps scored beside r18-a's: a column after [B]'s two, under the baseline's registered label
    from cxrsal.experiments.score_baselines import SCORE_BASELINES

    rows = [dict(image_id=f"im{i}", model="r18-a", method=method, step="trained", metric="auprc", value=v,
                 label=1, constant=method == "gcam" and i == 0)
            for i, v in enumerate((0.2, 0.6)) for method in ("gcam", "baseline:segmentation")]
    t = table1_utility(runs, pd.DataFrame(rows))
    label = SCORE_BASELINES.get("seg").label
    assert list(t.columns)[-4:] == ["average mask", "RetinaNet heatmap", label, "constant maps"]
    a = row(t, "resnet18", "classification")
    assert a[label] == pytest.approx(0.4) and a["average mask"] == NO_DATA
    assert a["constant maps"] == "gcam 1 of 2"          # of the methods' maps; a baseline is no method


def test_findings_of_the_studies_on_hand_made_results(runs):
    """[B]: WILDCAT above GradCAM and the average mask; [A]: gcam/gbp/ggcam pass randomization,
    xrai fails -- each checked on hand-made tables with a known answer."""
    from cxrsal.stats.findings import findings

    pointwise = pd.concat([POINTWISE.assign(n_negative=10), pd.DataFrame([
        dict(model="r18-wc", method="baseline:avg", step="trained", n=20, n_negative=10, pointwise_ap=0.3)])])
    scores = pd.DataFrame([dict(image_id=f"i{k}", model=m, method=meth, step="trained", metric="auprc", value=v,
                                label=1)
                           for k in range(3)
                           for m, meth, v in (("r18-wc", "wildcat", 0.5), ("r18-wc", "baseline:avg", 0.4),
                                              ("r18-a", "gcam", 0.6))])
    tests = pd.DataFrame([dict(group="g/resnet18", question="trained vs randomized", method=m, decision=d,
                               estimate=e)
                          for m, d, e in (("gcam", "PASS", -0.2), ("gbp", "FAIL", 0.1), ("ggcam", "PASS", -0.1),
                                          ("xrai", "FAIL", 0.05))])
    res = {"table1": table1(runs, pointwise), "table1_utility": table1_utility(runs, scores), "tests": tests,
           "pointwise_table": pointwise}
    f = findings(res).set_index("finding")
    ds = HASH_A[:12]            # [B]'s findings are per data set and backbone
    # pointwise: WILDCAT 0.7 > GradCAM 0.6 and > average mask 0.3
    assert f.loc[f"{ds}/resnet18: WILDCAT's pointwise AP above GradCAM's and the average mask's", "holds"] == "yes"
    # utility: WILDCAT 0.5 < GradCAM 0.6: does not hold
    r = f.loc[f"{ds}/resnet18: WILDCAT's utility AUPRC above GradCAM's and the average mask's"]
    assert r.holds == "no" and "GradCAM 0.600" in r.evidence and "WILDCAT 0.500" in r.evidence
    assert f.loc["g/resnet18: gcam passes cascading randomization", "holds"] == "yes"
    assert f.loc["g/resnet18: gbp passes cascading randomization", "holds"] == "no"
    assert f.loc["g/resnet18: xrai fails cascading randomization", "holds"] == "yes"
    assert set(f.study) == {"[A]", "[B]"}


def test_label_permuted_runs_are_never_chosen(tmp_path):
    """A model of permuted labels (data randomization test) is no Table 1 candidate, even with the
    best validation AUC of its backbone x head."""
    import json

    runs = []
    for name, val, permuted in (("true", 0.7, None), ("permuted", 0.9, {"seed": 0, "fit_auc": 0.95})):
        d = tmp_path / name
        d.mkdir()
        card = {"task": "classification", "arch": "resnet18", "head": "classification",
                "data": {"manifest_sha256": "ab" * 32}, "metrics": {"best_val_auc": val, "test_auc": 0.6}}
        if permuted:
            card["label_permuted"] = permuted
        (d / "run.json").write_text(json.dumps(card))
        runs.append(d)
    assert [c["run"] for c in chosen_runs(runs)] == ["true"]


def test_two_data_sets_with_runs_of_one_name_keep_their_own_numbers(tmp_path):
    """A study trains `resnet18-a` on each data set: Table 1 and its utility part take each run's
    pointwise AP and AUPRC from its own data set's rows, never the other's."""
    runs = [run(tmp_path / "rsna", "r18-a", "resnet18", best_val_auc=0.9, test_auc=0.8, data_hash=HASH_A),
            run(tmp_path / "siim", "r18-a", "resnet18", best_val_auc=0.9, test_auc=0.7, data_hash=HASH_B)]
    pointwise = pd.DataFrame([dict(dataset=h[:12], model="r18-a", method="gcam", step="trained", n=20, n_negative=10,
                                   pointwise_ap=ap) for h, ap in ((HASH_A, 0.6), (HASH_B, 0.2))])
    scores = pd.DataFrame([dict(dataset=h[:12], image_id=f"i{k}", model="r18-a", method="gcam", step="trained",
                                metric="auprc", value=v, label=1) for h, v in ((HASH_A, 0.5), (HASH_B, 0.3))
                           for k in range(2)])
    t = table1(runs, pointwise).set_index("dataset")
    assert (t.loc[HASH_A[:12], "pointwise AP"], t.loc[HASH_B[:12], "pointwise AP"]) == (0.6, 0.2)
    assert (t.loc[HASH_A[:12], "test AUC"], t.loc[HASH_B[:12], "test AUC"]) == (0.8, 0.7)
    u = table1_utility(runs, scores).set_index("dataset")
    assert (u.loc[HASH_A[:12], "gcam"], u.loc[HASH_B[:12], "gcam"]) == (0.5, 0.3)
    assert (u.loc[HASH_A[:12], "positives"], u.loc[HASH_B[:12], "positives"]) == (2, 2)
