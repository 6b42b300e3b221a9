"""`cxrsal train`: BCE + Adam, early stopping on validation AUC, best/last checkpoints, resume.

A run directory holds config.yaml, checkpoints/ (epoch-NNN.keras = last, best.keras),
state.json (what the next epoch needs; written after its checkpoint, so a kill between the
two only loses that epoch), history.csv, logs/ (TensorBoard) and run.json (the run card).
"""

import csv
import io
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from ..config import Config, from_mapping, to_dict, write_config
from ..errors import CxrsalError
from ..io import atomic_path, atomic_write_text, remove_stale_tmp

STATE_FILE = "state.json"
CARD_FILE = "run.json"
HISTORY_FILE = "history.csv"
CKPT_DIR = "checkpoints"
BEST = "best.keras"


def auc_score(labels, scores):
    """ROC AUC (scikit-learn); NaN when the split holds a single class."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels).ravel()
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores).ravel()))


def predict_split(model, data_dir, split, *, batch_size=32, image_size=0):
    """(labels, scores) of every image of `split`, in manifest order."""
    from ..data.pipeline import make_dataset

    ds = make_dataset(data_dir, split, batch_size=batch_size, image_size=image_size, shuffle=False,
                      with_masks=False)
    labels, scores = [], []
    for x, y in ds:
        scores.append(np.asarray(model(x, training=False)).ravel())
        labels.append(y.numpy())
    return np.concatenate(labels), np.concatenate(scores)


def versions():
    import keras
    import tensorflow as tf

    import cxrsal

    return {"cxrsal": cxrsal.__version__, "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "platform": platform.platform()}


def _check_resumable(out, cfg, data_dir, task):
    """A run directory continues only the same experiment."""
    import yaml

    path = out / "config.yaml"
    if not path.exists() or not (out / STATE_FILE).exists():
        return      # nothing trained yet (a failed start may have left its config): start afresh
    if run_task(out) != task:
        raise CxrsalError(f"{out} holds a {run_task(out)} run, not {task}; use a new --out directory")
    # sections an older cxrsal did not write take their defaults
    old = to_dict(from_mapping(Config, yaml.safe_load(path.read_text()) or {}, str(path)))
    new = to_dict(cfg)
    for section in ("model", "train", "pipeline", "baseline"):
        if old.get(section) != new[section]:
            raise CxrsalError(f"{out} holds a run with other {section} settings; use a new --out directory "
                              f"(or the same config to resume it)")
    meta = out / "data.json"
    if meta.exists() and json.loads(meta.read_text())["dir"] != str(Path(data_dir).resolve()):
        raise CxrsalError(f"{out} was trained on {json.loads(meta.read_text())['dir']}, not {data_dir}")


def _write_history(out, rows):
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out / HISTORY_FILE, buf.getvalue())


def _save(model, path):
    with atomic_path(path) as tmp:
        model.save(tmp)


def _read_state(run_dir):
    state_path = Path(run_dir) / STATE_FILE
    if not state_path.exists():
        raise CxrsalError(f"--model {run_dir}: not a `cxrsal train` run (no {STATE_FILE})")
    return json.loads(state_path.read_text())


def run_task(run_dir):
    """The task a run directory was trained for (classification, unet, retinanet)."""
    return _read_state(run_dir).get("task", "classification")


def load_run_model(run_dir, which="best", task="classification", compile=False):
    """The trained model of a run directory (`best` or `last` checkpoint).

    `task`: the kind of run expected (a classifier by default, for the saliency commands);
    None accepts any.
    """
    import keras

    from .. import models  # noqa: F401  (registers the custom layers)

    run_dir = Path(run_dir)
    state = _read_state(run_dir)
    found = state.get("task", "classification")
    if task is not None and found != task:
        what = {"classification": "a classifier (`cxrsal train`)"}.get(task, f"a {task} baseline")
        raise CxrsalError(f"--model {run_dir}: a {found} run, not {what}")
    if found != "classification":
        from .. import baselines  # noqa: F401  (registers the losses, and keras-hub's layers when needed)

        if found == "retinanet":
            from ..baselines.retinanet import detector_class

            detector_class()
    name = BEST if which == "best" else state["last"]
    if which == "best" and not (run_dir / CKPT_DIR / BEST).exists():
        raise CxrsalError(f"--model {run_dir}: no best checkpoint yet (no epoch finished with a validation score)")
    with warnings.catch_warnings():
        # without compiling, Keras says it skips the saved optimizer's variables: that is the point
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        return keras.models.load_model(run_dir / CKPT_DIR / name, compile=compile)


def load_run_config(run_dir):
    import yaml

    if not (Path(run_dir) / STATE_FILE).exists() or not (Path(run_dir) / "config.yaml").exists():
        raise CxrsalError(f"--model {run_dir}: not a `cxrsal train` run (no {STATE_FILE} / config.yaml)")
    return from_mapping(Config, yaml.safe_load((Path(run_dir) / "config.yaml").read_text()),
                        str(Path(run_dir) / "config.yaml"))


class ClassificationTask:
    """What `train` needs to know of one kind of model: how to build, feed, validate and test it.

    This one is `cxrsal train`'s classifier (BCE, early stopping on validation AUC); the
    baselines (`cxrsal.baselines`) bring their own and share the loop, checkpoints, resume
    and run card.
    """

    name = "classification"
    monitor, mode = "val_auc", "max"

    def __init__(self, cfg, data_dir):
        self.cfg, self.data_dir = cfg, data_dir

    def describe(self):
        return {"arch": self.cfg.model.arch, "head": self.cfg.model.head, "options": to_dict(self.cfg)["model"]}

    def build(self, size):
        import keras

        from ..models import build_model

        m = self.cfg.model
        model = build_model(m.arch, m.head, (size, size, 1), m.weights, output_stride=m.output_stride,
                            **m.head_options())
        model.compile(optimizer=keras.optimizers.Adam(self.cfg.train.lr), loss=keras.losses.BinaryCrossentropy(),
                      metrics=[keras.metrics.AUC(name="auc")])
        return model

    def train_data(self, size, epoch):
        from ..data.pipeline import dataset_from_config

        return dataset_from_config(self.data_dir, "train", self.cfg.pipeline, image_size=size, start_epoch=epoch,
                                   advance=False, with_masks=False, repeat=bool(self.cfg.train.steps_per_epoch))

    def validate(self, model, size):
        labels, scores = predict_split(model, self.data_dir, "val", batch_size=self.cfg.pipeline.batch_size,
                                       image_size=size)
        return {"val_auc": auc_score(labels, scores)}

    def test(self, model, size, out):
        labels, scores = predict_split(model, self.data_dir, "test", batch_size=self.cfg.pipeline.batch_size,
                                       image_size=size)
        return {"test_auc": auc_score(labels, scores)}


def _better(value, best, mode):
    """Whether `value` improves on `best` (None: nothing yet); NaN never improves."""
    if value != value:
        return False
    return best is None or (value > best if mode == "max" else value < best)


def train(cfg: Config, data_dir, out, *, log=print, verbose=1, on_epoch_end=None, task=None):
    """Train `cfg.model` (or `task`'s model) on the prepared run `data_dir` into run directory
    `out`; returns the run card.

    Each epoch is validated on the `val` split; the best epoch (task's monitor) is kept,
    training stops after `train.patience` epochs without a better one, and the learning rate is
    multiplied by `train.plateau_factor` after `train.plateau_patience` such epochs (0: never).
    Started again on the same `out`, it resumes after the last finished epoch and ends with the
    same weights as an uninterrupted run (same seed, `train.deterministic`).
    """
    import keras
    import tensorflow as tf

    from ..data.manifest import manifest_hash
    from ..data.prepare import check_prepared
    from .strategy import choose_strategy

    t_start = time.time()
    task = task or ClassificationTask(cfg, data_dir)
    data_summary = check_prepared(data_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_resumable(out, cfg, data_dir, task.name)
    write_config(cfg, out)
    atomic_write_text(out / "data.json", json.dumps(
        {"dir": str(Path(data_dir).resolve()), "manifest_sha256": manifest_hash(data_dir),
         "dataset": data_summary["dataset"], "size": data_summary["size"]}, indent=2) + "\n")
    ckpt_dir = out / CKPT_DIR
    ckpt_dir.mkdir(exist_ok=True)
    remove_stale_tmp(ckpt_dir)
    remove_stale_tmp(out)

    m, t = cfg.model, cfg.train
    keras.utils.set_random_seed(t.seed)
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy, described = choose_strategy()
    log(f"strategy: {described}")
    gpus = tf.config.list_physical_devices("GPU")
    if t.mixed_precision:
        if gpus:
            keras.mixed_precision.set_global_policy("mixed_float16")
        else:
            log("note: train.mixed_precision ignored on the CPU")

    size = m.input_size or data_summary["size"]
    state_path = out / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    monitor = task.monitor
    with strategy.scope():
        if state:
            if "best" not in state:   # a classifier run of cxrsal 0.1 (before tasks)
                state.update(task="classification", monitor="val_auc", lr=float(t.lr), plateau_wait=0,
                             best=state["best_auc"] if state.get("best_auc", -1.0) >= 0 else None)
            model = load_run_model(out, "last", task=task.name, compile=True)
            model.optimizer.learning_rate.assign(state["lr"])
            best = "none yet" if state["best"] is None else f"{state['best']:.4f}"
            log(f"resuming after epoch {state['epoch']} (best {monitor} {best} at epoch {state['best_epoch']})")
        else:
            model = task.build(size)
            state = {"task": task.name, "monitor": monitor, "epoch": 0, "best": None, "best_epoch": 0, "wait": 0,
                     "plateau_wait": 0, "lr": float(t.lr), "last": None, "history": [], "stopped_early": False}
    # TensorBoard scalars written once per epoch here: Keras' TensorBoard callback cost ~10 %
    # of a small model's training time on a 2-core CPU (measured)
    tb_writer = tf.summary.create_file_writer(str(out / "logs"))

    first_epoch_s = None
    while state["epoch"] < t.epochs and not state["stopped_early"]:
        epoch = state["epoch"]
        train_ds = task.train_data(size, epoch)
        t0 = time.time()
        hist = model.fit(train_ds, epochs=epoch + 1, initial_epoch=epoch, verbose=verbose, shuffle=False,
                         steps_per_epoch=t.steps_per_epoch or None)
        fit_s = time.time() - t0
        first_epoch_s = fit_s if first_epoch_s is None else first_epoch_s
        val = task.validate(model, size)
        score = val[monitor]
        train_metrics = {"loss": float(hist.history["loss"][-1])}
        train_metrics.update({k: float(v[-1]) for k, v in hist.history.items() if k != "loss"})
        with tb_writer.as_default():
            for key, value in train_metrics.items():
                tf.summary.scalar(f"train/{key}", value, step=epoch + 1)
            for key, value in val.items():
                tf.summary.scalar(f"val/{key.removeprefix('val_')}", value, step=epoch + 1)
            tf.summary.scalar("train/lr", state["lr"], step=epoch + 1)
        tb_writer.flush()
        improved = _better(score, state["best"], task.mode)
        if improved:
            _save(model, ckpt_dir / BEST)
        last = f"epoch-{epoch + 1:03d}.keras"
        _save(model, ckpt_dir / last)
        row = {"epoch": epoch + 1, **train_metrics, **{k: float(v) for k, v in val.items()}, "lr": state["lr"],
               "seconds": round(fit_s, 2)}
        previous = state["last"]
        state.update(epoch=epoch + 1, last=last, history=state["history"] + [row])
        note = ""
        if improved:
            state.update(best=float(score), best_epoch=epoch + 1, wait=0, plateau_wait=0)
        else:
            state["wait"] += 1
            state["plateau_wait"] += 1
            state["stopped_early"] = state["wait"] >= t.patience
            if t.plateau_patience and state["plateau_wait"] >= t.plateau_patience and state["lr"] > t.min_lr:
                state.update(lr=max(t.min_lr, state["lr"] * t.plateau_factor), plateau_wait=0)
                model.optimizer.learning_rate.assign(state["lr"])
                note = f"; learning rate now {state['lr']:.3g}"
        atomic_write_text(state_path, json.dumps(state, indent=2) + "\n")
        if previous and previous != last:
            (ckpt_dir / previous).unlink(missing_ok=True)
        _write_history(out, state["history"])
        log(f"epoch {epoch + 1}/{t.epochs}: loss {train_metrics['loss']:.4f}  {monitor} {score:.4f}"
            + ("  (best)" if improved else f"  (no gain for {state['wait']}{note})"))
        if on_epoch_end:
            on_epoch_end(epoch + 1)
    if state["stopped_early"]:
        log(f"early stop: no better {monitor} for {t.patience} epochs")

    best = load_run_model(out, "best", task=task.name)
    tested = task.test(best, size, out)
    card = {
        "task": task.name, **task.describe(), "train": to_dict(cfg)["train"],
        "pipeline": to_dict(cfg)["pipeline"],
        "data": json.loads((out / "data.json").read_text()),
        "strategy": described, "replicas": strategy.num_replicas_in_sync,
        "versions": versions(),
        "metrics": {f"best_{monitor}": state["best"], "best_epoch": state["best_epoch"],
                    "epochs_run": state["epoch"], "stopped_early": state["stopped_early"], **tested},
        "seconds_this_session": round(time.time() - t_start, 1),
        "first_epoch_seconds": first_epoch_s,
    }
    atomic_write_text(out / CARD_FILE, json.dumps(card, indent=2) + "\n")
    shown = "  ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in tested.items() if isinstance(v, float))
    log(f"{shown} (best epoch {state['best_epoch']}, {monitor} {state['best']:.4f})")
    return card


def evaluate(run_dir, split="test", which="best", data_dir=None, log=print):
    """Re-compute the AUC of a trained run on a split of its (or another prepared) data set."""
    cfg = load_run_config(run_dir)
    data_dir = data_dir or json.loads((Path(run_dir) / "data.json").read_text())["dir"]
    model = load_run_model(run_dir, which)
    labels, scores = predict_split(model, data_dir, split, batch_size=cfg.pipeline.batch_size,
                                   image_size=model.input_shape[1])
    auc = auc_score(labels, scores)
    log(f"{split} AUC {auc:.4f} ({len(labels)} images, {int(labels.sum())} positive; {which} checkpoint)")
    return {"split": split, "auc": auc, "n": int(len(labels)), "positives": int(labels.sum()), "checkpoint": which}
