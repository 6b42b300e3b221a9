"""Bad input through the real command, stderr apart from stdout: exit code 2, exactly one line
on stderr, no traceback."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cxrsal.config import Config, write_config
from cxrsal.errors import CxrsalError
from cxrsal.experiments.score_baselines import read_probability_map
from helpers import cxrsal, quiet


def one_line(args, cwd=None):
    rc, _, err = cxrsal(*args, cwd=cwd)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (rc, err)
    assert lines[0].startswith("error: ")
    return lines[0]


def fake_run(path, best=None):
    path.mkdir(parents=True)
    write_config(Config(), path)
    (path / "data.json").write_text(json.dumps({"dir": str(path), "manifest_sha256": "0" * 64}))
    (path / "state.json").write_text(json.dumps({"task": "classification", "epoch": 1, "last": "epoch-001.keras"}))
    if best is not None:
        (path / "checkpoints").mkdir()
        (path / "checkpoints" / "best.keras").write_bytes(best)
    return path


@pytest.fixture
def bad(tmp_path):
    (tmp_path / "bad.yaml").write_text("data: [1, 2\n")
    (tmp_path / "cfgdir").mkdir()
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_options_and_configs(bad):
    line = one_line(["prepare", "--root", bad / "empty", "--out", bad / "p", "--config", bad / "bad.yaml"])
    assert "bad.yaml: not valid YAML at line 2, column 1" in line
    assert "is a directory" in one_line(["prepare", "--root", bad, "--out", bad / "p", "--config", bad / "cfgdir"])
    assert "No such option '--bogus'" in one_line(["prepare", "--bogus"])
    assert "'chexpert' is not one of 'rsna', 'siim'" in one_line(["synth", "--dataset", "chexpert", "--n", 1,
                                                                  "--out", bad / "s"])


def test_results_folders(bad):
    assert "no such folder" in one_line(["stats", "--results", bad / "missing", "--out", bad / "o"])
    assert "no results" in one_line(["stats", "--results", bad / "empty", "--out", bad / "o"])
    assert "no results" in one_line(["report", "--results", bad / "empty", "--out", bad / "o"])


def test_checkpoints(tmp_path):
    line = one_line(["evaluate", "--model", fake_run(tmp_path / "none")])
    assert "no best checkpoint yet" in line
    # a checkpoint cut short by a full disk or a copy: its zip header and nothing more
    line = one_line(["evaluate", "--model", fake_run(tmp_path / "cut", best=b"PK\x03\x04" + b"\0" * 20)])
    assert "checkpoint best.keras cannot be read" in line


def test_probability_maps(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(CxrsalError, match=r"a.npy: not a readable NumPy array"):
        read_probability_map(tmp_path, "a", 8)
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(CxrsalError, match=r"b.png: not a readable image"):
        read_probability_map(tmp_path, "b", 8)
    np.save(tmp_path / "c.npy", np.zeros((2, 3, 4)))
    with pytest.raises(CxrsalError, match="expected a 2-D probability map"):
        read_probability_map(tmp_path, "c", 8)


def test_label_files(tmp_path):
    bom, binary = tmp_path / "bom", tmp_path / "binary"
    bom.mkdir()
    binary.mkdir()
    # a BOM is read through (the header is found); the missing image is then named with its line
    (bom / "stage_2_train_labels.csv").write_bytes(b"\xef\xbb\xbfpatientId,x,y,width,height,Target\nabc,,,,,0\n")
    line = one_line(["prepare", "--dataset", "rsna", "--root", bom, "--out", tmp_path / "p1", "--quiet"])
    assert "stage_2_train_labels.csv line 2: abc: image file missing" in line
    (binary / "stage_2_train_labels.csv").write_bytes(bytes(range(256)) * 2)
    line = one_line(["prepare", "--dataset", "rsna", "--root", binary, "--out", tmp_path / "p2", "--quiet"])
    assert "stage_2_train_labels.csv: not a CSV file" in line


def test_detections_csv_with_a_wrong_header(tmp_path):
    from cxrsal.experiments.score_baselines import read_detections

    (tmp_path / "det.csv").write_text("a,b\n1,2\n")
    with pytest.raises(CxrsalError, match=r"det.csv: header must hold height, patientId, score"):
        read_detections(tmp_path / "det.csv")


# ---------------------------------------------------------------- with a trained model and its maps


def copy_store(store, dst):
    import shutil

    shutil.copytree(store, dst)
    return dst


def test_damaged_map_stores(gcam_store, tmp_path):
    from cxrsal.saliency.store import MapStore

    ids = MapStore(gcam_store).ids("gcam")
    cut = copy_store(gcam_store, tmp_path / "cut")
    f = cut / "gcam" / f"{ids[1]}.npz"
    f.write_bytes(f.read_bytes()[:40])               # a map file cut short
    line = one_line(["score", "--maps", cut, "--out", tmp_path / "o1"])
    assert f"{f}: not a readable map file" in line and "run the `cxrsal saliency` (or randomize, compare)" in line
    garbage = copy_store(gcam_store, tmp_path / "garbage")
    (garbage / "gcam" / f"{ids[0]}.npz").write_bytes(b"\x93NUMPY not a zip")
    assert "not a readable map file" in one_line(["overlay", "--maps", garbage, "--out", tmp_path / "o2"])
    empty = copy_store(gcam_store, tmp_path / "empty")
    for p in (empty / "gcam").glob("*.npz"):
        p.unlink()
    assert "holds no maps" in one_line(["score", "--maps", empty, "--out", tmp_path / "o3"])
    assert "not a map store" in one_line(["score", "--maps", tmp_path, "--out", tmp_path / "o4"])


def test_overlay_names_what_the_store_lacks(gcam_store, tmp_path):
    assert "--methods ig: not in the store" in one_line(["overlay", "--maps", gcam_store, "--methods", "ig",
                                                         "--out", tmp_path / "o"])
    assert "--images nobody: not in split test" in one_line(["overlay", "--maps", gcam_store, "--images", "nobody",
                                                          "--out", tmp_path / "o"])


def test_foreign_baseline_files_through_score(gcam_store, tmp_path):
    """seg:DIR maps and a detections CSV that cannot be used: one line naming the file."""
    from cxrsal.saliency.store import MapStore

    store = MapStore(gcam_store)
    ids = store.ids("gcam")
    first = [i for i in ids if store.load("gcam", i)["label"] == 1][-1]     # a positive: scored for utility
    cases = {
        "npy": lambda d: (d / f"{first}.npy").write_bytes(b"\x93NUMPY\x01\x00garbage"),
        "short": lambda d: (d / f"{first}.npy").write_bytes(_npy_bytes(np.ones((8, 8)))[:-20]),
        "png": lambda d: (d / f"{first}.png").write_bytes(b"not a png"),
        "shape": lambda d: np.save(d / f"{first}.npy", np.zeros((2, 3, 4))),
    }
    expected = {"npy": f"{first}.npy: not a readable NumPy array", "short": f"{first}.npy: not a readable NumPy array",
                "png": f"{first}.png: not a readable image", "shape": "expected a 2-D probability map"}
    for name, damage in cases.items():
        d = tmp_path / name
        d.mkdir()
        for i in ids:                       # good maps for every image but one
            if i != first:
                np.save(d / f"{i}.npy", np.ones((8, 8), np.float32))
        damage(d)
        line = one_line(["score", "--maps", gcam_store, "--baselines", f"seg:{d}", "--out", tmp_path / f"o-{name}"])
        assert expected[name] in line, (name, line)
    (tmp_path / "det.csv").write_text("a,b\n1,2\n")
    line = one_line(["score", "--maps", gcam_store, "--baselines", f"boxes:{tmp_path / 'det.csv'}",
                     "--out", tmp_path / "o-det"])
    assert "det.csv: header must hold height, patientId, score" in line


def _npy_bytes(array):
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_a_full_disk_keeps_the_previous_file(gcam_store, tmp_path):
    from cxrsal.files import FAIL_AT_ENV

    rc, _, err = cxrsal("score", "--maps", gcam_store, "--out", tmp_path / "o")
    assert rc == 0, err
    before = (tmp_path / "o" / "scores.csv").read_bytes()
    # the rewrite of scores.csv fails once complete, before its rename, as on a full disk
    out = subprocess.run([sys.executable, "-m", "cxrsal.cli", "score", "--maps", str(gcam_store), "--out",
                          str(tmp_path / "o"), "--set", "pointwise.tolerance=2"], capture_output=True, text=True,
                         env={**os.environ, FAIL_AT_ENV: "1:written:scores.csv"})
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0] == f"error: {tmp_path / 'o' / 'scores.csv'}: No space left on device"
    assert (tmp_path / "o" / "scores.csv").read_bytes() == before
    assert not list((tmp_path / "o").glob(".tmp-*"))


def test_compare_needs_models_of_one_split(trained_classifier, tiny_run, rsna_root, tmp_path):
    import shutil

    from cxrsal.config import load_config
    from cxrsal.data.manifest import manifest_hash
    from cxrsal.data.prepare import prepare

    other = tmp_path / "other-split"
    prepare(load_config(options={"data.root": str(rsna_root), "data.size": 32, "data.workers": 1,
                                 "data.split": [0.5, 0.25, 0.25], "data.seed": 7}), other, progress=False, log=quiet)
    moved = shutil.copytree(trained_classifier, tmp_path / "moved")
    info = json.loads((moved / "data.json").read_text())
    (moved / "data.json").write_text(json.dumps({**info, "dir": str(other), "manifest_sha256": manifest_hash(other)}))
    line = one_line(["compare", "--models", trained_classifier, moved, "--out", tmp_path / "c", "--quiet"])
    assert "the two models must be trained on the same split" in line and str(other) in line
    assert not (tmp_path / "c").exists()      # refused before any map was computed


def test_resuming_a_training_folder_with_other_data(trained_classifier, tiny_run, tmp_path):
    import shutil

    run = shutil.copytree(trained_classifier, tmp_path / "run")
    again = ["train", "--config", run / "config.yaml", "--out", run, "--quiet"]
    data = shutil.copytree(tiny_run, tmp_path / "data")
    line = one_line([*again, "--data", data])
    assert f"was trained on {tiny_run.resolve()}, not {data}" in line
    # the same folder, its content changed since (prepared again with other labels)
    info = json.loads((run / "data.json").read_text())
    (run / "data.json").write_text(json.dumps({**info, "dir": str(data.resolve())}))
    manifest = data / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",0,", ",1,", 1))
    assert f"{data / 'manifest.csv'} no longer is" in one_line([*again, "--data", data])
    # the untouched run, finished, is returned as it is
    rc, out, err = cxrsal("train", "--config", run / "config.yaml", "--out", trained_classifier, "--data", tiny_run)
    assert rc == 0 and "already trained" in out + err, err


def test_corrupt_cache_files_are_decoded_again(rsna_root, tmp_path):
    args = ["prepare", "--dataset", "rsna", "--root", rsna_root, "--size", 32, "--out", tmp_path / "p",
            "--workers", 1, "--quiet"]
    rc, _, err = cxrsal(*args)
    assert rc == 0, err
    arrays = {p.name: np.load(p) for p in (tmp_path / "p" / "arrays").glob("*.npy")}
    cache = sorted((tmp_path / "p" / "cache").rglob("*.npz"))
    cache[0].write_bytes(cache[0].read_bytes()[:50])        # cut short
    cache[1].write_bytes(b"garbage")                         # not an archive
    rc, out, err = cxrsal(*args)
    assert rc == 0 and "Traceback" not in err, err
    assert "note: 2 unreadable cache file(s)" in out + err
    for name, a in arrays.items():
        np.testing.assert_array_equal(np.load(tmp_path / "p" / "arrays" / name), a, err_msg=name)


# ---------------------------------------------------------------- settings outside their domain

def test_the_settings_of_the_first_reliability_review(trained_classifier, tmp_path):
    """The review's examples, through the real command: one line, exit 2, nothing written."""
    out = tmp_path / "maps"
    for setting, message in (("saliency.ig_steps=-3", "saliency.ig_steps must be an integer >= 1, got -3"),
                             ("saliency.ig_steps=0", "saliency.ig_steps must be an integer >= 1, got 0"),
                             ("saliency.samples=0", "saliency.samples must be an integer >= 1, got 0")):
        line = one_line(["saliency", "--model", trained_classifier, "--methods", "ig,sg", "--set", setting,
                         "--out", out])
        assert line == f"error: --set {setting}: {message}"
        assert not out.exists()
    line = one_line(["randomize", "--model", trained_classifier, "--sigma", "-1", "--out", tmp_path / "r"])
    assert "Invalid value for '--sigma': randomization.sigma must be a number > 0, got -1" in line
    assert not (tmp_path / "r").exists()


def test_a_setting_the_model_refuses_leaves_no_run_folder(tiny_run, tmp_path):
    # checked when the model is built, which is now before the run folder is written
    line = one_line(["train", "--data", tiny_run, "--weights", tmp_path / "missing.weights.h5", "--out",
                     tmp_path / "clf", "--quiet"])
    assert "missing.weights.h5: no such file" in line and not (tmp_path / "clf").exists()
    line = one_line(["train-baseline", "retinanet", "--data", tiny_run, "--out", tmp_path / "det", "--quiet",
                     "--set", "baseline.max_level=5", "--set", f"baseline.weights={tmp_path / 'no-preset'}"])
    assert "cannot load keras-hub preset" in line and not (tmp_path / "det").exists()


# ---------------------------------------------------------------- files cxrsal wrote, damaged since

def test_damaged_store_metadata(gcam_store, trained_classifier, tmp_path):
    cut = copy_store(gcam_store, tmp_path / "cut")
    text = (cut / "store.json").read_text()
    (cut / "store.json").write_text(text[:len(text) // 2])
    line = one_line(["score", "--maps", cut, "--out", tmp_path / "o1"])
    assert f"{cut / 'store.json'}: damaged (not valid JSON" in line and "compute its maps again" in line
    import shutil

    # a copy of the model, which lists the stores made from it: the damaged one is not in the
    # session's model's list
    model = shutil.copytree(trained_classifier, tmp_path / "model")
    params = copy_store(gcam_store, tmp_path / "params")
    meta = json.loads(text)
    (params / "store.json").write_text(json.dumps({**meta, "model": str(model.resolve())}))
    (params / "gcam" / "params.json").write_text("[]")
    line = one_line(["saliency", "--model", model, "--methods", "gcam", "--out", params])
    assert "params.json: damaged (not a JSON object)" in line
    # listed in the model run, the damaged store serves no map, and breaks no other command
    rc, _, err = cxrsal("saliency", "--model", model, "--methods", "gcam", "--out", tmp_path / "fresh", "--quiet")
    assert rc == 0 and err == "", err


def test_a_map_file_with_foreign_arrays(gcam_store, tmp_path):
    store = copy_store(gcam_store, tmp_path / "s")
    f = sorted((store / "gcam").glob("*.npz"))[0]
    with np.load(f) as z:
        arrays = dict(z)
    arrays["processed"] = arrays["processed"].astype(np.float64) / 65535     # not the uint16 a store writes
    np.savez_compressed(f, **arrays)
    line = one_line(["score", "--maps", store, "--out", tmp_path / "o"])
    assert f"{f}: not a readable map file (ValueError: processed map of dtype float64" in line


def test_a_saliency_rerun_recomputes_a_damaged_map(trained_classifier, tmp_path):
    args = ["saliency", "--model", trained_classifier, "--methods", "grad", "--limit", "3", "--out", tmp_path / "m",
            "--quiet"]
    rc, _, err = cxrsal(*args)
    assert rc == 0, err
    files = sorted((tmp_path / "m" / "grad").glob("*.npz"))
    whole = files[1].read_bytes()
    with np.load(files[1]) as z:
        before = dict(z)
    files[1].write_bytes(whole[:len(whole) // 3])
    rc, out, err = cxrsal(*args)
    assert rc == 0 and err == "", err
    assert "1 damaged map file(s) deleted and computed again" in out and "(1 maps written this run)" in out
    with np.load(files[1]) as z:
        for k, v in before.items():
            np.testing.assert_array_equal(z[k], v, err_msg=k)


def prepared_copy(tiny_run, dst):
    import shutil

    shutil.copytree(tiny_run, dst, ignore=shutil.ignore_patterns("cache"))
    return dst


def test_edited_manifests(gcam_store, trained_classifier, tiny_run, tmp_path):
    import csv

    from cxrsal.data.manifest import read_manifest

    # the label column renamed: the store's recorded manifest no longer matches; read without a
    # record, the file and the column are named
    renamed = prepared_copy(tiny_run, tmp_path / "renamed")
    manifest = renamed / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",label,", ",diagnosis,", 1))
    line = one_line(["score", "--maps", gcam_store, "--data", renamed, "--out", tmp_path / "o1"])
    assert f"{manifest} no longer is" in line
    with pytest.raises(CxrsalError, match=f"{manifest}: no column label; .*`cxrsal prepare --out"):
        read_manifest(renamed)
    # a row lost: the model's recorded manifest hash, the store's, and summary.json's counts disagree
    lost = prepared_copy(tiny_run, tmp_path / "lost")
    manifest = lost / "manifest.csv"
    with open(manifest) as f:
        rows = list(csv.reader(f))
    manifest.write_text("\n".join(",".join(r) for r in rows[:-1]) + "\n")
    run = prepared_copy(trained_classifier, tmp_path / "model")
    info = json.loads((run / "data.json").read_text())
    (run / "data.json").write_text(json.dumps({**info, "dir": str(lost)}))
    line = one_line(["saliency", "--model", run, "--methods", "grad", "--out", tmp_path / "m"])
    assert f"--model {run} was trained on a manifest (sha256 {info['manifest_sha256'][:12]}" in line
    assert f"{manifest} no longer is" in line and not (tmp_path / "m").exists()
    line = one_line(["score", "--maps", gcam_store, "--data", lost, "--out", tmp_path / "o2"])
    assert f"{manifest} no longer is" in line
    with pytest.raises(CxrsalError, match=r"test images \(\d+ positive\), where `cxrsal prepare` packed"):
        read_manifest(lost)


def test_damaged_prepared_runs(tiny_run, tmp_path):
    from cxrsal.data.pipeline import PreparedSplit

    summary = prepared_copy(tiny_run, tmp_path / "summary")
    (summary / "summary.json").write_text('{"dataset": "rsna"}')
    with pytest.raises(CxrsalError, match=r"summary.json: damaged \(no size, counts\)"):
        PreparedSplit(summary, "test")
    arrays = prepared_copy(tiny_run, tmp_path / "arrays")
    np.save(arrays / "arrays" / "test_images.npy", np.zeros((2, 8, 8), np.uint16))
    with pytest.raises(CxrsalError, match=r"test_images.npy: uint16 \(2, 8, 8\), not the uint16"):
        PreparedSplit(arrays, "test")
    (arrays / "arrays" / "val_labels.npy").write_bytes(b"garbage")
    with pytest.raises(CxrsalError, match=r"val_labels.npy: not a readable packed array"):
        PreparedSplit(arrays, "val")


def test_baseline_files_with_values_out_of_range(tmp_path):
    from cxrsal.experiments.score_baselines import read_detections

    np.save(tmp_path / "nan.npy", np.full((8, 8), np.nan, np.float32))
    with pytest.raises(CxrsalError, match=r"nan: a probability map holds values outside \[0, 1\]"):
        read_probability_map(tmp_path, "nan", 8)
    np.save(tmp_path / "big.npy", np.full((8, 8), 3.0, np.float32))
    with pytest.raises(CxrsalError, match=r"big: a probability map holds values outside \[0, 1\]"):
        read_probability_map(tmp_path, "big", 8)
    (tmp_path / "det.csv").write_text("patientId,x,y,width,height,score\na,1,2,3,4,0.5\nb,1,2,-3,4,0.5\n")
    with pytest.raises(CxrsalError, match=r"det.csv line 3: a box needs finite x, y, a width and height >= 0"):
        read_detections(tmp_path / "det.csv")


def test_damaged_results_read_by_stats_and_report(gcam_store, tmp_path):
    rc, _, err = cxrsal("score", "--maps", gcam_store, "--out", tmp_path / "r" / "score")
    assert rc == 0, err
    scores = tmp_path / "r" / "score" / "scores.csv"
    scores.write_text(scores.read_text().replace(",metric,", ",measure,", 1))
    line = one_line(["stats", "--results", tmp_path / "r", "--out", tmp_path / "s"])
    assert f"{scores}: damaged (no column metric); run `cxrsal score` into" in line
    (tmp_path / "r" / "score" / "score.json").write_text("{")
    line = one_line(["report", "--results", tmp_path / "r", "--out", tmp_path / "rep"])
    assert "score.json: damaged (not valid JSON" in line


def test_damaged_training_state(trained_classifier, tiny_run, tmp_path):
    import shutil

    run = shutil.copytree(trained_classifier, tmp_path / "run")
    (run / "run.json").unlink()
    (run / "state.json").write_text('{"task": "classification"}')
    line = one_line(["train", "--data", tiny_run, "--config", run / "config.yaml", "--out", run, "--quiet"])
    assert "state.json: damaged (no epoch, last)" in line


# ---------------------------------------------------------------- stderr is for what the user must read

def test_progress_bars_only_on_a_terminal(gcam_store, tmp_path):
    rc, out, err = cxrsal("score", "--maps", gcam_store, "--out", tmp_path / "o")
    assert rc == 0 and err == "", err         # stderr is a pipe here: no bar
    rc, out, err = cxrsal("score", "--maps", gcam_store, "--out", tmp_path / "o", "--progress")
    assert rc == 0 and "score: 100%" in err
    line = one_line(["score", "--maps", gcam_store, "--out", tmp_path / "o", "--progress", "--quiet"])
    assert "--quiet and --progress contradict each other" in line
