"""The training loop every task shares: validation each epoch, best/last checkpoints, early
stopping and reduce-on-plateau (`Monitor`), resume after a kill, the run card.

A run directory (`cxrsal.runs`) holds config.yaml, data.json, checkpoints/ (epoch-NNN.keras =
last, best.keras), state.json (what the next epoch needs; written after its checkpoint, so a
kill between the two only loses that epoch), history.csv, logs/ (TensorBoard) and run.json.
The task (`cxrsal.runs.TASKS`: the classifier of `cxrsal train`, the baselines' U-Net and
RetinaNet) says how to build, feed, validate and test its model.
"""

import csv
import io
import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from ..config import Config, to_dict, write_config
from ..errors import CxrsalError
from ..identity import describe, differences, flatten
from ..files import atomic_path, atomic_write_text, read_json, remove_stale_tmp
from ..runs import BEST, CARD_FILE, CKPT_DIR, DATA_FILE, HISTORY_FILE, STATE_FILE, Run, read_config
from .classifier import ClassificationTask
from .monitor import FIELDS as MONITOR_FIELDS
from .monitor import Monitor

# what a state.json must hold for a run to resume from it
STATE_KEYS = ("epoch", "last")


def versions():
    import keras
    import tensorflow as tf

    import cxrsal

    return {"cxrsal": cxrsal.__version__, "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "platform": platform.platform()}


def data_record(data_dir, summary):
    """A run's data.json: the prepared run it uses, its manifest's hash, dataset and size."""
    from ..data.manifest import manifest_hash

    return {"dir": str(Path(data_dir).resolve()), "manifest_sha256": manifest_hash(data_dir),
            "dataset": summary["dataset"], "size": summary["size"]}


def with_prepared_data(cfg, data_dir):
    """`cfg` with the `data:` section the prepared run was made with (its config.yaml), so that a
    model's config says which data it learnt from, not the defaults `cxrsal train` never used."""
    import dataclasses

    from ..config import load_config

    prepared = Path(data_dir) / "config.yaml"
    if not prepared.is_file():
        return cfg
    try:
        return dataclasses.replace(cfg, data=load_config(prepared).data)
    except CxrsalError:
        return cfg


def _check_resumable(out, cfg, data_dir, task):
    """A run directory continues only the same experiment."""
    if not (out / "config.yaml").exists() or not (out / STATE_FILE).exists():
        return      # nothing trained yet (a failed start may have left its config): start afresh
    run = Run(out, option="--out")
    if run.kind != task:
        raise CxrsalError(f"{out} holds a {run.kind} run, not {task}; use a new --out directory")
    # sections an older cxrsal did not write take their defaults
    old, new = to_dict(read_config(out, "--out")), to_dict(cfg)
    sections = ("model", "train", "pipeline", "baseline")
    diffs = differences(flatten({s: old.get(s) or {} for s in sections}), flatten({s: new[s] for s in sections}),
                        skip_missing=False)
    if diffs:
        raise CxrsalError(f"{out} holds a run trained with other settings: {describe(diffs)}; use a new --out "
                          "directory (or the same settings to resume it)")
    if run.data != str(Path(data_dir).resolve()):
        raise CxrsalError(f"{out} was trained on {run.data}, not {data_dir}")
    run.checked_data(data_dir)      # the manifest it trained on, unchanged since


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

    from ..data.prepare import check_prepared
    from .strategy import agree, choose_strategy, is_multi_worker, worker_dir

    t_start = time.time()
    task = task or ClassificationTask(cfg, data_dir)
    data_summary = check_prepared(data_dir)
    # first: a multi-worker strategy must exist before TensorFlow runs anything
    strategy, described = choose_strategy()
    if is_multi_worker(strategy) and not task.multi_worker:
        raise CxrsalError(f"{task.name} does not train on several workers (Keras 3 cannot evaluate a model under "
                          "MultiWorkerMirroredStrategy, keras-team/keras#20585): unset TF_CONFIG and train it on one "
                          "machine (its GPUs are used together)")
    out = worker_dir(out)
    _check_resumable(out, cfg, data_dir, task.name)
    state_path = out / STATE_FILE
    state = read_json(state_path, remedy=f"delete {out} to train again", keys=STATE_KEYS) \
        if state_path.exists() else None
    finished = state is not None and (out / CARD_FILE).exists()
    done = state["epoch"] if state else 0
    if is_multi_worker(strategy) and agree(strategy, {"epoch": done, "finished": finished}) != {
            "epoch": done, "finished": finished}:
        # a kill between the chief's and another worker's save of the same epoch: resumed apart,
        # they would wait for each other's steps forever
        raise CxrsalError(f"{out} is at epoch {done}{' (finished)' if finished else ''} but another worker of "
                          "TF_CONFIG is not: resume them all from the same epoch, or delete the run and its "
                          "OUT.worker-N twins to start again")
    if finished:
        # the card is the run's last write: this experiment is finished (the same settings,
        # checked above); a rerun returns it instead of testing the best checkpoint again
        log(f"already trained: {out / CARD_FILE}")
        return read_json(out / CARD_FILE, remedy="delete it to test the best checkpoint again")

    m, t = cfg.model, cfg.train
    keras.utils.set_random_seed(t.seed)
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    log(f"strategy: {described}")
    gpus = tf.config.list_physical_devices("GPU")
    if t.mixed_precision:
        if gpus:
            keras.mixed_precision.set_global_policy("mixed_float16")
        else:
            log("note: train.mixed_precision ignored on the CPU")

    size = m.input_size or data_summary["size"]
    fresh_model = None
    if not state:
        # built before anything is written: a setting the model refuses (an input too small for
        # the backbone, weights that cannot be found, ...) leaves no run folder behind
        with strategy.scope():
            fresh_model = task.build(size)
    created = not out.exists()
    try:
        write_config(with_prepared_data(cfg, data_dir), out)
        atomic_write_text(out / DATA_FILE, json.dumps(data_record(data_dir, data_summary), indent=2) + "\n")
        ckpt_dir = out / CKPT_DIR
        ckpt_dir.mkdir(exist_ok=True)
        remove_stale_tmp(out, recursive=True)
        return _train_loop(task, cfg, data_dir, out, state, fresh_model, strategy, described, size, t_start,
                           log=log, verbose=verbose, on_epoch_end=on_epoch_end)
    except BaseException:
        # a run that failed before its first epoch was saved leaves nothing: its folder was ours
        if created and not state_path.exists():
            shutil.rmtree(out, ignore_errors=True)
        raise


def _train_loop(task, cfg, data_dir, out, state, fresh_model, strategy, described, size, t_start, *, log, verbose,
                on_epoch_end):
    """The epochs of `train` (its run folder written, the model of a fresh run built)."""
    import tensorflow as tf

    from .strategy import agree, epoch_runner, sync_states

    t = cfg.train
    state_path, ckpt_dir = out / STATE_FILE, out / CKPT_DIR
    monitor = task.monitor
    if state and "best" not in state:   # a classifier run of cxrsal 0.1 (before tasks)
        state.update(task="classification", monitor="val_auc", lr=float(t.lr), plateau_wait=0,
                     best=state["best_auc"] if state.get("best_auc", -1.0) >= 0 else None)
    watch = Monitor(task.mode, t.patience, lr=t.lr, plateau_patience=t.plateau_patience,
                    plateau_factor=t.plateau_factor, min_lr=t.min_lr,
                    state={k: state[k] for k in MONITOR_FIELDS} if state else None)
    with strategy.scope():
        if state:
            model = Run(out, option="--out").expect(task.name).model("last", compile=True)
            model.optimizer.learning_rate.assign(state["lr"])
            best = "none yet" if state["best"] is None else f"{state['best']:.4f}"
            log(f"resuming after epoch {state['epoch']} (best {monitor} {best} at epoch {state['best_epoch']})")
        else:
            model = fresh_model
            state = {"task": task.name, "monitor": monitor, "epoch": 0, "last": None, "history": [], **watch.state}
    # TensorBoard scalars written once per epoch here: Keras' TensorBoard callback costs a
    # noticeable share of a small model's training time (`python benchmarks/training.py`)
    tb_writer = tf.summary.create_file_writer(str(out / "logs"))
    run_epoch = epoch_runner(model, strategy, batch_size=cfg.pipeline.batch_size, log=log)

    first_epoch_s = None
    while state["epoch"] < t.epochs and not state["stopped_early"]:
        epoch = state["epoch"]
        train_ds = task.train_data(size, epoch)
        t0 = time.time()
        logs = run_epoch(train_ds, epoch, t.steps_per_epoch or None, verbose)
        sync_states(model, strategy)
        fit_s = time.time() - t0
        first_epoch_s = fit_s if first_epoch_s is None else first_epoch_s
        val = agree(strategy, task.validate(model, size))
        score = val[monitor]
        train_metrics = {"loss": logs["loss"], **logs}      # the loss first
        lr = state["lr"]
        with tb_writer.as_default():
            for key, value in train_metrics.items():
                tf.summary.scalar(f"train/{key}", value, step=epoch + 1)
            for key, value in val.items():
                tf.summary.scalar(f"val/{key.removeprefix('val_')}", value, step=epoch + 1)
            tf.summary.scalar("train/lr", lr, step=epoch + 1)
        tb_writer.flush()
        improved, new_lr = watch.update(epoch + 1, score)
        last = f"epoch-{epoch + 1:03d}.keras"
        _save(model, ckpt_dir / last)
        if improved:
            # the same bytes: a file copy instead of a second save, which costs far more
            with atomic_path(ckpt_dir / BEST) as tmp:
                shutil.copyfile(ckpt_dir / last, tmp)
        row = {"epoch": epoch + 1, **train_metrics, **{k: float(v) for k, v in val.items()}, "lr": lr,
               "seconds": round(fit_s, 2)}
        previous = state["last"]
        state.update(epoch=epoch + 1, last=last, history=state["history"] + [row], **watch.state)
        note = ""
        if task.fitted(val):
            state.update(stopped_early=True, fitted=True)
        if new_lr is not None:
            model.optimizer.learning_rate.assign(new_lr)
            note = f"; learning rate now {new_lr:.3g}"
        atomic_write_text(state_path, json.dumps(state, indent=2) + "\n")
        if previous and previous != last:
            (ckpt_dir / previous).unlink(missing_ok=True)
        _write_history(out, state["history"])
        log(f"epoch {epoch + 1}/{t.epochs}: loss {train_metrics['loss']:.4f}  {monitor} {score:.4f}"
            + ("  (best)" if improved else f"  (no gain for {state['wait']}{note})"))
        if on_epoch_end:
            on_epoch_end(epoch + 1)
    if state.get("fitted"):
        log(f"stopped: {monitor} {state['history'][-1][monitor]:.4f} reached train.fit_auc {t.fit_auc}")
    elif state["stopped_early"]:
        log(f"early stop: no better {monitor} for {t.patience} epochs")

    best = Run(out, option="--out").model("best")
    tested = task.test(best, size, out)
    card = {
        "task": task.name, **task.describe(), "train": to_dict(cfg)["train"],
        "pipeline": to_dict(cfg)["pipeline"],
        "data": read_json(out / DATA_FILE),
        "strategy": described, "replicas": strategy.num_replicas_in_sync,
        "versions": versions(),
        "metrics": {f"best_{monitor}": state["best"], "best_epoch": state["best_epoch"],
                    "epochs_run": state["epoch"], "stopped_early": state["stopped_early"], **tested},
        "seconds_this_session": round(time.time() - t_start, 1),
        "first_epoch_seconds": first_epoch_s,
    }
    atomic_write_text(out / CARD_FILE, json.dumps(card, indent=2) + "\n")
    shown = "  ".join(f"{k.replace('_', ' ')} {v:.4f}" + (" [{:.4f}, {:.4f}]".format(*tested[k + "_ci"])
                                                          if k + "_ci" in tested else "")
                      for k, v in tested.items() if isinstance(v, float))
    log(f"{shown} (best epoch {state['best_epoch']}, {monitor} {state['best']:.4f})")
    return card
