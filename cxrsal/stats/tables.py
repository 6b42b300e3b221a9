"""[B]'s Table 1 from the run cards and the scores: per data set x backbone x head the run chosen
on validation, its test AUC and pointwise AP with their intervals, and the localization utility of
its maps; and the choices in force behind every result folder."""

import re
from pathlib import Path

import numpy as np

from ..experiments.score_baselines import score_baselines
from ..runs import read_card
from ..saliency.base import METHODS, is_control, ordered, study_methods
from .kinds.score import constant_counts, interval_cell, trained
from .sources import NO_DATA, UNKNOWN

def _natural(text):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text))]


def _metric(card, name):
    v = (card.get("metrics") or {}).get(name)
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else None


def chosen_runs(runs):
    """Per data set x backbone x head the run Table 1 reports: classifiers by best validation AUC
    (`metrics.best_val_auc`; never test), RetinaNets by lowest validation loss (`best_val_loss`).
    Models trained on permuted labels (the data randomization test) are never chosen.

    Returns
    -------
    list of dict
        dataset, backbone, head, run (directory name), selected by, val score, card.
    """
    cards = []
    for r in runs:
        card = read_card(r)
        if card is not None:
            cards.append(dict(card=card, run=Path(r).name, task=card.get("task", "classification"),
                              dataset=((card.get("data") or {}).get("manifest_sha256") or UNKNOWN)[:12],
                              backbone=card.get("arch", UNKNOWN), head=card.get("head", "classification")))
    # (card metric, label, sign): a higher sign * score is better
    rules = {"classification": ("best_val_auc", "best val AUC", 1.0),
             "retinanet": ("best_val_loss", "lowest val loss", -1.0)}
    chosen = {}
    for c in cards:
        if c["task"] not in rules:       # U-Nets and other localization networks: not Table 1 rows
            continue
        if c["card"].get("label_permuted"):   # the data randomization test's twin, not a candidate
            continue
        metric, label, sign = rules[c["task"]]
        head = c["head"] if c["task"] == "classification" else "retinanet"
        key = (c["dataset"], c["backbone"], head)
        score = _metric(c["card"], metric)
        prev = chosen.get(key)
        # a run without a validation score is chosen only when no run of its kind has one
        if prev is None or (score is not None and (prev["val score"] is None
                                                   or sign * score > sign * prev["val score"])):
            chosen[key] = dict(dataset=c["dataset"], backbone=c["backbone"], head=head, run=c["run"],
                               **{"selected by": label, "val score": score}, card=c["card"])
    head_order = {"classification": 0, "wildcat": 1, "retinanet": 9}
    return [chosen[k] for k in sorted(chosen, key=lambda k: (k[0], _natural(k[1]), head_order.get(k[2], 5), k[2]))]


def of_run(frame, run, dataset=None):
    """The rows of `frame` of run `run` (a directory name) on data set `dataset`: two data sets of
    one study may hold runs of the same name."""
    d = frame[frame.model.astype(str) == run]
    if dataset is not None and "dataset" in d.columns:
        d = d[d.dataset.astype(str) == dataset]
    return d


def pointwise_cell(pointwise, run, method, dataset=None):
    """A run's pointwise AP: its value (distinct values joined when scored more than once), marked
    when computed over positives only (no negatives, so no false positives from them: inflated)."""
    if pointwise.empty:
        return NO_DATA
    d = of_run(trained(pointwise), run, dataset)
    d = d[d.method == method].dropna(subset=["pointwise_ap"])
    if d.empty:
        return NO_DATA
    values = sorted({round(float(v), 9) for v in d.pointwise_ap})
    positives_only = "n_negative" in d.columns and bool((d.n_negative.fillna(-1) == 0).all())
    if len(values) == 1 and not positives_only:
        return values[0]
    return " / ".join(f"{v:.3f}" for v in values) + (" (positives only)" if positives_only else "")


NATIVE = {"classification": "gcam", "wildcat": "wildcat", "retinanet": "baseline:detector"}


def table1(runs, pointwise, scores=None):
    """[B] Table 1, AUC part: one row per data set x backbone x head (classification, wildcat,
    and the RetinaNet per backbone) for the run chosen by validation (`chosen_runs`).

    Columns: dataset, backbone, head, run, selected by, val score, test AUC (the run card's),
    pointwise AP (of its native maps: GradCAM for a classification head, the WILDCAT class map,
    the RetinaNet's best box centre), pointwise AP of (that method) and its constant maps among the
    images it ranked (from `scores`). The AUPRC part is `table1_utility`. Cells without data say
    "no data"; an AP computed over positives only says so.
    """
    import pandas as pd

    hits = scores[scores.metric == "pointwise_hit"] if scores is not None and len(scores) else pd.DataFrame()
    keys = ["dataset", "model", "method"] if "dataset" in hits.columns else ["model", "method"]
    flat = constant_counts(trained(hits), keys) if len(hits) else {}
    rows = []
    for c in chosen_runs(runs):
        test = _metric(c["card"], "test_auc")
        native = NATIVE.get(c["head"], "gcam")
        rows.append({"dataset": c["dataset"], "backbone": c["backbone"], "head": c["head"], "run": c["run"],
                     "selected by": c["selected by"],
                     "val score": c["val score"] if c["val score"] is not None else NO_DATA,
                     "test AUC": test if test is not None else NO_DATA,
                     "test AUC 95% CI": interval_cell((c["card"].get("metrics") or {}).get("test_auc_ci")),
                     "pointwise AP": pointwise_cell(pointwise, c["run"], native, c["dataset"]),
                     "pointwise AP 95% CI": _pointwise_ci_cell(pointwise, c["run"], native, c["dataset"]),
                     "pointwise AP of": native,
                     "constant maps": flat.get((c["dataset"], c["run"], native)[3 - len(keys):], NO_DATA)})
    return pd.DataFrame(rows, columns=["dataset", "backbone", "head", "run", "selected by", "val score", "test AUC",
                                       "test AUC 95% CI", "pointwise AP", "pointwise AP 95% CI", "pointwise AP of",
                                       "constant maps"])


def _pointwise_ci_cell(pointwise, run, method, dataset=None):
    if pointwise.empty or "ci_low" not in pointwise.columns:
        return NO_DATA
    d = of_run(trained(pointwise), run, dataset)
    d = d[d.method == method].dropna(subset=["ci_low", "ci_high"])
    return interval_cell([d.ci_low.iloc[0], d.ci_high.iloc[0]]) if len(d) == 1 else NO_DATA


# [B] Table 1's baseline columns, shown with or without scores; any other registered baseline with scores follows
B_BASELINES = ("baseline:avg", "baseline:detector")


def utility_columns(present=()):
    """Table 1's method columns (method -> column name): the study's methods always, any other
    registered method with scores, then [B]'s baselines and any other scored baseline (by its
    registered label)."""
    methods = ordered(set(study_methods()) | {m for m in present if m in METHODS})
    baselines = {b.method: b.label for b in score_baselines() if b.method in B_BASELINES or b.method in present}
    return {**{m: f"control: {m}" if is_control(m) else m for m in methods}, **baselines}


def table1_utility(runs, scores):
    """[B] Table 1, utility part: localization-utility AUPRC (mean over positive images) of each
    classifier run chosen by `chosen_runs`, per saliency method, the WILDCAT class map, the
    average mask and the RetinaNet heatmap (both baselines as scored beside that run's maps, so
    on the same images). "no data" where that run has no such score."""
    import pandas as pd

    auprc = trained(scores[scores.metric == "auprc"]) if not scores.empty else scores
    if len(auprc) and "label" in auprc.columns:
        auprc = auprc[auprc.label == 1]
    rows = []
    columns = utility_columns(set(auprc.method) if len(auprc) else ())
    for c in chosen_runs(runs):
        if c["head"] == "retinanet":
            continue
        d = of_run(auprc, c["run"], c["dataset"]) if len(auprc) else auprc
        row = {"dataset": c["dataset"], "backbone": c["backbone"], "head": c["head"], "run": c["run"],
               "positives": int(d.image_id.nunique()) if len(d) else 0}
        for method, column in columns.items():
            m = d[d.method == method] if len(d) else d
            # an image scored twice counts once
            row[column] = float(m.groupby("image_id").value.mean().mean()) if len(m) else NO_DATA
        flat = constant_counts(d[d.method.isin(list(METHODS.names()))], ["method"]) if len(d) else {}
        shown = [f"{m} {v}" for (m,), v in sorted(flat.items()) if not v.startswith("0 ")]
        row["constant maps"] = "; ".join(shown) or (f"0 of {row['positives']}" if flat else NO_DATA)
        rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "backbone", "head", "run", "positives", *columns.values(),
                                       "constant maps"])


def choices_table(infos):
    """One row per result folder x group x choice: folder, kind, dataset, group, key, value."""
    import pandas as pd

    rows = []
    for info in infos:
        for group in info["groups"]:
            for key, value in sorted(info["choices"].items()):
                rows.append(dict(folder=str(info["path"]), kind=info["kind"], dataset=info["dataset"], group=group,
                                 key=key, value=str(value)))
    return pd.DataFrame(rows, columns=["folder", "kind", "dataset", "group", "key", "value"])
