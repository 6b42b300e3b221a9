"""`cxrsal score`: per-image tidy table of localization utility and pointwise detection.

One row per image x model x method x step x metric. Utility (AUPRC, trapezoid AUPRC, AUROC,
and CheXlocalize's pointing-game hit and IoU) is defined for positives only; pointwise hits
for every image; the summary gives mean, sd and a bootstrap interval per method and metric,
and pointwise detection AP (with its interval) per method.
"""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from ..config import baseline_parts, checked, write_config
from ..errors import CxrsalError
from ..resizing import resize_map, scale_boxes
from ..files import UNREADABLE, atomic_write_text, remove_stale_tmp, write_frame
from ..metrics import (argmax_points, auprc_score, auroc_score, average_mask, bootstrap_ap_ci,
                       box_heatmap, iou_score, pointing_hit, pointwise_average_precision, pointwise_hits,
                       tune_threshold)

# the per-image metrics of the positives, summarized (mean, sd, interval) per method
UTILITY = ("auprc", "auprc_trapezoid", "auroc", "hit", "iou")
SUMMARY_KEYS = ["model", "method", "step", "metric"]
THRESHOLD_COLUMNS = ["method", "threshold", "val_miou", "n_val"]
NO_IOU = ("mIoU not scored: it needs --validation STORE, maps of the same model on the validation split "
          "(`cxrsal saliency --split val`), where each method's threshold is tuned; never on the test images scored")


def utility(mask, smap):
    """AUPRC (both rules), AUROC and the pointing game's hit of one map of a positive image."""
    out = {"auprc": auprc_score(mask, smap), "auprc_trapezoid": auprc_score(mask, smap, method="trapezoid")}
    out["auroc"] = auroc_score(mask, smap) if not np.asarray(mask).all() else float("nan")
    out["hit"] = float(pointing_hit(mask, smap))
    return out


def parse_baselines(text):
    """`avg,boxes:FILE,seg:DIR` -> [("avg", None), ("boxes", FILE), ("seg", DIR)]."""
    parts = baseline_parts(text)
    if parts is None:
        raise CxrsalError(f"--baselines {text!r}: use avg, boxes:FILE (patientId,x,y,width,height,score) or seg:DIR "
                          "(one probability map per image), comma separated")
    for kind, arg in parts:
        if arg is not None and not Path(arg).exists():
            raise CxrsalError(f"--baselines {kind}:{arg}: {arg} does not exist")
    return parts


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
            except (TypeError, ValueError):
                raise CxrsalError(f"{path} line {line}: x, y, width, height and score must be numbers") from None
            if not np.isfinite([*box, score]).all() or box[2] < 0 or box[3] < 0 or not 0 <= score <= 1:
                raise CxrsalError(f"{path} line {line}: a box needs finite x, y, a width and height >= 0 and a score "
                                  "in [0, 1]; write the file again (`cxrsal predict-baseline`)")
            b, s = det.setdefault(row["patientId"], ([], []))
            b.append(box)
            s.append(score)
    return det


def read_probability_map(folder, image_id, size=None, *, where="seg:"):
    """A segmentation network's probability map <image_id>.npy or .png, resized to `size` (None:
    as stored); `where` prefixes the folder in an error (the option it came from)."""
    import cv2

    folder = Path(folder)
    name = f"{where}{folder}/{image_id}"
    if (folder / f"{image_id}.npy").exists():
        try:
            m = np.load(folder / f"{image_id}.npy", allow_pickle=False).astype(np.float32)
        except UNREADABLE as e:
            raise CxrsalError(f"{name}.npy: not a readable NumPy array ({e})") from None
    elif (folder / f"{image_id}.png").exists():
        m = cv2.imread(str(folder / f"{image_id}.png"), cv2.IMREAD_UNCHANGED)
        if m is None:
            raise CxrsalError(f"{name}.png: not a readable image")
        m = m.astype(np.float32)
        m /= 65535.0 if m.max() > 255 else 255.0
    else:
        raise CxrsalError(f"{where}{folder}: no {image_id}.npy or .png")
    m = np.squeeze(m)
    if m.ndim != 2 or min(m.shape) < 1:
        raise CxrsalError(f"{name}: expected a 2-D probability map, got shape {m.shape}; write the folder again "
                          "(`cxrsal predict-baseline`)")
    if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise CxrsalError(f"{name}: a probability map holds values outside [0, 1] (or NaN); write the folder again "
                          "(`cxrsal predict-baseline`)")
    return m if size is None else resize_map(m, size)


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


def validation_thresholds(validation, store, manifest, data_dir, methods, *, log=print):
    """Each method's IoU threshold tuned on a map store of the validation split, as CheXlocalize
    (Saporta et al. 2022): the threshold maximizing the mean IoU over the validation positives
    (`tune_threshold`), applied to the images scored. Returns ({method: threshold}, rows of
    thresholds.csv).

    `validation` must hold maps of the validation split (never test) of the same model (weights
    digest), prepared data, input size and channels as `store`, each method made with the same
    parameters (its noise seed aside); anything else is refused. A method `validation` lacks, or
    holds no positive image of, gets no threshold, and the log says so."""
    from ..data.pipeline import PreparedSplit
    from ..saliency.store import MapStore

    opt = f"--validation {validation}"
    vstore = MapStore(validation)
    if not (vstore.path / "store.json").exists():
        raise CxrsalError(f"{opt}: not a map store (no store.json); make one with `cxrsal saliency --split val`")
    meta, vmeta = store.meta, vstore.meta
    split = vmeta.get("split")
    if split == "test":
        raise CxrsalError(f"{opt}: its maps are of the test split; the IoU threshold is tuned on the validation "
                          "split, never on test (`cxrsal saliency --split val`)")
    if split != "val" or split == meta.get("split"):
        raise CxrsalError(f"{opt}: its maps are of the {split} split; the IoU threshold is tuned on the validation "
                          f"split, scored on another (--maps is of the {meta.get('split')} split)")
    mine, theirs = store.identity(), vstore.identity()
    if mine["weights"] is None or theirs["weights"] is None:
        raise CxrsalError(f"{opt}: --maps or --validation does not record its model's weights digest (an old "
                          "store): cannot check that both hold maps of one model")
    for key, what in (("weights", "model (weights digest)"), ("data", "prepared data"),
                      ("input_size", "input size"), ("input_channels", "input channels")):
        a, b = mine[key], theirs[key]
        if key == "data":
            a, b = Path(a).resolve(), Path(b).resolve()
        if a != b:
            raise CxrsalError(f"{opt}: its maps are of another {what} than --maps {store.path}; tune the "
                              "threshold on the same model's maps of the validation split")
    rows = {r["image_id"]: r for r in manifest if r["split"] == split}
    missing = [i for i in vmeta["image_ids"] if i not in rows]
    if missing:
        raise CxrsalError(f"{opt}: image {missing[0]} of the store is not in the {split} split of {data_dir}")
    # the parameters that make a method's maps (not its noise seed nor the library versions)
    made = {"method", "params", "target"}
    held, positives = set(vstore.methods()), {}
    for method in methods:
        if method not in held:
            log(f"{method}: no maps in {opt}; no mIoU")
            continue
        a = {k: v for k, v in store.params(method).items() if k in made}
        b = {k: v for k, v in vstore.params(method).items() if k in made}
        if a != b:
            raise CxrsalError(f"{opt}: its {method} maps were made with {b.get('params')} (target "
                              f"{b.get('target')}), those scored with {a.get('params')} (target {a.get('target')})")
        positives[method] = [i for i in vstore.ids(method) if rows[i]["label"] == 1]
        if not positives[method]:
            log(f"{method}: no positive image in {opt}; no mIoU")
            del positives[method]
    needed = sorted({i for ids in positives.values() for i in ids})
    masks = truth_masks(data_dir, PreparedSplit(data_dir, split), [rows[i] for i in needed],
                        vmeta["input_size"]) if needed else {}
    thresholds, table = {}, []
    for method, ids in positives.items():
        t, miou = tune_threshold([masks[i] for i in ids], [vstore.load(method, i)["processed"] for i in ids])
        thresholds[method] = t
        table.append(dict(method=method, threshold=t, val_miou=miou, n_val=len(ids)))
    return thresholds, table


def summarize(table, *, replicates=1000, seed=0, level=0.95):
    """Mean, sd, count and percentile interval (`replicates` image-level bootstrap replicates; 0:
    NaN) of each utility metric per model, method and step.

    Paired: for each model, step and metric, one matrix [methods, images] over every image any
    method was scored on (NaN where a method lacks it, or its value is undefined) is resampled
    at once, so all methods' intervals come from the same replicate image sets."""
    from ..metrics import paired_intervals

    util = table[table.metric.isin(UTILITY)]
    summary = util.groupby(SUMMARY_KEYS)["value"].agg(["mean", "std", "count"]).reset_index()
    # (two detectors' rows share one method name: their values of an image are averaged)
    ci = paired_intervals(util, ["method"], ["model", "step", "metric"], replicates=replicates, seed=seed,
                          level=level)
    if ci.empty:
        return summary.assign(ci_low=np.nan, ci_high=np.nan)
    return summary.merge(ci, on=SUMMARY_KEYS, how="left")


def _interval_text(low, high):
    return "" if np.isnan(low) or np.isnan(high) else f" [{low:.3f}, {high:.3f}]"


def _detector_name(path):
    """The RetinaNet run a detections CSV belongs to (RUN/predictions/SPLIT/detections.csv), or
    the CSV's own name."""
    path = Path(path).resolve()
    return path.parents[2].name if (path.parent / "predictions.json").exists() else path.stem


def score_store(store_path, out, *, data_dir=None, baselines=None, model_name=None, step="trained", cfg=None,
                parts=None, validation=None, log=print, progress=None):
    """Score every map of a store (and the baselines) against the ground truth; returns the table.

    Utility on the positive images: AUPRC, AUROC and CheXlocalize's pointing game (`hit`: the
    processed map's maximum inside the mask) for every method and baseline, and, given a
    `validation` store (`cfg.score.validation`: maps of the same model on the validation split),
    the IoU of each saliency method's processed map thresholded where its mean IoU over the
    validation positives is highest (`iou`; baselines get none), the thresholds written to
    thresholds.csv. The summary's intervals and pointwise AP's come from `cfg.score.bootstrap`
    image-level replicates (seed `cfg.score.seed`), paired across methods.
    Pointwise detection ([B]) on every image of the store,
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
    from ..saliency.base import METHODS
    from ..saliency.store import SCALE, MapStore
    from .provenance import result_meta

    cfg = cfg or Config()
    # `baselines`, `parts` and `validation` given here override the config's `score:` section
    # (checked as any config); the settings used are written into OUT/config.yaml
    cfg = dataclasses.replace(cfg, score=dataclasses.replace(
        cfg.score, baselines=cfg.score.baselines if baselines is None else baselines,
        parts=cfg.score.parts if parts is None else tuple(parts),
        validation=cfg.score.validation if validation is None else str(validation)))
    cfg = checked(cfg, "score_store")
    baselines, parts, validation = cfg.score.baselines, cfg.score.parts, cfg.score.validation
    replicates, seed = cfg.score.bootstrap, cfg.score.seed
    pw = cfg.pointwise
    do_utility, do_pointwise = "utility" in parts, "pointwise" in parts
    store = MapStore(store_path)
    meta = store.meta
    data_dir = store.checked_data(data_dir)
    split, size = meta["split"], meta["input_size"]
    parse_baselines(baselines)      # every baseline's file exists before anything is computed
    model_name = model_name or Path(meta["model"]).name
    manifest = read_manifest(data_dir)
    rows = {r["image_id"]: r for r in manifest if r["split"] == split}
    missing = [i for i in meta["image_ids"] if i not in rows]
    if missing:
        raise CxrsalError(f"--data {data_dir}: image {missing[0]} of the store is not in its {split} split")
    data = PreparedSplit(data_dir, split)
    ids = meta["image_ids"]
    # the IoU thresholds first: a wrong validation store is refused before the scoring starts
    methods = store.methods()
    thresholds, threshold_rows = {}, []
    if validation and do_utility:
        thresholds, threshold_rows = validation_thresholds(validation, store, manifest, data_dir, methods, log=log)
    elif validation:
        log(f"--validation {validation}: not used; mIoU is part of utility, not scored here (score parts: pointwise)")
    elif do_utility:
        log(NO_IOU)
    masks = truth_masks(data_dir, data, [rows[i] for i in ids], size)
    boxes = {i: scaled_boxes(rows[i], size) for i in ids}
    geometry = meta.get("geometry") if pw.centres == "receptive-field" else None
    on_grids = any(getattr(METHODS.get(m), "grid", False) for m in store.methods() if m in METHODS)
    if pw.centres == "receptive-field" and geometry is None and on_grids:
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
            low, high = (bootstrap_ap_ci(labels, scores, hits, replicates=replicates, seed=seed) if replicates
                         else (np.nan, np.nan))
            pointwise.append(dict(model=model, method=method, step=step, n=len(labels), n_negative=n_neg,
                                  pointwise_ap=pointwise_average_precision(labels, scores, hits), centres=centres,
                                  ci_low=low, ci_high=high))

    from tqdm import tqdm

    from ..console import bar_disabled

    logits = {}
    # a bar with rate and ETA on a terminal (progress=None), none in a log or a pipe
    bar = tqdm(total=sum(len(store.ids(m)) for m in methods), desc="score", unit="map",
               disable=bar_disabled(progress))
    for method in methods:
        stored = store.ids(method)
        on_grid = geometry is not None and getattr(METHODS.get(method), "grid", False)
        grids, scores, labs, constant = [], [], [], []
        for image_id in stored:
            d = store.load(method, image_id, quantized=True)
            if do_utility and rows[image_id]["label"] == 1:
                metrics = utility(masks[image_id], d["processed"])
                if method in thresholds:
                    # the map's [0, 1] values, as MapStore.load gives them (validation maps too)
                    metrics["iou"] = iou_score(masks[image_id], d["processed"].astype(np.float32) / SCALE,
                                               threshold=thresholds[method])
                add(image_id, method, metrics, constant=d["constant"])
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
    summary = summarize(table, replicates=replicates, seed=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)
    (out / "score.json").unlink(missing_ok=True)     # the marker `cxrsal stats` reads: written last
    write_frame(out / "scores.csv", table)
    write_frame(out / "scores.parquet", table)
    write_frame(out / "summary.csv", summary)
    write_frame(out / "pointwise.csv", pd.DataFrame(pointwise, columns=["model", "method", "step", "n", "n_negative",
                                                                        "pointwise_ap", "ci_low", "ci_high",
                                                                        "centres"]))
    write_frame(out / "thresholds.csv", pd.DataFrame(threshold_rows, columns=THRESHOLD_COLUMNS))
    write_config(cfg, out)
    model_dir = Path(meta["model"])
    provenance = result_meta([model_dir], cfg) if model_dir.exists() else {"choices": cfg.choices()}
    atomic_write_text(out / "score.json", json.dumps({"maps": str(Path(store_path).resolve()), "data": data_dir,
                                                      "baselines": baselines, "model": model_name, **provenance,
                                                      "validation": str(Path(validation).resolve()) if validation
                                                      else None,
                                                      "input_channels": meta.get("input_channels")},
                                                     indent=2) + "\n")
    tuned = {r["method"]: r for r in threshold_rows}
    names = {"auprc": "AUPRC", "hit": "hit rate", "iou": "mIoU"}
    shown = summary[summary.metric.isin(list(names))]
    shown = shown.assign(order=shown.metric.map(list(names).index)).sort_values(["model", "method", "order"])
    for r in shown.itertuples():
        name = names[r.metric]
        at = (f", threshold {tuned[r.method]['threshold']:.2f} tuned on {tuned[r.method]['n_val']} validation "
              "positives") if r.metric == "iou" else ""
        log(f"{r.method:<22} {name} {r.mean:.3f}{_interval_text(r.ci_low, r.ci_high)} "
            f"+/- {0 if np.isnan(r.std) else r.std:.3f}  (n={r.count}{at})")
    for p in pointwise:
        note = "  (positives only: no false positives from negatives, AP inflated)" if p["n_negative"] == 0 else ""
        log(f"{p['method']:<22} pointwise AP {p['pointwise_ap']:.3f}{_interval_text(p['ci_low'], p['ci_high'])}  "
            f"({p['n']} images, {p['centres']}){note}")
    return table


def scaled_boxes(row, size):
    """A manifest row's boxes (original pixels) in pixels of a `size` x `size` map."""
    from ..data.manifest import parse_boxes

    return scale_boxes(parse_boxes(row["boxes"]), (row["height"], row["width"]), size)
