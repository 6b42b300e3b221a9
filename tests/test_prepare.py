"""`prepare` end to end on synthetic data: arrays against independent references, bad input, resume."""

import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from cxrsal.config import load_config
from cxrsal.data import rle
from cxrsal.data.dicom import read_image
from cxrsal.data.manifest import parse_boxes, read_manifest
from cxrsal.data.prepare import SCALE, prepare
from cxrsal.errors import DataError
from helpers import quiet


def cfg_for(dataset, root, size=32, **data):
    opts = {"data.dataset": dataset, "data.root": str(root), "data.size": size, "data.workers": 1}
    opts.update({f"data.{k}": v for k, v in data.items()})
    return load_config(options=opts)


def block_mean(a, f):
    h, w = a.shape
    return a.reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def block_any(a, f):
    h, w = a.shape
    return a.reshape(h // f, f, w // f, f).any(axis=(1, 3))


def arrays(run, split):
    return [np.load(run / "arrays" / f"{split}_{k}.npy") for k in ("images", "masks", "labels")]


def test_rsna_end_to_end(rsna_root, tmp_path):
    run = tmp_path / "run"
    summary = prepare(cfg_for("rsna", rsna_root), run, progress=False, log=quiet)
    info = json.loads((rsna_root / "synth_info.json").read_text())["rsna"]
    assert summary["images"] == info["images"] - info["not_normal"]
    assert summary["excluded"] == {"class 'No Lung Opacity / Not Normal' (cohort rule)": info["not_normal"]}
    assert summary["skipped"] == 0
    rows = read_manifest(run)
    truth = {}
    with open(rsna_root / "stage_2_train_labels.csv") as f:
        for r in csv.DictReader(f):
            truth[r["patientId"]] = int(r["Target"])
    for split in ("train", "val", "test"):
        images, masks, labels = arrays(run, split)
        mine = sorted((r for r in rows if r["split"] == split), key=lambda r: r["index"])
        assert images.shape == (len(mine), 32, 32) and images.dtype == np.uint16
        for r in mine:
            assert labels[r["index"]] == truth[r["image_id"]] == r["label"]
            full = read_image(rsna_root / r["path"])
            # 128 -> 32 is an integer factor: INTER_AREA is the 4x4 block mean
            np.testing.assert_allclose(images[r["index"]] / SCALE, block_mean(full, 4), atol=2e-5)
            # box mask: a cell is inside when a box overlaps it (slow reference)
            expected = np.zeros((32, 32), bool)
            for x, y, w, h in parse_boxes(r["boxes"]):
                for i in range(32):
                    for j in range(32):
                        if x < 4 * (j + 1) and x + w > 4 * j and y < 4 * (i + 1) and y + h > 4 * i:
                            expected[i, j] = True
            np.testing.assert_array_equal(masks[r["index"]].astype(bool), expected)
            assert masks[r["index"]].any() == bool(r["label"])
    assert (run / "config.yaml").exists() and (run / "skipped.csv").read_text().startswith("image_id,source,reason")


def test_siim_end_to_end_union_masks(siim_root, tmp_path):
    run = tmp_path / "run"
    summary = prepare(cfg_for("siim", siim_root), run, progress=False, log=quiet)
    assert summary["images"] == 30 and summary["skipped"] == 0
    rows_by_id = {}
    with open(siim_root / "train-rle.csv") as f:
        next(f)
        for line in f:
            image_id, enc = line.rstrip("\n").split(",", 1)
            rows_by_id.setdefault(image_id, []).append(enc)
    assert any(len(v) > 1 for v in rows_by_id.values())
    for r in read_manifest(run):
        _, masks, labels = arrays(run, r["split"])
        full = np.zeros((128, 128), bool)
        for enc in rows_by_id[r["image_id"]]:
            full |= rle.decode(enc, 128, 128)
        np.testing.assert_array_equal(masks[r["index"]].astype(bool), block_any(full, 4))
        assert labels[r["index"]] == int(full.any())


def test_split_is_stratified_and_reused(rsna_root, tmp_path):
    run = tmp_path / "run"
    prepare(cfg_for("rsna", rsna_root), run, progress=False, log=quiet)
    first = (run / "splits.csv").read_text()
    s = prepare(cfg_for("rsna", rsna_root), run, progress=False, log=quiet)
    assert (run / "splits.csv").read_text() == first and s["decoded"] == 0 and s["from_cache"] == s["images"]
    with pytest.raises(DataError, match="prepared with data.size=32, not 64"):
        prepare(cfg_for("rsna", rsna_root, size=64), run, progress=False, log=quiet)


def damage(root):
    """One of each bad input; returns the ids that must be skipped, with a reason fragment."""
    images = sorted((root / "stage_2_train_images").glob("*.dcm"))
    labels = (root / "stage_2_train_labels.csv").read_text().splitlines()
    positives = [l.split(",")[0] for l in labels[1:] if l.endswith(",1")]
    negatives = [l.split(",")[0] for l in labels[1:] if l.endswith(",0")]
    trunc, notdicom, gone = images[0], images[1], images[2]
    data = trunc.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    notdicom.write_text("not a dicom\n")
    gone.unlink()
    # a box running off the 128-px image, on a positive not already damaged
    victim = next(p for p in positives if p not in (trunc.stem, notdicom.stem, gone.stem))
    labels = [l if not l.startswith(victim + ",") else f"{victim},100.0,100.0,50.0,50.0,1" for l in labels]
    labels.append("ghost-patient,,,,,0")          # labels naming an absent image
    (root / "stage_2_train_labels.csv").write_text("\n".join(labels) + "\n")
    return {trunc.stem: "cannot decode", notdicom.stem: "not a DICOM file", gone.stem: "image file missing",
            victim: "outside the 128x128 image", "ghost-patient": "image file missing"}, negatives


def test_bad_items_are_skipped_with_reasons(rsna_copy, tmp_path):
    expected, _ = damage(rsna_copy)
    classes = (rsna_copy / "stage_2_detailed_class_info.csv").read_text()
    excluded = {l.split(",")[0] for l in classes.splitlines() if "Not Normal" in l}
    expected = {k: v for k, v in expected.items() if k not in excluded}
    run = tmp_path / "run"
    summary = prepare(cfg_for("rsna", rsna_copy), run, progress=False, log=quiet)
    with open(run / "skipped.csv") as f:
        got = {r["image_id"]: r for r in csv.DictReader(f)}
    assert set(got) == set(expected)
    for image_id, fragment in expected.items():
        assert fragment in got[image_id]["reason"], got[image_id]
        assert got[image_id]["source"].startswith("stage_2_train_labels.csv line")
    assert summary["skipped"] == len(expected)
    assert not {r["image_id"] for r in read_manifest(run)} & set(expected)


def test_strict_stops_with_one_line(rsna_copy, tmp_path):
    damage(rsna_copy)
    with pytest.raises(DataError, match="--strict") as err:
        prepare(cfg_for("rsna", rsna_copy, strict=True), tmp_path / "run", progress=False, log=quiet)
    assert "\n" not in str(err.value) and "stage_2_train" in str(err.value)


def test_empty_dataset(tmp_path):
    (tmp_path / "stage_2_train_labels.csv").write_text("patientId,x,y,width,height,Target\n")
    with pytest.raises(DataError, match="no usable labelled images"):
        prepare(cfg_for("rsna", tmp_path), tmp_path / "run", progress=False, log=quiet)


def test_unreadable_root(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        prepare(cfg_for("rsna", tmp_path / "nope"), tmp_path / "run", progress=False, log=quiet)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        prepare(cfg_for("rsna", tmp_path / "afile"), tmp_path / "run", progress=False, log=quiet)
    assert not (tmp_path / "run").exists()


def test_interrupted_run_resumes_without_redoing(rsna_root, tmp_path, monkeypatch):
    import cxrsal.data.prepare as mod

    reference = tmp_path / "reference"
    prepare(cfg_for("rsna", rsna_root), reference, progress=False, log=quiet)

    calls = []
    real = mod.read_any

    def dies_after_five(path):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(path)
        return real(path)

    monkeypatch.setattr(mod, "read_any", dies_after_five)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        prepare(cfg_for("rsna", rsna_root), run, progress=False, log=quiet)
    done = sorted(p for p in (run / "cache").rglob("*.npz"))
    assert len(done) == 5 and not list((run / "cache").rglob(".tmp-*"))
    assert not (run / "manifest.csv").exists() and not (run / "summary.json").exists()
    # a half-written file from a kill at the worst moment must be ignored and cleaned
    (done[0].parent / ".tmp-half.npz.x").write_bytes(b"\x93NUMPY garbage")
    stamps = {p: p.stat().st_mtime_ns for p in done}

    monkeypatch.setattr(mod, "read_any", real)
    summary = prepare(cfg_for("rsna", rsna_root), run, progress=False, log=quiet)
    assert summary["from_cache"] == 5 and summary["decoded"] == summary["images"] - 5
    assert {p: p.stat().st_mtime_ns for p in done} == stamps
    assert not list((run / "cache").rglob(".tmp-*"))
    assert (run / "manifest.csv").read_text() != ""
    for split in ("train", "val", "test"):
        for a, b in zip(arrays(run, split), arrays(reference, split)):
            np.testing.assert_array_equal(a, b)
    with open(run / "manifest.csv") as f, open(reference / "manifest.csv") as g:
        strip = lambda rows: [{k: v for k, v in r.items() if k != "cache_key"} for r in csv.DictReader(rows)]
        assert strip(f) == strip(g)


def test_sigkill_then_rerun_matches_uninterrupted(rsna_root, tmp_path):
    """A real kill -9 of the CLI while it decodes (at its third cache file, complete but not yet
    renamed: the test hook of cxrsal.files, no race); the second run finishes the same data."""
    from cxrsal.files import KILL_AT_ENV

    reference = tmp_path / "reference"
    prepare(cfg_for("rsna", rsna_root), reference, progress=False, log=quiet)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "cxrsal.cli", "prepare", "--dataset", "rsna", "--root", str(rsna_root),
           "--size", "32", "--out", str(run), "--workers", "1", "--quiet"]
    killed = subprocess.run(cmd, capture_output=True, env={**os.environ, KILL_AT_ENV: "1:written:/cache/"})
    assert killed.returncode == -signal.SIGKILL
    assert not (run / "summary.json").exists()
    assert len(list((run / "cache").rglob(".tmp-*"))) == 1 and not list((run / "cache").rglob("??/[!.]*.npz"))
    killed = subprocess.run(cmd, capture_output=True, env={**os.environ, KILL_AT_ENV: "12:renamed:/cache/"})
    assert killed.returncode == -signal.SIGKILL
    assert not list((run / "cache").rglob(".tmp-*"))          # the dead run's file, removed by the next
    assert len(list((run / "cache").rglob("??/[!.]*.npz"))) >= 2      # a few decoded, the rest to do
    rc = subprocess.run(cmd, capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    for split in ("train", "val", "test"):
        for a, b in zip(arrays(run, split), arrays(reference, split)):
            np.testing.assert_array_equal(a, b)


def test_siim_malformed_rle_goes_to_skipped(siim_root, tmp_path):
    import shutil

    root = tmp_path / "siim"
    shutil.copytree(siim_root, root)
    lines = (root / "train-rle.csv").read_text().splitlines()
    victim = next(l.split(",")[0] for l in lines[1:] if l.split(",")[1].strip() != "-1")
    lines = [f"{victim}, 5 7 9" if l.startswith(victim + ",") else l for l in lines]   # odd count
    (root / "train-rle.csv").write_text("\n".join(lines) + "\n")
    summary = prepare(cfg_for("siim", root), tmp_path / "run", progress=False, log=quiet)
    with open(tmp_path / "run" / "skipped.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["image_id"] for r in rows] == [victim] and "odd number of values" in rows[0]["reason"]
    assert rows[0]["source"].startswith("train-rle.csv line")
    assert summary["skipped"] == 1 and summary["images"] == 29
    with pytest.raises(DataError, match=f"train-rle.csv line .*{victim}.*odd number"):
        prepare(cfg_for("siim", root, strict=True), tmp_path / "strict", progress=False, log=quiet)
