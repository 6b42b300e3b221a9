"""`cxrsal train-baseline` and `cxrsal predict-baseline`: train a localization network, then
write what `cxrsal score` and `cxrsal compare` read.

A prediction folder (default RUN/predictions/<split>) holds
  maps/<image_id>.npy  float32 [S, S] at the model's input size: the U-Net's probability map, or
                       RetinaNet's box heatmap (each pixel: the best score > 0.01 of the boxes
                       covering it, docs/methods.md) -> `score --baselines seg:DIR`, `compare --baseline-maps`
  detections.csv       RetinaNet: patientId,x,y,width,height,score in original-image pixels
                       -> `score --baselines boxes:FILE`
  scores.csv           image_id,label,score: the image-level score (U-Net: mean of the cells above
                       0.5, [A]; RetinaNet: the best box score)
  predictions.json     what produced them; written last.
Every file is written atomically; a killed prediction pass is simply run again.
"""

import json
from pathlib import Path

import numpy as np

from ..errors import CxrsalError
from ..files import atomic_path, atomic_write_text, remove_stale_tmp, write_frame
from ..runs import TASKS, Run, Task

KINDS = ("unet", "retinanet")   # the tasks this package registers (unet.py, retinanet.py)
# what `cxrsal train-baseline` uses unless a config file or option says otherwise: [A]'s recipe
# (Adam 1e-4 is the train section's default), early stopping and reduce-on-plateau on the
# validation loss; class-balanced batches for the U-Net ([A]). Not for RetinaNet: its focal loss
# balances the anchors, and on synthetic RSNA balanced batches cut its AUPRC from 0.62 to 0.51
# (measured, benchmarks/baseline_utility.py settings)
TRAIN_DEFAULTS = {"pipeline.flip": True, "train.epochs": 50, "train.patience": 8, "train.plateau_patience": 3,
                  "train.plateau_factor": 0.1, "train.min_lr": 1e-6}
KIND_DEFAULTS = {"unet": {"pipeline.balanced": True}, "retinanet": {"pipeline.balanced": False}}


def train_defaults(kind):
    """The `base` layer of `load_config` for `cxrsal train-baseline KIND`."""
    return {**TRAIN_DEFAULTS, **KIND_DEFAULTS.get(kind, {})}


class BaselineTask(Task):
    """What the localization networks share in `fit.train`: early stopping on the validation
    loss, and the prediction folder as the test. Subclasses give `name`, `describe`, `build`,
    `dataset(split, size, epoch, steps)`, and for the prediction folder `predict(model, images,
    rows, masks)` -> (maps, image scores), `finish(out, split, metrics)`, `summary(metrics, split)`
    and `usage(folder)`."""

    monitor, mode = "val_loss", "min"

    def train_data(self, size, epoch):
        return self.dataset("train", size, epoch=epoch, steps=self.cfg.train.steps_per_epoch)

    def validate(self, model, size):
        return {"val_loss": float(model.evaluate(self.dataset("val", size), verbose=0, return_dict=True)["loss"])}

    def test(self, model, size, out):
        return predict_baseline(out, split=self.cfg.baseline.predict_split, model=model, log=lambda *_: None)


def make_task(cfg, data_dir):
    from ..data.manifest import SPLITS

    kind = cfg.baseline.kind
    if kind not in KINDS:
        raise CxrsalError(f"baseline.kind={kind!r}: valid choices: {', '.join(KINDS)}")
    if cfg.baseline.predict_split not in SPLITS:
        raise CxrsalError(f"baseline.predict_split={cfg.baseline.predict_split!r}: valid choices: {', '.join(SPLITS)}")
    return TASKS.get(kind)(cfg, data_dir)


def train_baseline(cfg, data_dir, out, *, log=print, verbose=1, on_epoch_end=None):
    """Train the baseline `cfg.baseline.kind` with the shared loop, then predict its split."""
    from ..training.fit import train

    return train(cfg, data_dir, out, log=log, verbose=verbose, on_epoch_end=on_epoch_end,
                 task=make_task(cfg, data_dir))


def _save_map(path, array):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array, np.float32))


def predict_baseline(run_dir, *, split=None, data_dir=None, out=None, which="best", model=None, log=print):
    """Write the prediction folder of a trained baseline run for `split` of `data_dir`
    (default: the run's own data); returns the split's image-level metrics."""
    import pandas as pd

    from ..data.manifest import read_manifest, split_rows
    from ..data.pipeline import PreparedSplit, load_batch
    from ..training.classifier import auc_interval, auc_score

    run = Run(run_dir)
    if run.kind not in KINDS:
        raise CxrsalError(f"--model {run.path}: a {run.kind} run, not a baseline ({' or '.join(KINDS)})")
    cfg = run.config
    split = split or cfg.baseline.predict_split
    data_dir = data_dir or run.checked_data()
    model = model or run.model(which)
    task = run.task(cfg, data_dir)
    size = model.input_shape[1]
    out = Path(out) if out else run.path / "predictions" / split
    maps_dir = out / "maps"
    maps_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out, recursive=True)
    (out / "predictions.json").unlink(missing_ok=True)

    rows = split_rows(read_manifest(data_dir), split)
    if not rows:
        raise CxrsalError(f"--data {data_dir}: split {split!r} is empty; nothing to predict")
    data = PreparedSplit(data_dir, split)
    batch = cfg.pipeline.batch_size
    scores = []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        images, _, masks = load_batch(data, [r["index"] for r in chunk], size)
        maps, image_scores = task.predict(model, images, chunk, masks)
        for r, m, s in zip(chunk, maps, image_scores):
            _save_map(maps_dir / f"{r['image_id']}.npy", m)
            scores.append(dict(image_id=r["image_id"], label=r["label"], score=float(s)))
        log(f"  {min(start + batch, len(rows))}/{len(rows)} images")
    table = pd.DataFrame(scores, columns=["image_id", "label", "score"])
    write_frame(out / "scores.csv", table)
    # the image-level AUC with its bootstrap interval, as a classifier's run card (Table 1)
    metrics = {f"{split}_auc": auc_score(table.label, table.score),
               f"{split}_auc_ci": auc_interval(table.label, table.score), f"{split}_images": len(rows)}
    task.finish(out, split, metrics)
    atomic_write_text(out / "predictions.json", json.dumps(
        {"model": str(run.path.resolve()), "kind": run.kind, "checkpoint": which, "data": str(data_dir),
         "split": split, "input_size": size, "metrics": metrics}, indent=2) + "\n")
    log(f"{run.kind} on {split}: AUC {metrics[f'{split}_auc']:.4f}, {task.summary(metrics, split)}")
    log(usage(task, out))
    return metrics


def usage(task, folder):
    """How `score` and `compare` take a prediction folder (printed after writing one)."""
    folder = Path(folder)
    use = task.usage(folder)
    return (f"score with: cxrsal score --maps MAPS --baselines avg,{use}\n"
            f"high baseline of compare: --baseline-maps {folder / 'maps'} <the other seed's maps>")
