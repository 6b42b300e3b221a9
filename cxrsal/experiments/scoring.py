"""`cxrsal score`: per-image tidy table of localization utility and pointwise detection.

One row per image x model x method x step x metric. Utility (AUPRC, trapezoid AUPRC, AUROC)
is defined for positives only; pointwise hits for every image; the summary gives mean and sd
per method and metric, and pointwise detection AP per method.
"""

import csv
import json
from pathlib import Path

import numpy as np

from ..errors import CxrsalError
from ..io import atomic_write_text, write_frame

UTILITY = ("auprc", "auprc_trapezoid", "auroc")


def utility(mask, smap):
    from ..metrics import auprc_score, auroc_score

    out = {"auprc": auprc_score(mask, smap), "auprc_trapezoid": auprc_score(mask, smap, method="trapezoid")}
    out["auroc"] = auroc_score(mask, smap) if not np.asarray(mask).all() else float("nan")
    return out


def parse_baselines(text):
    """`avg,boxes:FILE,seg:DIR` -> [("avg", None), ("boxes", FILE), ("seg", DIR)]."""
    out = []
    for part in [p.strip() for p in (text or "").split(",") if p.strip()]:
        kind, _, arg = part.partition(":")
        if kind not in ("avg", "boxes", "seg") or (kind != "avg" and not arg):
            raise CxrsalError(f"--baselines {part!r}: use avg, boxes:FILE (patientId,x,y,width,height,score) "
                              "or seg:DIR (one probability map per image)")
        if kind != "avg" and not Path(arg).exists():
            raise CxrsalError(f"--baselines {part}: {arg} does not exist")
        out.append((kind, arg or None))
    return out


def read_detections(path):
    """patientId -> (boxes, scores) from a detector's CSV (any row order, any number per image)."""
    det = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        need = {"patientId", "x", "y", "width", "height", "score"}
        if not need <= set(h.strip() for h in (reader.fieldnames or [])):
            raise CxrsalError(f"{path}: header must hold {', '.join(sorted(need))}; found {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items()}
            try:
                box = tuple(float(row[k]) for k in ("x", "y", "width", "height"))
                score = float(row["score"])
            except ValueError:
                raise CxrsalError(f"{path} line {line}: x, y, width, height and score must be numbers") from None
            b, s = det.setdefault(row["patientId"], ([], []))
            b.append(box)
            s.append(score)
    return det


def read_probability_map(folder, image_id, size):
    """A segmentation network's probability map <image_id>.npy or .png, resized to `size`."""
    import cv2

    folder = Path(folder)
    if (folder / f"{image_id}.npy").exists():
        m = np.load(folder / f"{image_id}.npy").astype(np.float32)
    elif (folder / f"{image_id}.png").exists():
        m = cv2.imread(str(folder / f"{image_id}.png"), cv2.IMREAD_UNCHANGED).astype(np.float32)
        m /= 65535.0 if m.max() > 255 else 255.0
    else:
        raise CxrsalError(f"seg:{folder}: no {image_id}.npy or .png")
    m = np.squeeze(m)
    if m.ndim != 2:
        raise CxrsalError(f"seg:{folder}/{image_id}: expected a 2-D probability map, got shape {m.shape}")
    return cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR) if m.shape != (size, size) else m


def truth_masks(data_dir, data, rows, size):
    """image_id -> ground-truth mask at the maps' size: RSNA boxes drawn at that size from their
    original coordinates (exact at any size); SIIM masks as prepared, resized when needed."""
    from ..data import boxes_to_mask
    from ..data.manifest import parse_boxes
    from ..data.pipeline import load_batch
    from ..data.prepare import check_prepared

    if check_prepared(data_dir)["dataset"] == "rsna":
        return {r["image_id"]: boxes_to_mask(parse_boxes(r["boxes"]), size, (r["height"], r["width"])) for r in rows}
    masks = load_batch(data, [r["index"] for r in rows], size)[2]
    return {r["image_id"]: m[..., 0] > 0 for r, m in zip(rows, masks)}


def score_store(store_path, out, *, data_dir=None, baselines="", model_name=None, step="trained", log=print):
    """Score every map of a store (and the baselines) against the ground truth; returns the table."""
    import pandas as pd

    from ..data.manifest import parse_boxes, read_manifest
    from ..data.pipeline import PreparedSplit, load_batch
    from ..metrics import average_mask, box_heatmap, pointwise_average_precision, pointwise_hits
    from ..saliency.store import MapStore

    store = MapStore(store_path)
    meta = store.meta
    data_dir = data_dir or meta["data"]
    split, size = meta["split"], meta["input_size"]
    model_name = model_name or Path(meta["model"]).name
    manifest = read_manifest(data_dir)
    rows = {r["image_id"]: r for r in manifest if r["split"] == split}
    missing = [i for i in meta["image_ids"] if i not in rows]
    if missing:
        raise CxrsalError(f"--data {data_dir}: image {missing[0]} of the store is not in its {split} split")
    data = PreparedSplit(data_dir, split)
    ids = meta["image_ids"]
    masks = truth_masks(data_dir, data, [rows[i] for i in ids], size)
    boxes = {i: [tuple(v * size / (rows[i]["width"] if k % 2 == 0 else rows[i]["height"])
                       for k, v in enumerate(b)) for b in parse_boxes(rows[i]["boxes"])] for i in ids}

    records, pointwise = [], []

    def add(image_id, method, metrics, **extra):
        for metric, value in metrics.items():
            records.append(dict(image_id=image_id, model=model_name, method=method, step=step, metric=metric,
                                value=value, label=rows[image_id]["label"], **extra))

    for method in store.methods():
        stored = store.ids(method)
        hits_in, scores, labs = [], [], []
        for image_id in stored:
            d = store.load(method, image_id, quantized=True)
            if rows[image_id]["label"] == 1:
                add(image_id, method, utility(masks[image_id], d["processed"]), constant=d["constant"])
            grid = d.get("native", d["processed"])
            if boxes[image_id]:
                hit = bool(pointwise_hits([grid], [boxes[image_id]], size)[0])
            else:   # SIIM: no boxes; the arg-max cell centre inside the mask
                i, j = np.unravel_index(np.argmax(grid), grid.shape)
                cy, cx = int((i + 0.5) * size / grid.shape[0]), int((j + 0.5) * size / grid.shape[1])
                hit = bool(masks[image_id][min(cy, size - 1), min(cx, size - 1)])
            add(image_id, method, {"pointwise_hit": float(hit and rows[image_id]["label"] == 1)},
                constant=d["constant"])
            hits_in.append(hit)
            scores.append(d["logit"])
            labs.append(rows[image_id]["label"])
        if any(labs):
            pointwise.append(dict(model=model_name, method=method, step=step, n=len(labs),
                                  pointwise_ap=pointwise_average_precision(labs, scores, hits_in)))

    positives = [i for i in ids if rows[i]["label"] == 1]
    for kind, arg in parse_baselines(baselines):
        if kind == "avg":
            base = []
            for s in ("train", "val"):
                d = PreparedSplit(data_dir, s)
                pos = np.flatnonzero(d.labels == 1)
                if len(pos):
                    base.append(load_batch(d, pos, size)[2][..., 0])
            if not base:
                raise CxrsalError(f"--baselines avg: no positive train/val images in {data_dir}")
            avg = average_mask(np.concatenate(base))
            for i in positives:
                add(i, "baseline:avg", utility(masks[i], avg), constant=False)
        elif kind == "boxes":
            det = read_detections(arg)
            for i in positives:
                b, s = det.get(i, ([], []))
                heat = box_heatmap(b, s, (size, size), original_size=(rows[i]["height"], rows[i]["width"]))
                add(i, "baseline:detector", utility(masks[i], heat), constant=not heat.any())
        else:
            for i in positives:
                add(i, "baseline:segmentation", utility(masks[i], read_probability_map(arg, i, size)),
                    constant=False)

    if not records:
        raise CxrsalError(f"--maps {store_path}: the store holds no maps")
    table = pd.DataFrame.from_records(records)
    summary = (table[table.metric.isin(UTILITY)].groupby(["model", "method", "step", "metric"])["value"]
               .agg(["mean", "std", "count"]).reset_index())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_frame(out / "scores.csv", table)
    write_frame(out / "scores.parquet", table)
    write_frame(out / "summary.csv", summary)
    write_frame(out / "pointwise.csv", pd.DataFrame(pointwise))
    atomic_write_text(out / "score.json", json.dumps({"maps": str(Path(store_path).resolve()), "data": data_dir,
                                                      "baselines": baselines, "model": model_name}, indent=2) + "\n")
    for r in summary[summary.metric == "auprc"].itertuples():
        log(f"{r.method:<22} AUPRC {r.mean:.3f} +/- {0 if np.isnan(r.std) else r.std:.3f}  (n={r.count})")
    for p in pointwise:
        log(f"{p['method']:<22} pointwise AP {p['pointwise_ap']:.3f}")
    return table
