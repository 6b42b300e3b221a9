"""`cxrsal faithfulness` on a real map store: its areas against a per-image loop through the Keras
model itself, resumption after a lost table, the settings it refuses to mix, and the Table 2
question its result kind answers."""

import json

import numpy as np
import pandas as pd
import pytest

from cxrsal.config import load_config

from helpers import cxrsal

SETTINGS = {"faithfulness.fractions": [0.25, 0.5, 0.75], "faithfulness.steps": 4, "faithfulness.bootstrap": 50,
            "faithfulness.batch_size": 7}


@pytest.fixture(scope="module")
def store(trained_classifier, tmp_path_factory):
    from cxrsal.saliency.runner import run_saliency

    out = tmp_path_factory.mktemp("faith-store") / "maps"
    cfg = load_config(options={"saliency.batch_size": 8, "saliency.positives_only": True, "saliency.limit": 6})
    run_saliency(trained_classifier, out, cfg, "grad,controls", progress=False, log=lambda *_: None)
    return out


@pytest.fixture(scope="module")
def result(store, tmp_path_factory):
    from cxrsal.experiments.faithfulness import run_faithfulness

    out = tmp_path_factory.mktemp("faith") / "out"
    table = run_faithfulness(store, out, load_config(options=SETTINGS), log=lambda *_: None)
    return out, table


def slow_areas(store, method, image_id):
    """The five areas of one image by a loop: every input built with the metric functions, the
    model called one input at a time, its logit through the sigmoid here."""
    from scipy.special import expit

    from cxrsal.data.pipeline import PreparedSplit, load_batch
    from cxrsal.data.manifest import read_manifest
    from cxrsal.metrics.faithfulness import (curve_area, deletion_batch, gaussian_blur, insertion_batch,
                                             relevance_order, road_batch)
    from cxrsal.models.factory import logit_model
    from cxrsal.runs import Run
    from cxrsal.saliency.base import METHODS, noise_rng
    from cxrsal.saliency.store import MapStore

    s = MapStore(store)
    meta = s.meta
    model = logit_model(Run(meta["model"]).model("best"))      # the logit, not the model's sigmoid score
    row = next(r for r in read_manifest(meta["data"]) if r["image_id"] == image_id and r["split"] == meta["split"])
    image = load_batch(PreparedSplit(meta["data"], meta["split"]), [row["index"]], meta["input_size"])[0][0]
    d = s.load(method, image_id)
    order = relevance_order(d["raw"], channels=METHODS.get(method).channels)
    fractions = SETTINGS["faithfulness.fractions"]
    morf, lerf = road_batch(image, order, rng=noise_rng(0, row["index"]), fractions=fractions, noise_sd=0.01)
    size = meta["input_size"]
    deletion = deletion_batch(image, order, steps=4)
    insertion = insertion_batch(image, gaussian_blur(image, sd=size / 16), order, steps=4)

    def prob(batch):
        return [float(expit(np.asarray(model(x[None], training=False)).reshape(-1)[0])) for x in batch]

    x = np.arange(5) / 4
    m, l_ = curve_area(fractions, prob(morf)), curve_area(fractions, prob(lerf))
    return {"road_morf": m, "road_lerf": l_, "road_gap": l_ - m, "deletion": curve_area(x, prob(deletion)),
            "insertion": curve_area(x, prob(insertion))}


def test_areas_match_a_loop_through_the_model(store, result):
    out, table = result
    assert set(table.method) == {"grad", "edge", "random", "oracle"}
    assert set(table.metric) == {"road_morf", "road_lerf", "road_gap", "deletion", "insertion"}
    assert table.label.eq(1).all() and table.value.notna().all()
    for method in ("grad", "oracle"):
        image_id = table[table.method == method].image_id.iloc[1]
        want = slow_areas(store, method, image_id)
        got = table[(table.method == method) & (table.image_id == image_id)].set_index("metric").value
        for metric, value in want.items():
            assert got[metric] == pytest.approx(value, abs=2e-5), (method, metric)
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves.curve) == {"morf", "lerf", "deletion", "insertion"}
    assert sorted(curves[curves.curve == "morf"].x.unique()) == SETTINGS["faithfulness.fractions"]
    summary = pd.read_csv(out / "summary.csv")
    gap = summary[(summary.method == "grad") & (summary.metric == "road_gap")].iloc[0]
    assert gap["mean"] == pytest.approx(table[(table.method == "grad") & (table.metric == "road_gap")].value.mean())
    assert gap.ci_low <= gap["mean"] <= gap.ci_high
    marker = json.loads((out / "faithfulness.json").read_text())
    assert marker["faithfulness"]["steps"] == 4 and marker["maps"] == str(store.resolve())


def test_resumes_and_refuses_other_settings(store, result, tmp_path):
    import shutil

    out, table = result
    again = tmp_path / "again"
    shutil.copytree(out, again)
    (again / "faithfulness.csv").unlink()
    (again / "parts" / "random.csv").unlink()          # killed while random was computed
    rc, stdout, err = cxrsal("faithfulness", "--maps", store, "--out", again, "--quiet",
                             *[a for k, v in SETTINGS.items() for a in ("--set", f"{k}={json.dumps(v)}")])
    assert rc == 0, err
    redone = pd.read_csv(again / "faithfulness.csv")
    key = ["method", "image_id", "metric"]
    pd.testing.assert_frame_equal(redone.sort_values(key).reset_index(drop=True)[key + ["value"]],
                                  table.sort_values(key).reset_index(drop=True)[key + ["value"]], atol=1e-9)
    rc, _, err = cxrsal("faithfulness", "--maps", store, "--out", again, "--steps", 8, "--quiet",
                        *[a for k, v in SETTINGS.items() if k != "faithfulness.steps"
                          for a in ("--set", f"{k}={json.dumps(v)}")])
    assert rc == 2 and "faithfulness.steps 4 (this run: 8)" in err and len(err.strip().splitlines()) == 1


def test_table2_asks_faithfulness_vs_random(result, tmp_path):
    from cxrsal.stats.study import run_stats

    out, _ = result
    res = run_stats([out], tmp_path / "stats", log=lambda *_: None)
    t = res["tests"]
    rows = t[t.question == "faithfulness vs random"]
    assert set(rows.method) == {"grad", "edge", "oracle"} and (rows.comparison == "random").all()
    assert "faithfulness vs random" in res["table2"].columns
    assert (tmp_path / "stats" / "faithfulness.csv").is_file()
