"""`cxrsal train-baseline` / `predict-baseline`: the shared training loop (plateau, early stop,
resume), a tiny U-Net and a tiny RetinaNet trained end to end, and their outputs read back by
`cxrsal score`."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import average_precision_score

from cxrsal.baselines.predict import predict_baseline, train_baseline
from cxrsal.baselines.unet import classification_score
from cxrsal.cli.main import cli
from cxrsal.config import load_config
from cxrsal.data.prepare import prepare
from cxrsal.errors import CxrsalError
from cxrsal.experiments.score_baselines import read_detections, read_probability_map
from cxrsal.experiments.scoring import score_store
from cxrsal.metrics import box_heatmap
from cxrsal.saliency.store import MapStore
from cxrsal.runs import Run
from cxrsal.training.classifier import ClassificationTask
from cxrsal.training.fit import train
from helpers import assert_same_weights, quiet

UNET = ["baseline.kind=unet", "baseline.filters=4", "baseline.depth=2", "train.lr=1e-3", "pipeline.batch_size=8",
        "pipeline.balanced=true", "pipeline.flip=true"]
RETINANET = ["baseline.kind=retinanet", "baseline.backbone=resnet10", "baseline.max_level=5", "baseline.head_convs=1",
             "baseline.anchor_size=1.5", "model.input_size=64", "train.lr=1e-3", "pipeline.batch_size=8",
             "pipeline.balanced=true", "pipeline.flip=true"]


@pytest.fixture(scope="module")
def siim_run(siim_root, tmp_path_factory):
    """The SIIM fixture prepared at 32 px, split 50:25:25."""
    out = tmp_path_factory.mktemp("siim") / "run"
    cfg = load_config(options={"data.dataset": "siim", "data.root": str(siim_root), "data.size": 32,
                               "data.workers": 1, "data.split": [0.5, 0.25, 0.25]})
    prepare(cfg, out, progress=False, log=quiet)
    return out


@pytest.fixture
def store(gcam_store):
    """The session's GradCAM store (tests/conftest.py): what `score` scores."""
    return gcam_store


class ScriptedTask(ClassificationTask):
    """The classifier, with validation scores read from a script (the loop's rules under test)."""

    monitor, mode = "val_loss", "min"

    def __init__(self, cfg, data_dir, script):
        super().__init__(cfg, data_dir)
        self.script = list(script)

    def validate(self, model, size):
        return {"val_loss": self.script.pop(0)}


def test_plateau_and_early_stopping_follow_the_monitor(tiny_run, tmp_path):
    cfg = load_config(overrides=["train.epochs=8", "train.lr=1e-3", "train.patience=4", "train.plateau_patience=2",
                                 "train.plateau_factor=0.5", "train.min_lr=2e-4", "pipeline.batch_size=8"])
    # better, better, worse x2 (lr halves), better (counters reset), worse x3 (halves again after
    # two); a 4th worse epoch (second run) stops it, and the next cut stops at the floor 2e-4
    script = [1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.71, 0.72, 0.9]
    card = train(cfg, tiny_run, tmp_path / "m", log=quiet, verbose=0, task=ScriptedTask(cfg, tiny_run, script))
    hist = pd.read_csv(tmp_path / "m" / "history.csv")
    assert hist.val_loss.tolist() == script[:8]
    # the lr an epoch trained with
    assert hist.lr.tolist() == pytest.approx([1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4])
    state = json.loads((tmp_path / "m" / "state.json").read_text())
    assert state["best_epoch"] == 5 and state["best"] == 0.7 and state["lr"] == pytest.approx(2.5e-4)
    assert card["metrics"]["best_val_loss"] == 0.7 and not card["metrics"]["stopped_early"]
    longer = load_config(overrides=["train.epochs=12", "train.lr=1e-3", "train.patience=4", "train.plateau_patience=2",
                                    "train.plateau_factor=0.5", "train.min_lr=2e-4", "pipeline.batch_size=8"])
    card = train(longer, tiny_run, tmp_path / "m2", log=quiet, verbose=0,
                 task=ScriptedTask(longer, tiny_run, script + [0.9] * 4))
    assert card["metrics"]["stopped_early"] and card["metrics"]["epochs_run"] == 9
    assert json.loads((tmp_path / "m2" / "state.json").read_text())["lr"] == pytest.approx(2e-4)


def test_unet_cli_on_siim(siim_run, tmp_path):
    runner = CliRunner()
    out = tmp_path / "unet"
    args = ["train-baseline", "unet", "--data", str(siim_run), "--out", str(out), "--epochs", "2", "--quiet"]
    r = runner.invoke(cli, args + sum((["--set", o] for o in UNET[1:]), []))
    assert r.exit_code == 0, r.output
    assert "run card:" in r.output and "score with: cxrsal score" in r.output
    card = json.loads((out / "run.json").read_text())
    assert card["task"] == "unet" and card["arch"] == "unet" and card["options"]["filters"] == 4
    assert card["metrics"]["epochs_run"] == 2 and "test_dice" in card["metrics"]
    # the command's own defaults ([A]'s recipe) apply where nothing else was said
    assert card["train"]["plateau_patience"] == 3 and card["train"]["patience"] == 8 and card["train"]["lr"] == 1e-3
    pred = out / "predictions" / "test"
    scores = pd.read_csv(pred / "scores.csv")
    test_ids = [json.loads((pred / "predictions.json").read_text())["split"]]
    assert test_ids == ["test"] and len(scores) == len(list((pred / "maps").glob("*.npy")))
    for row in scores.itertuples():
        m = np.load(pred / "maps" / f"{row.image_id}.npy")
        assert m.shape == (32, 32) and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1
        assert row.score == pytest.approx(classification_score(m[None])[0], abs=1e-6)
    # the card's test AUC (scikit-learn on scores.csv) and its bootstrap interval, as Table 1 shows
    from sklearn.metrics import roc_auc_score

    auc, (low, high) = card["metrics"]["test_auc"], card["metrics"]["test_auc_ci"]
    # (its replicates are checked against a slow loop in test_bootstrap.py)
    assert auc == pytest.approx(roc_auc_score(scores.label, scores.score), abs=1e-12) and 0 <= low <= high <= 1
    # a baseline run is not a classifier: the classifier commands say so in one line
    r = runner.invoke(cli, ["evaluate", "--model", str(out)])
    assert r.exit_code == 2 and "a unet run, not a classifier" in r.output, r.output
    # predict-baseline writes another split elsewhere; retinanet refuses SIIM (no boxes)
    r = runner.invoke(cli, ["predict-baseline", "--model", str(out), "--split", "val", "--out", str(tmp_path / "v")])
    assert r.exit_code == 0 and (tmp_path / "v" / "scores.csv").exists(), r.output
    r = runner.invoke(cli, ["train-baseline", "retinanet", "--data", str(siim_run), "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "RetinaNet trains on boxes; this siim run has masks" in r.output, r.output


def killed_after(epoch, cfg, data, out):
    """`train_baseline` killed once `epoch` has finished (as a kill anywhere in the next one)."""
    def kill(done):
        if done == epoch:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_baseline(cfg, data, out, log=quiet, verbose=0, on_epoch_end=kill)


def test_unet_maps_are_scored(tiny_run, store, tmp_path):
    # (its resume after a real SIGKILL: tests/test_kill_resume.py)
    cfg = load_config(overrides=UNET + ["train.epochs=3", "train.patience=3", "train.plateau_patience=1"])
    train_baseline(cfg, tiny_run, tmp_path / "full", log=quiet, verbose=0)
    # a classifier config may not continue a U-Net run directory
    with pytest.raises(CxrsalError, match="holds a unet run"):
        train(load_config(overrides=["train.epochs=1"]), tiny_run, tmp_path / "full", log=quiet, verbose=0)

    # the probability maps as `score --baselines seg:DIR` reads them: utility of the saved map
    maps = tmp_path / "full" / "predictions" / "test" / "maps"
    table = score_store(store, tmp_path / "s", baselines=f"seg:{maps}", log=quiet)
    seg = table[(table.method == "baseline:segmentation") & (table.metric == "auprc")]
    assert len(seg) == int((pd.read_csv(maps.parent / "scores.csv").label == 1).sum()) > 0
    from cxrsal.data import boxes_to_mask
    from cxrsal.data.manifest import parse_boxes, read_manifest

    rows = {r["image_id"]: r for r in read_manifest(tiny_run)}
    size = MapStore(store).meta["input_size"]
    for row in seg.itertuples():
        r = rows[row.image_id]
        truth = boxes_to_mask(parse_boxes(r["boxes"]), size, (r["height"], r["width"]))
        expected = average_precision_score(truth.ravel(), read_probability_map(maps, row.image_id, size).ravel())
        assert row.value == pytest.approx(expected, abs=1e-12)


def test_retinanet_trains_and_its_boxes_are_scored(tiny_run, store, tmp_path):
    cfg = load_config(overrides=RETINANET + ["train.epochs=4", "train.patience=4"])
    card = train_baseline(cfg, tiny_run, tmp_path / "det", log=quiet, verbose=0)
    hist = pd.read_csv(tmp_path / "det" / "history.csv")
    assert {"loss", "bbox_regression_loss", "cls_logits_loss", "val_loss"} <= set(hist.columns)
    assert hist.loss.iloc[-1] < 0.5 * hist.loss.iloc[0], hist.loss.tolist()
    assert card["task"] == "retinanet" and card["arch"] == "resnet10"

    pred = tmp_path / "det" / "predictions" / "test"
    det = read_detections(pred / "detections.csv")
    scores = pd.read_csv(pred / "scores.csv")
    from cxrsal.data.manifest import read_manifest

    rows = {r["image_id"]: r for r in read_manifest(tiny_run)}
    for row in scores.itertuples():
        boxes, s = det.get(row.image_id, ([], []))
        assert all(v > 0.01 for v in s) and row.score == (max(s) if s else 0.0)
        # the saved heatmap (input size, 64 px) is the detector heatmap of the CSV's boxes
        r = rows[row.image_id]
        heat = box_heatmap(boxes, s, (64, 64), original_size=(r["height"], r["width"]))
        np.testing.assert_allclose(np.load(pred / "maps" / f"{row.image_id}.npy"), heat, atol=1e-6)
    table = score_store(store, tmp_path / "s", baselines=f"boxes:{pred / 'detections.csv'}", log=quiet)
    got = table[(table.method == "baseline:detector") & (table.metric == "auprc")]
    assert len(got) == int((scores.label == 1).sum())
    # the checkpoint reloads (keras-hub layers) and predicts the same boxes again
    again = predict_baseline(tmp_path / "det", out=tmp_path / "again", log=quiet)
    assert again["test_boxes"] == card["metrics"]["test_boxes"] > 0
    assert (tmp_path / "again" / "detections.csv").read_text() == (pred / "detections.csv").read_text()

    # a short last batch is padded: after a first batch size, Keras retraced predict with an unknown
    # batch dimension that keras-hub's NMS could not handle (the tiny demo's last test batch hit it)
    from cxrsal.baselines.retinanet import detect
    from cxrsal.data.pipeline import PreparedSplit, load_batch

    model = Run(tmp_path / "det").expect("retinanet").model()
    x = load_batch(PreparedSplit(tiny_run, "test"), list(range(4)), 64)[0]
    full, short = detect(model, x, batch_size=4), detect(model, x[:3], batch_size=4)
    assert len(short) == 3 and sum(len(s) for _, s in short) > 0
    for (b1, s1), (b2, s2) in zip(full[:3], short):
        np.testing.assert_allclose(b1, b2, atol=1e-3)
        np.testing.assert_allclose(s1, s2, atol=1e-5)


def test_retinanet_resume_equals_uninterrupted(tiny_run, tmp_path):
    # keras-hub's own compile() would make Keras drop the saved losses and Adam state on loading
    cfg = load_config(overrides=RETINANET + ["train.epochs=2", "train.patience=2"])
    full = train_baseline(cfg, tiny_run, tmp_path / "full", log=quiet, verbose=0)
    killed_after(1, cfg, tiny_run, tmp_path / "resumed")
    model = Run(tmp_path / "resumed").expect("retinanet").model("last", compile=True)
    assert model.optimizer.iterations.numpy() > 0 and model.loss["cls_logits"].alpha == 0.25
    resumed = train_baseline(cfg, tiny_run, tmp_path / "resumed", log=quiet, verbose=0)
    assert resumed["metrics"] == full["metrics"]
    assert_same_weights(tmp_path / "full", tmp_path / "resumed", ("last",))


@pytest.mark.parametrize("args, message", [
    (["unet", "--set", "baseline.dice=pixel"], "baseline.dice must be one of batch, image, got 'pixel'"),
    (["unet", "--set", "baseline.depth=6"], "U-Net input 32 px must be divisible by 2^baseline.depth = 64"),
    (["unet", "--set", "baseline.kind=retinanet"], "the config or --set says baseline.kind=retinanet"),
    (["retinanet", "--set", "baseline.min_level=4", "--set", "baseline.max_level=3"],
     "baseline.min_level must not exceed baseline.max_level (baseline.min_level=4, baseline.max_level=3)"),
    (["retinanet", "--set", "baseline.max_level=6"], "RetinaNet input 32 px must be divisible by 2^max_level = 64"),
    (["retinanet", "--backbone", "resnet19"],
     "Invalid value for '--backbone': baseline.backbone must be one of resnet10, resnet18"),
    (["retinanet", "--set", "baseline.max_level=5", "--set", "baseline.score_threshold=0.001"],
     "keep the threshold at 0.01 or above"),
    (["unet", "--set", "baseline.predict_split=tset"], "baseline.predict_split must be one of train, val, test"),
])
def test_bad_baseline_settings_are_one_line(tiny_run, tmp_path, args, message):
    r = CliRunner().invoke(cli, ["train-baseline", *args, "--data", str(tiny_run), "--out", str(tmp_path / "b")])
    assert r.exit_code == 2 and message in r.output, r.output
    assert "Traceback" not in r.output
    # nothing was trained, so the corrected command may use the same directory
    assert not (tmp_path / "b" / "state.json").exists()


def test_pretrained_backbone_offline_is_one_line(monkeypatch):
    import keras_hub

    from cxrsal.baselines.retinanet import _backbone

    def offline(*args, **kwargs):   # what requests raises here: api.kaggle.com does not resolve
        raise ConnectionError("HTTPSConnectionPool(host='api.kaggle.com', port=443): Max retries exceeded")

    monkeypatch.setattr(keras_hub.models.ResNetBackbone, "from_preset", offline)
    with pytest.raises(CxrsalError, match="cannot load keras-hub preset 'resnet_50_imagenet' \\(ConnectionError"):
        _backbone("resnet50", "imagenet", 64)
    with pytest.raises(CxrsalError, match="no ImageNet preset for resnet34"):
        _backbone("resnet34", "imagenet", 64)


def iou(a, b):
    """Intersection over union of two (x, y, width, height) boxes, written out."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_retinanet_detections_of_its_training_targets_are_the_boxes(tiny_run):
    """The boxes a RetinaNet is trained on (its label encoder's anchor targets for the ground
    truth), fed to its own decoder as if predicted with certainty, come out of the task's
    prediction (NMS, clipping, scaling back) as the manifest's boxes in original pixels: the boxes
    go to the input size, through anchor encoding and decoding and back, without a shift, a swap
    or a scale. A box no anchor overlaps at IoU >= positive_iou teaches nothing and is not found.
    (Trained 30 epochs on these 20 images, the tiny detector's best boxes miss: median IoU 0.03,
    measured; so the check is made on the targets, not on a learned outcome.)"""
    from cxrsal.baselines.retinanet import RetinaNetTask, build_retinanet, detector_inputs, split_boxes
    from cxrsal.data.manifest import parse_boxes, read_manifest, split_rows
    from cxrsal.data.pipeline import PreparedSplit, load_batch

    cfg = load_config(overrides=RETINANET)
    size = cfg.model.input_size
    model = build_retinanet(size, cfg.baseline)
    rows = [r for r in split_rows(read_manifest(tiny_run), "train") if r["label"] == 1]
    images = load_batch(PreparedSplit(tiny_run, "train"), [r["index"] for r in rows], size)[0]
    boxes, classes = split_boxes(rows, size)
    box_targets, class_targets = (np.asarray(t) for t in model.label_encoder(detector_inputs(images), boxes, classes))
    certain = np.where(class_targets[..., None] == 0, 20.0, -20.0).astype(np.float32)

    class Trained:      # predicts exactly its training targets
        def predict(self, inputs, batch_size=None, verbose=0):
            return model.decode_predictions({"bbox_regression": box_targets, "cls_logits": certain}, inputs)

    task = RetinaNetTask(cfg, tiny_run)
    task.predict(Trained(), images, rows, None)
    found = pd.DataFrame(task._detections)
    n_truth = sum(len(parse_boxes(r["boxes"])) for r in rows)
    assert len(found) >= 0.75 * n_truth and len(rows) >= 5
    for det in found.itertuples():
        truth = parse_boxes(next(r["boxes"] for r in rows if r["image_id"] == det.patientId))
        best = max(iou((det.x, det.y, det.width, det.height), t) for t in truth)
        assert best > 0.999 and det.score > 0.99, (det, truth)
