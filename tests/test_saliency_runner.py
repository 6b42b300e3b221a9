"""The saliency runner: store contents, kill-and-resume and sharding equality, CLI, overlays, tf.distribute."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import cxrsal.saliency.runner as runner_mod
from cxrsal.cli.main import cli
from cxrsal.config import load_config
from cxrsal.data.pipeline import PreparedSplit
from cxrsal.saliency import compute_maps
from cxrsal.saliency.runner import run_saliency
from cxrsal.saliency.store import MapStore
from cxrsal.runs import Run
from helpers import quiet

METHODS = "grad,sg,gcam,gbp,ggcam"


def cfg(**s):
    base = {"saliency.samples": 3, "saliency.group_size": 2, "saliency.batch_size": 2, "saliency.limit": 7,
            "saliency.split": "val"}
    base.update({f"saliency.{k}": v for k, v in s.items()})
    return load_config(options=base)


def store_contents(path):
    store = MapStore(path)
    out = {}
    for m in store.methods():
        for i in store.ids(m):
            d = store.load(m, i)
            out[(m, i)] = (d["raw"], d["processed"], d["constant"], d["logit"], d["label"], d["index"])
    return out


def assert_same_store(a, b):
    ca, cb = store_contents(a), store_contents(b)
    assert ca.keys() == cb.keys() and ca
    for k in ca:
        for x, y in zip(ca[k], cb[k]):
            np.testing.assert_array_equal(x, y, err_msg=str(k))


@pytest.fixture(scope="module")
def reference_store(trained_classifier, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "maps"
    run_saliency(trained_classifier, out, cfg(), METHODS, progress=False, log=quiet)
    return out


def test_store_holds_every_map_with_metadata(reference_store, trained_classifier):
    store = MapStore(reference_store)
    assert store.methods() == sorted(METHODS.split(","))
    meta = store.meta
    assert len(meta["image_ids"]) == 7 and meta["split"] == "val" and meta["versions"]["tensorflow"]
    params = store.params("sg")
    assert params["params"] == {"samples": 3, "noise": 0.15, "magnitude": True} and params["seed"] == 0
    assert params["dtypes"]["raw"] == "float32"
    # a stored map equals compute_maps on the same image (noise stream = its index in the split)
    model = Run(trained_classifier).model()
    data = PreparedSplit(json.loads((trained_classifier / "data.json").read_text())["dir"], "val")
    first = store.load("sg", meta["image_ids"][0])
    images, _, _ = data.arrays([first["index"]])
    raw, processed = compute_maps(model, images, "sg", samples=3, indices=[first["index"]])
    np.testing.assert_allclose(first["raw"], raw[0], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(first["processed"], processed[0], atol=1 / 65535)


def test_kill_and_resume_equals_uninterrupted(reference_store, trained_classifier, tmp_path, monkeypatch):
    real = runner_mod._write
    calls = []

    def dies_on_third_group(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(runner_mod, "_write", dies_on_third_group)
    with pytest.raises(KeyboardInterrupt):
        run_saliency(trained_classifier, tmp_path / "maps", cfg(), METHODS, progress=False, log=quiet)
    assert len(MapStore(tmp_path / "maps").ids("grad")) == 4          # two groups of two written
    monkeypatch.setattr(runner_mod, "_write", real)
    written = run_saliency(trained_classifier, tmp_path / "maps", cfg(), METHODS, progress=False, log=quiet)
    assert written["grad"] == 3 and written["sg"] == 7
    assert not list((tmp_path / "maps").rglob(".tmp-*"))
    assert_same_store(reference_store, tmp_path / "maps")


def test_sharded_equals_unsharded(reference_store, trained_classifier, tmp_path):
    for i in range(3):
        run_saliency(trained_classifier, tmp_path / "maps", cfg(), METHODS, num_shards=3, shard_index=i,
                     progress=False, log=quiet)
    assert_same_store(reference_store, tmp_path / "maps")


def test_shards_in_their_own_stores_merge_into_the_one_machine_store(reference_store, trained_classifier, tmp_path):
    """Three shards on machines without a shared file system, each writing its own store, then
    `cxrsal merge`: every map exactly once, equal to the one-machine run's bit for bit."""
    for i in range(3):
        run_saliency(trained_classifier, tmp_path / f"shard-{i}", cfg(), METHODS, num_shards=3, shard_index=i,
                     progress=False, log=quiet)
    shards = [str(tmp_path / f"shard-{i}") for i in range(3)]
    r = CliRunner().invoke(cli, ["merge", *shards[:2], "--out", str(tmp_path / "partial")])
    assert r.exit_code == 2 and "are in no shard" in r.output
    r = CliRunner().invoke(cli, ["merge", *shards, "--out", str(tmp_path / "merged")])
    assert r.exit_code == 0, r.output
    assert_same_store(reference_store, tmp_path / "merged")


def test_changed_parameters_are_refused(reference_store, trained_classifier, tmp_path):
    from cxrsal.errors import CxrsalError

    run_saliency(trained_classifier, tmp_path / "maps", cfg(limit=2), "grad,sg", progress=False, log=quiet)
    with pytest.raises(CxrsalError, match=r"holds maps made otherwise: image_ids \[.*\] \(this run: \[3 values"):
        run_saliency(trained_classifier, tmp_path / "maps", cfg(limit=3), "grad", progress=False, log=quiet)
    with pytest.raises(CxrsalError, match=r"its maps were computed otherwise: params.samples 3 \(this run: 4\)"):
        run_saliency(trained_classifier, tmp_path / "maps", cfg(limit=2, samples=4), "sg", progress=False, log=quiet)


def test_cli_study_methods_on_wildcat_and_overlays(trained_wildcat, tmp_path):
    # no --methods: the study's (the default, `study`), WILDCAT's map included on a WILDCAT head
    runner = CliRunner()
    r = runner.invoke(cli, ["saliency", "--model", str(trained_wildcat), "--split", "val",
                            "--positives-only", "--limit", "2", "--out", str(tmp_path / "maps"), "--quiet",
                            "--set", "saliency.samples=2", "--set", "saliency.ig_steps=3",
                            "--set", "saliency.xrai_steps=3"])
    assert r.exit_code == 0, r.output
    store = MapStore(tmp_path / "maps")
    assert store.methods() == sorted(["grad", "sg", "ig", "sig", "gcam", "xrai", "gbp", "ggcam", "wildcat"])
    for m in store.methods():
        d = store.load(m, store.ids(m)[0])
        assert d["processed"].shape == (64, 64) and 0 <= d["processed"].min() and d["processed"].max() <= 1
        assert d["label"] == 1
    r = runner.invoke(cli, ["overlay", "--maps", str(tmp_path / "maps"), "--methods", "gcam,wildcat",
                            "--out", str(tmp_path / "png")])
    assert r.exit_code == 0, r.output
    pngs = sorted((tmp_path / "png").rglob("*.png"))
    assert len(pngs) == 4
    import cv2
    im = cv2.imread(str(pngs[0]))
    assert im.shape == (64, 64, 3)
    assert (im[..., 1] == 255).any()      # the green outline of the positive's box


def test_cli_bad_input_is_one_line(trained_classifier, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["saliency", "--model", str(trained_classifier), "--methods", "grad,lime",
                            "--out", str(tmp_path / "m")])
    assert r.exit_code == 2 and "Invalid value for '--methods': 'lime': valid choices: study, controls, all, grad" in r.output
    r = runner.invoke(cli, ["saliency", "--model", str(trained_classifier), "--methods", "wildcat",
                            "--out", str(tmp_path / "m")])
    assert r.exit_code == 2 and "no WILDCAT head" in r.output
    r = runner.invoke(cli, ["saliency", "--model", str(tmp_path), "--out", str(tmp_path / "m")])
    assert r.exit_code == 2 and "not a `cxrsal train` run" in r.output
    r = runner.invoke(cli, ["saliency", "--model", str(trained_classifier), "--out", str(tmp_path / "m"),
                            "--num-shards", "2", "--shard-index", "2"])
    assert r.exit_code == 2 and "--shard-index 2: must be in 0..1 for --num-shards 2" in r.output


MIRRORED = r"""
import sys, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
keras.utils.set_random_seed(0)
from cxrsal.models import build_model
from cxrsal.saliency import ModelAdapter, compute_maps
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = build_model("resnet18", "classification", (32, 32, 1))
x = np.random.default_rng(0).random((5, 32, 32, 1)).astype(np.float32)
one, _ = compute_maps(ModelAdapter(model, batch_size=2), x, "ig", steps=4)
two, _ = compute_maps(ModelAdapter(model, batch_size=2, strategy=strategy), x, "ig", steps=4)
assert strategy.num_replicas_in_sync == 2
np.testing.assert_allclose(one, two, rtol=1e-4, atol=1e-7)
print("replicas", strategy.num_replicas_in_sync, "ok")
"""


def test_tf_distribute_replicas_give_the_same_maps():
    # two logical CPU devices stand in for two GPUs (must be configured before TensorFlow starts)
    out = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "replicas 2 ok" in out.stdout
