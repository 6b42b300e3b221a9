"""A kill at any instant resumes to identical results.

Every long command runs as a real `cxrsal` process, uninterrupted (the reference, whose write
points are counted), then again in a fresh folder SIGKILLed at write points spread over its run
(for the two longest, the first kill comes from outside once the run has written that many
points, wherever it is then), each kill in a rerun of the last, then rerun to the end. The
outputs must equal the reference's: tables equal, model weights and map stores bit-equal, and no
temporary file left behind. The tiny demo's kill chain is in tests/test_demo.py.
"""

import json

import numpy as np
import pandas as pd
import pytest

from helpers import (assert_same_map_files, assert_same_tables, assert_same_weights, kill_chain, no_temporary_files,
                     reference, run, spread)

QUICK = ["--set", "saliency.samples=2", "--set", "saliency.ig_steps=3", "--set", "saliency.xrai_steps=3"]


class Pair:
    """An uninterrupted run and its killed-and-resumed twin of one command."""

    def __init__(self, base, name, args, kills, *, outside_kill=False):
        self.ref, self.killed = base / f"{name}-ref", base / f"{name}-killed"
        self.points = reference(args(self.ref), base / f"{name}.log")
        first_outside = 1 if outside_kill else 0
        marks = spread(len(self.points), kills + first_outside)
        outside, targets = marks[:first_outside], marks[first_outside:]
        self.planned = kills + first_outside
        self.kills = kill_chain(args(self.killed), targets, outside=outside)

    def check_common(self):
        assert len(self.kills) == self.planned
        assert "Traceback" not in self.kills.final_stderr
        no_temporary_files(self.killed)


TRAIN = ["--arch", "resnet18", "--head", "wildcat", "--epochs", 3, "--batch-size", 8, "--quiet", "--set", "model.kmin=1",
         "--set", "model.alpha=0.7", "--set", "train.lr=1e-3", "--set", "train.patience=3",
         "--set", "pipeline.flip=true", "--set", "pipeline.balanced=true"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("kills")


@pytest.fixture(scope="module")
def trained(tiny_run, base):
    return Pair(base, "train", lambda out: ["train", "--data", tiny_run, "--out", out, *TRAIN], 2, outside_kill=True)


@pytest.fixture(scope="module")
def saliency(trained_classifier, base):
    return Pair(base, "saliency", lambda out: ["saliency", "--model", trained_classifier, "--out", out,
                                               "--methods", "study", "--limit", 3, "--batch-size", 8,
                                               "--quiet", *QUICK], 2, outside_kill=True)


@pytest.fixture(scope="module")
def scored(saliency, base):
    return Pair(base, "score", lambda out: ["score", "--maps", saliency.ref, "--out", out, "--baselines", "avg"], 2)


@pytest.fixture(scope="module")
def randomized(trained_classifier, base):
    return Pair(base, "randomize", lambda out: ["randomize", "--model", trained_classifier, "--out", out,
                                                "--methods", "grad,gcam", "--n-images", 3, "--quiet",
                                                "--set", "saliency.batch_size=8"], 2)


@pytest.fixture(scope="module")
def compared(trained_classifier, trained, base):
    return Pair(base, "compare", lambda out: ["compare", "--models", trained_classifier, trained.ref,
                                              "--out", out, "--methods", "grad,gcam", "--n-images", 3,
                                              "--quiet", "--set", "saliency.batch_size=8"], 2)


def results(scored, randomized, compared):
    return ["--results", scored.ref, "--results", randomized.ref, "--results", compared.ref]


def test_train(trained, tiny_run):
    """WILDCAT (its pooling's options in the card) with flips and balanced sampling: the resumed
    epochs draw the same batches and the optimizer continues from its saved state."""
    trained.check_common()
    assert_same_weights(trained.ref, trained.killed)
    history = lambda run: pd.read_csv(run / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(history(trained.ref), history(trained.killed), check_exact=True)
    state = lambda run: [{k: v for k, v in r.items() if k != "seconds"}
                         for r in json.loads((run / "state.json").read_text())["history"]]
    assert state(trained.ref) == state(trained.killed)
    card = json.loads((trained.killed / "run.json").read_text())
    assert card["metrics"] == json.loads((trained.ref / "run.json").read_text())["metrics"]
    assert card["arch"] == "resnet18" and card["head"] == "wildcat" and card["options"]["alpha"] == 0.7
    assert len(card["data"]["manifest_sha256"]) == 64 and card["versions"]["tensorflow"]
    # another experiment may not continue this run directory
    other = run(["train", "--data", tiny_run, "--out", trained.killed, *TRAIN, "--set", "train.lr=1e-2"])
    assert other.returncode == 2 and "holds a run trained with other settings: train.lr" in other.stderr
    # the write points the kills are spread over: checkpoints, history and state of every epoch
    written = [p.path.rsplit("/", 1)[-1] for p in trained.points if p.phase == "renamed"]
    assert {"history.csv", "state.json", "run.json", "best.keras"} <= set(written)
    assert sum(name.startswith("epoch-") for name in written) == 3


def test_train_baseline(tiny_run, base):
    unet = Pair(base, "unet", lambda out: ["train-baseline", "unet", "--data", tiny_run, "--out", out, "--epochs", 3,
                                           "--batch-size", 8, "--quiet", "--set", "baseline.filters=4",
                                           "--set", "baseline.depth=2", "--set", "train.lr=1e-3",
                                           "--set", "train.patience=3"], 2)
    unet.check_common()
    assert_same_weights(unet.ref, unet.killed)
    test = "predictions/test"
    assert_same_tables(unet.ref / test, unet.killed / test, ["scores.csv"])
    maps = sorted(p.name for p in (unet.ref / test / "maps").glob("*.npy"))
    assert maps == sorted(p.name for p in (unet.killed / test / "maps").glob("*.npy")) and maps
    for name in maps:
        np.testing.assert_array_equal(np.load(unet.ref / test / "maps" / name),
                                      np.load(unet.killed / test / "maps" / name))


def test_saliency(saliency):
    saliency.check_common()
    assert_same_map_files(saliency.ref, saliency.killed)
    for method in ("grad", "xrai", "ggcam"):
        assert (json.loads((saliency.ref / method / "params.json").read_text())
                == json.loads((saliency.killed / method / "params.json").read_text()))


def test_score(scored):
    scored.check_common()
    assert_same_tables(scored.ref, scored.killed, ["scores.csv"])


def test_randomize(randomized):
    randomized.check_common()
    assert_same_tables(randomized.ref, randomized.killed,
                       ["randomization.csv", "curves.csv", "thresholds.csv", "verdicts.csv"])
    assert_same_map_files(randomized.ref / "maps", randomized.killed / "maps")


def test_compare(compared):
    compared.check_common()
    assert_same_tables(compared.ref, compared.killed, ["compare.csv"])


STATS_TABLES = ["tests.csv", "posthoc.csv", "table2.csv", "table1.csv", "findings.csv"]


def test_stats(scored, randomized, compared, base):
    stats = Pair(base, "stats", lambda out: ["stats", *results(scored, randomized, compared), "--out", out], 2)
    stats.check_common()
    assert_same_tables(stats.ref, stats.killed, STATS_TABLES)


def test_report(scored, randomized, compared, base):
    report = Pair(base, "report", lambda out: ["report", *results(scored, randomized, compared), "--out", out], 2)
    report.check_common()
    assert_same_tables(report.ref / "stats", report.killed / "stats", STATS_TABLES)
    assert (report.ref / "report.md").read_text() == (report.killed / "report.md").read_text()
    assert sorted(p.name for p in (report.ref / "figures").iterdir()) == \
        sorted(p.name for p in (report.killed / "figures").iterdir())
