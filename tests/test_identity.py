"""No command resumes results made with other settings: each resuming command records what made
its output and refuses, in one line naming what changed, a rerun made otherwise; the commands
that recompute everything (score, stats) give a rerun's folder exactly what a fresh run gives."""

import json
import shutil

import pytest
from click.testing import CliRunner

from cxrsal.cli.main import cli
from cxrsal.errors import CxrsalError
from cxrsal.identity import IDENTITY_FILE, claim, describe, differences, flatten


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def refused(*args):
    rc, _, err = run(*args)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), (rc, err)
    return lines[0]


def ok(*args):
    rc, out, err = run(*args)
    assert rc == 0, (rc, out, err)
    return out


def snapshot(folder):
    """{relative path: bytes} of every file under `folder`."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- the record itself

def test_claim_records_then_refuses_what_differs(tmp_path):
    out = tmp_path / "out"
    claim(out, "randomize", {"randomization.sigma": 0.01, "saliency.seed": 0}, {"model 1": {"weights": "a" * 64}})
    recorded = json.loads((out / IDENTITY_FILE).read_text())
    assert recorded["settings"] == {"randomization.sigma": 0.01, "saliency.seed": 0}
    claim(out, "randomize", {"randomization.sigma": 0.01, "saliency.seed": 0}, {"model 1": {"weights": "a" * 64}})
    with pytest.raises(CxrsalError, match=r"randomization.sigma 0.01 \(this run: 1.0\); resuming it would mix"):
        claim(out, "randomize", {"randomization.sigma": 1.0, "saliency.seed": 0}, {"model 1": {"weights": "a" * 64}})
    with pytest.raises(CxrsalError, match=r"model 1.weights sha256 aaaaaaaaaaaa... \(this run: sha256 bbbbbbbbbbbb"):
        claim(out, "randomize", {"randomization.sigma": 0.01, "saliency.seed": 0}, {"model 1": {"weights": "b" * 64}})
    with pytest.raises(CxrsalError, match="holds the output of `cxrsal randomize`, not of `cxrsal compare`"):
        claim(out, "compare", {}, {})
    (out / IDENTITY_FILE).write_text('{"command": "rand')           # cut short
    with pytest.raises(CxrsalError, match=f"{IDENTITY_FILE}: damaged"):
        claim(out, "randomize", {}, {})


def test_differences_and_their_description():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": []}) == {"a.b": 1, "a.c.d": 2, "e": []}
    old, new = {"x": 1, "y": [1, 2], "gone": 3}, {"x": 2, "y": (1, 2), "new": 4}
    # tuples compare as the lists JSON gives back; a key the old record lacks is no difference
    assert differences(old, new) == [("x", 1, 2), ("gone", 3, None)]
    assert differences(old, new, skip_missing=False) == [("x", 1, 2), ("new", None, 4), ("gone", 3, None)]
    assert describe([("k", list("abcd"), ["a"])]) == 'k [4 values: "a", "b", ...] (this run: ["a"])'
    assert describe([(f"k{i}", i, i + 1) for i in range(5)], limit=2).endswith("; and 3 more")


# ---------------------------------------------------------------- each command

def test_saliency_refuses_another_seed_or_selection(trained_classifier, tmp_path):
    maps = tmp_path / "maps"
    common = ["saliency", "--model", trained_classifier, "--methods", "grad", "--out", maps, "--quiet"]
    ok(*common, "--limit", 2)
    before = snapshot(maps)
    line = refused(*common, "--limit", 2, "--seed", 1)
    assert "its maps were computed otherwise: seed 0 (this run: 1)" in line
    line = refused(*common, "--limit", 3)
    assert "holds maps made otherwise: image_ids" in line
    assert snapshot(maps) == before


def test_randomize_refuses_another_sigma_and_recomputes_only_its_tables(trained_classifier, tmp_path):
    out = tmp_path / "rnd"
    common = ["randomize", "--model", trained_classifier, "--methods", "grad", "--n-images", 2, "--out", out, "--quiet"]
    ok(*common)
    before = snapshot(out)
    line = refused(*common, "--sigma", 1.0)
    assert f"--out {out} was made with other settings or inputs: randomization.sigma 0.01 (this run: 1.0)" in line
    assert snapshot(out) == before
    # the threshold's pairs shape only the tables: the maps are kept, the tables redrawn
    text = ok(*common, "--pairs", 5)
    assert "grad:" not in text            # no map computed
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k.startswith("maps/")} == \
        {k: v for k, v in before.items() if k.startswith("maps/")}
    assert json.loads(after["randomization.json"])["pairs"] == 5


def test_compare_refuses_other_images(trained_classifier, classifier_twin, tmp_path):
    out = tmp_path / "cmp"
    common = ["compare", "--models", trained_classifier, classifier_twin, "--methods", "grad", "--out", out, "--quiet"]
    ok(*common, "--n-images", 2)
    line = refused(*common, "--n-images", 3)
    assert "compare.n_images 2 (this run: 3)" in line
    # what SSIM compares is recomputed on every run
    ok(*common, "--n-images", 2, "--similarity-maps", "raw")
    assert json.loads((out / "compare.json").read_text())["maps"] == "raw"


def test_compare_refuses_one_model_twice(trained_classifier, tmp_path):
    line = refused("compare", "--models", trained_classifier, trained_classifier, "--out", tmp_path / "c")
    assert "given twice" in line and not (tmp_path / "c").exists()
    copy = shutil.copytree(trained_classifier, tmp_path / "copy")
    line = refused("compare", "--models", trained_classifier, copy, "--out", tmp_path / "c", "--quiet")
    assert "hold the same weights" in line and not (tmp_path / "c").exists()


def test_score_rerun_with_other_settings_equals_a_fresh_run(gcam_store, tmp_path):
    ok("score", "--maps", gcam_store, "--out", tmp_path / "o")
    other = ["--bootstrap", 0, "--parts", "utility", "--set", "pointwise.tolerance=2"]
    ok("score", "--maps", gcam_store, "--out", tmp_path / "o", *other)
    ok("score", "--maps", gcam_store, "--out", tmp_path / "fresh", *other)
    assert snapshot(tmp_path / "o") == snapshot(tmp_path / "fresh")


def test_stats_rerun_on_other_results_equals_a_fresh_run(gcam_store, tmp_path):
    ok("score", "--maps", gcam_store, "--out", tmp_path / "a" / "score")
    ok("score", "--maps", gcam_store, "--parts", "utility", "--out", tmp_path / "b" / "score")
    ok("stats", "--results", tmp_path / "a", "--out", tmp_path / "s")
    ok("stats", "--results", tmp_path / "b", "--out", tmp_path / "s")
    ok("stats", "--results", tmp_path / "b", "--out", tmp_path / "fresh")
    assert snapshot(tmp_path / "s") == snapshot(tmp_path / "fresh")


def test_train_refuses_another_learning_rate(trained_classifier, tiny_run, tmp_path):
    run_dir = shutil.copytree(trained_classifier, tmp_path / "run")
    (run_dir / "run.json").unlink()       # not finished: a rerun would resume it
    line = refused("train", "--data", tiny_run, "--config", run_dir / "config.yaml", "--out", run_dir, "--lr", 0.5,
                   "--quiet")
    assert "holds a run trained with other settings: train.lr 0.0001 (this run: 0.5)" in line


def test_train_baseline_refuses_other_baseline_settings(tiny_run, tmp_path):
    from cxrsal.config import load_config, write_config
    from cxrsal.training.fit import data_record
    from cxrsal.data.prepare import check_prepared

    run_dir = tmp_path / "unet"
    run_dir.mkdir()
    write_config(load_config(overrides=["baseline.kind=unet"]), run_dir)
    (run_dir / "data.json").write_text(json.dumps(data_record(tiny_run, check_prepared(tiny_run))))
    (run_dir / "state.json").write_text(json.dumps({"task": "unet", "epoch": 1, "last": "epoch-001.keras"}))
    before = snapshot(run_dir)
    line = refused("train-baseline", "unet", "--data", tiny_run, "--out", run_dir, "--quiet", "--config",
                   run_dir / "config.yaml", "--set", "baseline.filters=8")
    assert "baseline.filters 16 (this run: 8)" in line
    assert snapshot(run_dir) == before


def test_demo_refuses_another_size_or_seed(tmp_path):
    claim(tmp_path / "demo", "demo", {"--size": "tiny", "--seed": 0})      # what a tiny demo records first
    line = refused("demo", "--out", tmp_path / "demo", "--size", "tiny", "--seed", 1)
    assert '--seed 0 (this run: 1)' in line
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [IDENTITY_FILE]


def test_randomize_refuses_one_replicate_twice(trained_classifier, tmp_path):
    line = refused("randomize", "--model", trained_classifier, "--model", trained_classifier, "--out", tmp_path / "r")
    assert "given twice" in line and not (tmp_path / "r").exists()


def test_compare_reads_the_baseline_heatmaps_before_any_map(trained_classifier, classifier_twin, tmp_path):
    line = refused("compare", "--models", trained_classifier, classifier_twin, "--baseline-maps", tmp_path / "a",
                   tmp_path / "b", "--out", tmp_path / "c", "--quiet")
    assert f"--baseline-maps {tmp_path / 'a'}: no " in line and not (tmp_path / "c").exists()


def test_legitimate_resumes_are_accepted(trained_classifier, tmp_path):
    from cxrsal.saliency.store import MapStore

    # a randomize rerun asking for one more method: the folder's maps are kept, the new method's added
    out = tmp_path / "rnd"
    common = ["randomize", "--model", trained_classifier, "--n-images", 2, "--out", out, "--quiet"]
    ok(*common, "--methods", "grad")
    grad = {k: v for k, v in snapshot(out).items() if "/grad/" in k}
    ok(*common, "--methods", "grad,gcam")
    after = snapshot(out)
    assert {k: v for k, v in after.items() if "/grad/" in k} == grad
    assert any("/gcam/" in k for k in after)
    # shards of one job written on two machines: their library versions and batching differ
    store = MapStore(tmp_path / "store")
    meta = {"model": "m", "data": "d", "split": "test", "image_ids": ["a"], "input_size": 8, "weights": "w",
            "versions": {"tensorflow": "2.21.0", "platform": "Linux-A"}, "config": {"batch_size": 32}}
    store.init(meta)
    store.init({**meta, "versions": {"tensorflow": "2.22.0", "platform": "Linux-B"}, "config": {"batch_size": 8}})
    with pytest.raises(CxrsalError, match=r"holds maps made otherwise: weights \"w\" \(this run: \"v\"\)"):
        store.check({**meta, "weights": "v"})


def test_the_learning_rate_floor_is_checked_only_where_the_rate_is_cut():
    from cxrsal.config import load_config
    from cxrsal.errors import ConfigError

    # train-baseline's own floor (1e-6) under a smaller rate: nothing is cut, nothing refused
    assert load_config(overrides=["train.lr=5e-7", "train.min_lr=1e-6"]).train.lr == 5e-7
    with pytest.raises(ConfigError, match="train.min_lr must not exceed train.lr when the rate is cut on plateaus"):
        load_config(overrides=["train.lr=5e-7", "train.min_lr=1e-6", "train.plateau_patience=2"])
