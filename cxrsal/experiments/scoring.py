"""`cxrsal score`: per-image tidy table of localization utility and pointwise detection.

One row per image x model x method x step x metric. Utility (the registered metrics,
`cxrsal.metrics.UTILITY_METRICS`: AUPRC, trapezoid AUPRC, AUROC, and CheXlocalize's
pointing-game hit and IoU) is defined for positives only; pointwise hits for every image; the
summary gives mean, sd and a bootstrap interval per method and metric, and pointwise detection AP
(with its interval) per method. The baselines are registered scorers (`score_baselines`); every
scorer adds its rows to one `score_sheet.ScoreSheet`.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..config import checked, write_config
from ..errors import CxrsalError
from ..files import atomic_write_text, remove_stale_tmp, write_frame
from ..metrics import UTILITY_METRICS, argmax_points, tune_threshold, utility_metrics, utility_scores
from .score_baselines import SCORE_BASELINES, parse_baselines
from .score_sheet import ScoreSheet, truth_masks

SUMMARY_KEYS = ["model", "method", "step", "metric"]
THRESHOLD_COLUMNS = ["method", "threshold", "val_miou", "n_val"]
POINTWISE_COLUMNS = ["model", "method", "step", "n", "n_negative", "pointwise_ap", "ci_low", "ci_high", "centres"]
NO_IOU = ("mIoU not scored: it needs --validation STORE, maps of the same model on the validation split "
          "(`cxrsal saliency --split val`), where each method's threshold is tuned; never on the test images scored")


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
    rows = store_rows(manifest, vmeta, data_dir, where=opt)
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

    util = table[table.metric.isin([m.name for m in utility_metrics()])]
    summary = util.groupby(SUMMARY_KEYS)["value"].agg(["mean", "std", "count"]).reset_index()
    # (two detectors' rows share one method name: their values of an image are averaged)
    ci = paired_intervals(util, ["method"], ["model", "step", "metric"], replicates=replicates, seed=seed,
                          level=level)
    if ci.empty:
        return summary.assign(ci_low=np.nan, ci_high=np.nan)
    return summary.merge(ci, on=SUMMARY_KEYS, how="left")


def _interval_text(low, high):
    return "" if np.isnan(low) or np.isnan(high) else f" [{low:.3f}, {high:.3f}]"


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

    from ..data.manifest import read_manifest
    from ..data.pipeline import PreparedSplit
    from ..saliency.store import MapStore

    cfg = score_config(cfg, baselines=baselines, parts=parts, validation=validation)
    baselines, parts = cfg.score.baselines, cfg.score.parts
    store = MapStore(store_path)
    meta = store.meta
    data_dir = store.checked_data(data_dir)
    split = meta["split"]
    scorers = parse_baselines(baselines)      # every baseline's file exists before anything is computed
    model_name = model_name or Path(meta["model"]).name
    manifest = read_manifest(data_dir)
    rows = store_rows(manifest, meta, data_dir, where=f"--maps {store_path}")
    data = PreparedSplit(data_dir, split)
    # the IoU thresholds first: a wrong validation store is refused before the scoring starts
    methods = store.methods()
    thresholds, threshold_rows = tuned_thresholds(cfg.score.validation, "utility" in parts, store, manifest, data_dir,
                                                  methods, log=log)
    sheet = ScoreSheet(data_dir=data_dir, data=data, rows=rows, ids=meta["image_ids"], size=meta["input_size"],
                       model_name=model_name, step=step, do_utility="utility" in parts,
                       do_pointwise="pointwise" in parts, replicates=cfg.score.bootstrap, seed=cfg.score.seed,
                       tolerance=cfg.pointwise.tolerance)
    geometry = cell_geometry(store, cfg.pointwise.centres, where=store_path, log=log)
    score_stored_maps(sheet, store, methods, thresholds, geometry, progress=progress)
    for kind, arg in scorers:
        baseline = SCORE_BASELINES.get(kind)
        baseline.score(sheet, arg, baseline.method)

    if not sheet.records:
        raise CxrsalError(f"--maps {store_path}: the store holds no maps")
    table = pd.DataFrame.from_records(sheet.records)
    summary = summarize(table, replicates=cfg.score.bootstrap, seed=cfg.score.seed)
    write_tables(out, table, summary, sheet.pointwise, threshold_rows)
    write_score_json(out, cfg, store_path, meta, data_dir, model_name)
    log_summary(summary, sheet.pointwise, threshold_rows, log=log)
    return table


def score_config(cfg, *, baselines=None, parts=None, validation=None):
    """The config scored with: `baselines`, `parts` and `validation` given here override its
    `score:` section, and the result is checked as any config (it is written into OUT/config.yaml)."""
    from ..config import Config

    cfg = cfg or Config()
    cfg = dataclasses.replace(cfg, score=dataclasses.replace(
        cfg.score, baselines=cfg.score.baselines if baselines is None else baselines,
        parts=cfg.score.parts if parts is None else tuple(parts),
        validation=cfg.score.validation if validation is None else str(validation)))
    return checked(cfg, "score_store")


def store_rows(manifest, meta, data_dir, *, where):
    """The manifest rows of a store's split by image id; every image of the store (`meta`: its
    store.json) must be one, else the error names `where` (the option that gave the store)."""
    split = meta["split"]
    rows = {r["image_id"]: r for r in manifest if r["split"] == split}
    missing = [i for i in meta["image_ids"] if i not in rows]
    if missing:
        raise CxrsalError(f"{where}: image {missing[0]} of the store is not in the {split} split of {data_dir}")
    return rows


def tuned_thresholds(validation, do_utility, store, manifest, data_dir, methods, *, log=print):
    """({method: threshold}, rows of thresholds.csv) of the tuned metrics (`UtilityMetric.tuned`:
    mIoU), or none, saying why, without a validation store or without utility."""
    if validation and do_utility:
        return validation_thresholds(validation, store, manifest, data_dir, methods, log=log)
    if validation:
        log(f"--validation {validation}: not used; mIoU is part of utility, not scored here (score parts: pointwise)")
    elif do_utility:
        log(NO_IOU)
    return {}, []


def cell_geometry(store, centres, *, where, log=print):
    """The store's cell geometry when feature-grid cells are placed at their receptive-field
    centres (`pointwise.centres`), else None ([B]'s grid); `where`: the store as given."""
    from ..saliency.base import METHODS

    geometry = store.meta.get("geometry") if centres == "receptive-field" else None
    on_grids = any(getattr(METHODS.get(m), "grid", False) for m in store.methods() if m in METHODS)
    if centres == "receptive-field" and geometry is None and on_grids:
        log(f"{where}: the store does not record its model's cell geometry (made before cxrsal 0.3); "
            "pointwise cells placed on the grid")
    return geometry


def score_stored_maps(sheet, store, methods, thresholds, geometry, *, progress=None):
    """Every stored map of `methods` onto `sheet`: the utility metrics of each positive image
    (the tuned ones where `thresholds` holds the method's), and each method's pointwise detection
    over its images ranked by the model's logit."""
    from tqdm import tqdm

    from ..console import bar_disabled
    from ..saliency.base import METHODS
    from ..saliency.store import SCALE

    # a bar with rate and ETA on a terminal (progress=None), none in a log or a pipe
    bar = tqdm(total=sum(len(store.ids(m)) for m in methods), desc="score", unit="map",
               disable=bar_disabled(progress))
    for method in methods:
        stored = store.ids(method)
        on_grid = geometry is not None and getattr(METHODS.get(method), "grid", False)
        threshold = thresholds.get(method)
        grids, scores, labs, constant = [], [], [], []
        for image_id in stored:
            d = store.load(method, image_id, quantized=True)
            if sheet.do_utility and sheet.rows[image_id]["label"] == 1:
                # a tuned metric reads the map's [0, 1] values, as MapStore.load gives them (validation maps too)
                unit = None if threshold is None else d["processed"].astype(np.float32) / SCALE
                sheet.add(image_id, method, utility_scores(sheet.masks[image_id], d["processed"], threshold=threshold,
                                                           unit_map=unit), constant=d["constant"])
            grids.append(d.get("native", d["processed"]))
            scores.append(d["logit"])
            labs.append(sheet.rows[image_id]["label"])
            constant.append(d["constant"])
            sheet.logits[image_id] = d["logit"]
            bar.update()
        if not sheet.do_pointwise:
            continue
        points = argmax_points(grids, sheet.size, geometry=geometry if on_grid else None)
        hits = sheet.hits_of(points, stored)
        for image_id, hit, flat in zip(stored, hits, constant):
            sheet.add(image_id, method, {"pointwise_hit": float(hit)}, constant=flat)
        sheet.add_pointwise(sheet.model_name, method, labs, scores, hits, "receptive-field" if on_grid else "grid")
    bar.close()


def write_tables(out, table, summary, pointwise, threshold_rows):
    """scores.csv (and .parquet), summary.csv, pointwise.csv and thresholds.csv into `out`; the
    marker score.json is removed first (`write_score_json` writes it last)."""
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)
    (out / "score.json").unlink(missing_ok=True)     # the marker `cxrsal stats` reads: written last
    write_frame(out / "scores.csv", table)
    write_frame(out / "scores.parquet", table)
    write_frame(out / "summary.csv", summary)
    write_frame(out / "pointwise.csv", pd.DataFrame(pointwise, columns=POINTWISE_COLUMNS))
    write_frame(out / "thresholds.csv", pd.DataFrame(threshold_rows, columns=THRESHOLD_COLUMNS))


def write_score_json(out, cfg, store_path, meta, data_dir, model_name):
    """OUT/config.yaml, then the marker score.json: what was scored, with what, and the model's
    provenance."""
    from .provenance import result_meta

    out = Path(out)
    write_config(cfg, out)
    model_dir = Path(meta["model"])
    validation = cfg.score.validation
    provenance = result_meta([model_dir], cfg) if model_dir.exists() else {"choices": cfg.choices()}
    atomic_write_text(out / "score.json", json.dumps({"maps": str(Path(store_path).resolve()), "data": data_dir,
                                                      "baselines": cfg.score.baselines, "model": model_name,
                                                      **provenance,
                                                      "validation": str(Path(validation).resolve()) if validation
                                                      else None,
                                                      "input_channels": meta.get("input_channels")},
                                                     indent=2) + "\n")


def log_summary(summary, pointwise, threshold_rows, *, log=print):
    """One line per method and localization metric (`UtilityMetric.localization`), then one per
    pointwise AP."""
    tuned = {r["method"]: r for r in threshold_rows}
    names = {m.name: m.label for m in utility_metrics(localization=True)}
    shown = summary[summary.metric.isin(list(names))]
    shown = shown.assign(order=shown.metric.map(list(names).index)).sort_values(["model", "method", "order"])
    for r in shown.itertuples():
        at = (f", threshold {tuned[r.method]['threshold']:.2f} tuned on {tuned[r.method]['n_val']} validation "
              "positives") if UTILITY_METRICS.get(r.metric).tuned else ""
        log(f"{r.method:<22} {names[r.metric]} {r.mean:.3f}{_interval_text(r.ci_low, r.ci_high)} "
            f"+/- {0 if np.isnan(r.std) else r.std:.3f}  (n={r.count}{at})")
    for p in pointwise:
        note = "  (positives only: no false positives from negatives, AP inflated)" if p["n_negative"] == 0 else ""
        log(f"{p['method']:<22} pointwise AP {p['pointwise_ap']:.3f}{_interval_text(p['ci_low'], p['ci_high'])}  "
            f"({p['n']} images, {p['centres']}){note}")
