"""Mixed models and Tukey on planted tables; Table 2 logic on hand-made results."""

import numpy as np
import pandas as pd
import pytest

from cxrsal.stats import better_than, mixed_model, not_worse_than, tukey
from cxrsal.stats.study import TABLE2_COLUMNS, table2


def planted(effects, n_images=60, seed=0, noise=0.05):
    """AUPRC-like values: a random intercept per image plus a fixed effect per method."""
    rng = np.random.default_rng(seed)
    image_effect = rng.normal(0, 0.2, n_images)
    rows = []
    for method, effect in effects.items():
        for i in range(n_images):
            rows.append(dict(image_id=f"im{i}", method=method, value=0.4 + image_effect[i] + effect
                             + rng.normal(0, noise)))
    return pd.DataFrame(rows)


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
    t = tukey(df)
    pairs = {(r.group1, r.group2): r for r in t.itertuples()}
    assert bool(pairs[("a", "c")].reject) and bool(pairs[("b", "c")].reject)
    assert not bool(pairs[("a", "b")].reject)


def test_decision_rules():
    assert not_worse_than(-0.2, 0.001) == "FAIL" and not_worse_than(-0.2, 0.3) == "PASS"
    assert not_worse_than(0.1, 0.001) == "PASS"
    assert better_than(0.1, float("nan")) == "n/a"


def test_table2_from_hand_made_results():
    tests = pd.DataFrame([
        dict(question="utility vs average mask", method="gcam", decision="PASS"),
        dict(question="utility vs localization network", method="gcam", decision="FAIL"),
        dict(question="trained vs randomized", method="gcam", decision="PASS"),
        dict(question="utility vs average mask", method="grad", decision="FAIL"),
        # two models disagree: not a PASS
        dict(question="repeatability vs 0.5", method="grad", decision="PASS"),
        dict(question="repeatability vs 0.5", method="grad", decision="FAIL"),
    ])
    t = table2(tests).set_index("method")
    assert list(t.index) == ["grad", "gcam"]            # [A]'s method order
    assert t.loc["gcam", "utility vs average mask"] == "PASS"
    assert t.loc["gcam", "utility vs localization network"] == "FAIL"
    assert t.loc["gcam", "trained vs randomized"] == "PASS"
    assert t.loc["grad", "repeatability vs 0.5"] == "FAIL"
    assert t.loc["gcam", "reproducibility vs 0.5"] == "no data"
    assert list(t.columns) == list(TABLE2_COLUMNS)


def test_table1_ignores_the_localization_networks(tmp_path):
    import json

    import pandas as pd

    from cxrsal.stats.study import table1

    runs = []
    for name, card in {"clf": {"arch": "resnet18", "head": "classification", "metrics": {"test_auc": 0.9}},
                       "det": {"task": "retinanet", "arch": "resnet10", "head": "retinanet",
                               "metrics": {"test_auc": 0.8}}}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps(card))
        runs.append(tmp_path / name)
    t1 = table1(runs, pd.DataFrame(), pd.DataFrame())
    assert t1.backbone.tolist() == ["resnet18"] and t1["AUC classification"].tolist() == [0.9]
