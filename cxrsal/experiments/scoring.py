"""`cxrsal score`: per-image tidy table of localization utility and pointwise detection.

One row per image x model x method x step x metric. Utility (AUPRC, trapezoid AUPRC, AUROC)
is defined for positives only; pointwise hits for every image; the summary gives mean and sd
per method and metric, and pointwise detection AP per method.
"""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from ..config import ConfigError, write_config
from ..errors import CxrsalError
from ..geometry import resize_map, scale_boxes
from ..io import UNREADABLE, atomic_write_text, remove_stale_tmp, write_frame

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
        try:
            m = np.load(folder / f"{image_id}.npy", allow_pickle=False).astype(np.float32)
        except UNREADABLE as e:
            raise CxrsalError(f"seg:{folder}/{image_id}.npy: not a readable NumPy array ({e})") from None
    elif (folder / f"{image_id}.png").exists():
        m = cv2.imread(str(folder / f"{image_id}.png"), cv2.IMREAD_UNCHANGED)
        if m is None:
            raise CxrsalError(f"seg:{folder}/{image_id}.png: not a readable image")
        m = m.astype(np.float32)
        m /= 65535.0 if m.max() > 255 else 255.0
    else:
        raise CxrsalError(f"seg:{folder}: no {image_id}.npy or .png")
    m = np.squeeze(m)
    if m.ndim != 2:
        raise CxrsalError(f"seg:{folder}/{image_id}: expected a 2-D probability map, got shape {m.shape}")
    return resize_map(m, size)


def truth_masks(data_dir, data, rows, size):
    """image_id -> ground-truth mask at the maps' size: boxes (RSNA, a folder's boxes.csv, COCO
    boxes) drawn at that size from their original coordinates (exact at any size); masks (SIIM,
    a folder's masks/, COCO segmentations) as prepared, resized when needed."""
    from ..data import boxes_to_mask
    from ..data.manifest import parse_boxes
    from ..data.pipeline import load_batch
    from ..data.prepare import annotation_of, check_prepared

    if annotation_of(check_prepared(data_dir)) == "boxes":
        return {r["image_id"]: boxes_to_mask(parse_boxes(r["boxes"]), size, (r["height"], r["width"])) for r in rows}
    masks = load_batch(data, [r["index"] for r in rows], size)[2]
    return {r["image_id"]: m[..., 0] > 0 for r, m in zip(rows, masks)}


def _detector_name(path):
    """The RetinaNet run a detections CSV belongs to (RUN/predictions/SPLIT/detections.csv), or
    the CSV's own name."""
    path = Path(path).resolve()
    return path.parents[2].name if (path.parent / "predictions.json").exists() else path.stem


def score_store(store_path, out, *, data_dir=None, baselines=None, model_name=None, step="trained", cfg=None,
                parts=None, log=print, progress=False):
    """Score every map of a store (and the baselines) against the ground truth; returns the table.

    Utility on the positive images; pointwise detection ([B]) on every image of the store,
    ranked by the model's logit, negatives included (a store of positives only has no false
    positives from negatives: the AP is written with n_negative = 0 and a warning). Cells of
    the maps that come from the feature grid (GradCAM, WILDCAT) are placed by
    `cfg.pointwise.centres`: their receptive-field centres (default) or [B]'s grid. `parts`:
    which of utility and pointwise detection to score (e.g. pointwise alone for a store of
    every test image whose positives are scored for utility elsewhere)."""
    import pandas as pd

    from ..config import Config
    from ..data.manifest import read_manifest
    from ..data.pipeline import PreparedSplit, load_batch
    from ..metrics import argmax_points, average_mask, box_heatmap, pointwise_average_precision, pointwise_hits
    from ..saliency.base import METHODS
    from ..saliency.store import MapStore
    from .provenance import result_meta

    cfg = cfg or Config()
    # `baselines` and `parts` given here override the config's `score:` section; the settings
    # used are written into OUT/config.yaml
    try:
        cfg = dataclasses.replace(cfg, score=dataclasses.replace(
            cfg.score, baselines=cfg.score.baselines if baselines is None else baselines,
            parts=cfg.score.parts if parts is None else tuple(parts)))
    except ConfigError as e:
        raise CxrsalError(str(e).replace("score.parts", "score parts")) from None
    baselines, parts = cfg.score.baselines, cfg.score.parts
    pw = cfg.pointwise
    do_utility, do_pointwise = "utility" in parts, "pointwise" in parts
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
    boxes = {i: scaled_boxes(rows[i], size) for i in ids}
    geometry = meta.get("geometry") if pw.centres == "receptive-field" else None
    if pw.centres == "receptive-field" and geometry is None:
        log(f"{store_path}: the store does not record its model's cell geometry (made before cxrsal 0.3); "
            "pointwise cells placed on the grid")

    def hits_of(points, image_ids, truth=masks):
        """A point inside a box (RSNA) or on the mask (SIIM, no boxes) of a positive image."""
        return list(pointwise_hits(points, [rows[i]["label"] for i in image_ids],
                                   [boxes[i] if i in boxes else scaled_boxes(rows[i], size) for i in image_ids],
                                   [truth.get(i) for i in image_ids], tolerance=pw.tolerance))

    records, pointwise = [], []

    def add(image_id, method, metrics, **extra):
        for metric, value in metrics.items():
            records.append(dict(image_id=image_id, model=model_name, method=method, step=step, metric=metric,
                                value=value, label=rows[image_id]["label"], **extra))

    def add_pointwise(model, method, labels, scores, hits, centres):
        if any(labels):
            n_neg = int(len(labels) - sum(labels))
            pointwise.append(dict(model=model, method=method, step=step, n=len(labels), n_negative=n_neg,
                                  pointwise_ap=pointwise_average_precision(labels, scores, hits), centres=centres))

    from tqdm import tqdm

    logits = {}
    methods = store.methods()
    # a bar with rate and ETA on a terminal (progress=None), none in a log or a pipe
    bar = tqdm(total=sum(len(store.ids(m)) for m in methods), desc="score", unit="map",
               disable=None if progress else True)
    for method in methods:
        stored = store.ids(method)
        on_grid = geometry is not None and getattr(METHODS.get(method), "grid", False)
        grids, scores, labs, constant = [], [], [], []
        for image_id in stored:
            d = store.load(method, image_id, quantized=True)
            if do_utility and rows[image_id]["label"] == 1:
                add(image_id, method, utility(masks[image_id], d["processed"]), constant=d["constant"])
            grids.append(d.get("native", d["processed"]))
            scores.append(d["logit"])
            labs.append(rows[image_id]["label"])
            constant.append(d["constant"])
            logits[image_id] = d["logit"]
            bar.update()
        if not do_pointwise:
            continue
        points = argmax_points(grids, size, geometry=geometry if on_grid else None)
        hits = hits_of(points, stored)
        for image_id, hit, flat in zip(stored, hits, constant):
            add(image_id, method, {"pointwise_hit": float(hit)}, constant=flat)
        add_pointwise(model_name, method, labs, scores, hits, "receptive-field" if on_grid else "grid")

    bar.close()
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
            for i in positives if do_utility else ():
                add(i, "baseline:avg", utility(masks[i], avg), constant=False)
            # pointwise: the same point (the average mask's peak) for every image, ranked by the
            # model's logit -- what a detector that knows only where disease usually is scores
            scored = [i for i in ids if i in logits and do_pointwise]
            hits = hits_of(argmax_points([avg] * len(scored), size), scored)
            add_pointwise(model_name, "baseline:avg", [rows[i]["label"] for i in scored],
                          [logits[i] for i in scored], hits, "grid")
        elif kind == "boxes":
            det = read_detections(arg)
            for i in positives if do_utility else ():
                b, s = det.get(i, ([], []))
                heat = box_heatmap(b, s, (size, size), original_size=(rows[i]["height"], rows[i]["width"]))
                add(i, "baseline:detector", utility(masks[i], heat), constant=not heat.any())
            # [B]'s RetinaNet row: its best box's centre per image, over every image of the split
            # (an image without a box ranks last), ranked by that box's score
            seen = list(rows) if do_pointwise else []
            if not seen:
                continue
            best, points = [], []
            for i in seen:
                b, s = det.get(i, ([], []))
                if not s:
                    best.append(-np.inf)
                    points.append((np.nan, np.nan))
                    continue
                k = int(np.argmax(s))
                x, y, w, h = scale_boxes([b[k]], (rows[i]["height"], rows[i]["width"]), size)[0]
                best.append(s[k])
                points.append((y + h / 2, x + w / 2))
            truth = truth_masks(data_dir, data, [rows[i] for i in seen], size)
            add_pointwise(_detector_name(arg), "baseline:detector", [rows[i]["label"] for i in seen], best,
                          hits_of(points, seen, truth), "box centre")
        else:
            for i in positives if do_utility else ():
                add(i, "baseline:segmentation", utility(masks[i], read_probability_map(arg, i, size)),
                    constant=False)

    if not records:
        raise CxrsalError(f"--maps {store_path}: the store holds no maps")
    table = pd.DataFrame.from_records(records)
    summary = (table[table.metric.isin(UTILITY)].groupby(["model", "method", "step", "metric"])["value"]
               .agg(["mean", "std", "count"]).reset_index())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)
    write_frame(out / "scores.csv", table)
    write_frame(out / "scores.parquet", table)
    write_frame(out / "summary.csv", summary)
    write_frame(out / "pointwise.csv", pd.DataFrame(pointwise, columns=["model", "method", "step", "n", "n_negative",
                                                                        "pointwise_ap", "centres"]))
    write_config(cfg, out)
    model_dir = Path(meta["model"])
    provenance = result_meta([model_dir], cfg) if model_dir.exists() else {"choices": cfg.choices()}
    atomic_write_text(out / "score.json", json.dumps({"maps": str(Path(store_path).resolve()), "data": data_dir,
                                                      "baselines": baselines, "model": model_name, **provenance,
                                                      "input_channels": meta.get("input_channels")},
                                                     indent=2) + "\n")
    for r in summary[summary.metric == "auprc"].itertuples():
        log(f"{r.method:<22} AUPRC {r.mean:.3f} +/- {0 if np.isnan(r.std) else r.std:.3f}  (n={r.count})")
    for p in pointwise:
        note = "  (positives only: no false positives from negatives, AP inflated)" if p["n_negative"] == 0 else ""
        log(f"{p['method']:<22} pointwise AP {p['pointwise_ap']:.3f}  ({p['n']} images, {p['centres']}){note}")
    return table


def scaled_boxes(row, size):
    """A manifest row's boxes (original pixels) in pixels of a `size` x `size` map."""
    from ..data.manifest import parse_boxes

    return scale_boxes(parse_boxes(row["boxes"]), (row["height"], row["width"]), size)
