"""`cxrsal faithfulness`: does a map point at what the model uses? ROAD (Rong et al., ICML 2022)
and deletion / insertion (Petsiuk et al., BMVC 2018) on every positive image of a map store,
every method and control of it, from the maps as stored (`cxrsal.metrics.faithfulness`).

    OUT/faithfulness.csv      (and .parquet) one row per image x method x metric (road_morf, road_lerf, road_gap,
                              deletion, insertion): the areas under the curves
    OUT/curves.csv            one row per image x method x curve (morf, lerf, deletion, insertion)
                              x point: the explained class's probability
    OUT/summary.csv           per method and metric: mean, sd, n and the 95 % image-level bootstrap
                              interval (paired across methods)
    OUT/parts/<method>.csv    each method's rows as it finishes (a killed run resumes after the last)
    OUT/faithfulness.json     the marker, written last
"""

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..config import checked, write_config
from ..errors import CxrsalError
from ..files import atomic_write_text, remove_stale_tmp, write_frame

METRICS = {"road_morf": "morf_auc", "road_lerf": "lerf_auc", "road_gap": "road_gap", "deletion": "deletion_auc",
           "insertion": "insertion_auc"}
CURVES = ("morf", "lerf", "deletion", "insertion")
COLUMNS = ["image_id", "model", "method", "metric", "value", "label"]
CURVE_COLUMNS = ["image_id", "model", "method", "curve", "x", "value"]
MARKER = "faithfulness.json"
IMAGES_PER_CALL = 8      # images whose inputs go to the model together (memory: one image's inputs at a time)


def faithfulness_config(cfg):
    from ..config import Config

    return checked(cfg or Config(), "faithfulness")


def run_faithfulness(store_path, out, cfg=None, *, methods=None, model_name=None, log=print, progress=None):
    """Faithfulness curves of every positive image of the store `store_path`, for `methods`
    (default: every method of the store); returns the per-image table. The model is the store's
    (its weights must be the ones the maps were made with); the explained class the one its maps
    explain."""
    import pandas as pd
    from tqdm import tqdm

    from ..console import bar_disabled
    from ..data.manifest import read_manifest
    from ..data.pipeline import PreparedSplit
    from ..identity import claim
    from ..runs import Run
    from ..saliency.adapter import ModelAdapter
    from ..saliency.store import MapStore, weights_digest
    from .scoring import store_rows

    cfg = faithfulness_config(cfg)
    f = cfg.faithfulness
    store = MapStore(store_path)
    meta = store.meta
    data_dir = store.checked_data()
    names = _methods(store, methods, store_path)
    rows = store_rows(read_manifest(data_dir), meta, data_dir, where=f"--maps {store_path}")
    run = Run(meta["model"])
    model = run.model(meta.get("checkpoint", "best"))
    if weights_digest(model) != meta.get("weights"):
        raise CxrsalError(f"--maps {store_path}: the maps were made with other weights than {run.path}'s "
                          f"{meta.get('checkpoint', 'best')} checkpoint (a randomized step?): faithfulness needs "
                          "the model the maps explain")
    out = Path(out)
    claim(out, "faithfulness", {f"faithfulness.{k}": v for k, v in dataclasses.asdict(f).items()
                                if k not in ("batch_size", "bootstrap")},
          {"maps": meta.get("weights"), "data": meta.get("manifest")})
    remove_stale_tmp(out)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    model_name = model_name or Path(meta["model"]).name
    adapter = ModelAdapter(model, batch_size=f.batch_size, input_channels=meta.get("input_channels", 3))
    data = PreparedSplit(data_dir, meta["split"])
    size = meta["input_size"]
    parts = []
    for method in names:
        part = out / "parts" / f"{method}.csv"
        if part.exists():               # finished before a kill: not computed again
            parts.append(pd.read_csv(part))
            continue
        ids = [i for i in store.ids(method) if rows[i]["label"] == 1]
        groups = [ids[k:k + IMAGES_PER_CALL] for k in range(0, len(ids), IMAGES_PER_CALL)]
        records = []
        for group in tqdm(groups, desc=f"faithfulness {method}", unit="group", disable=bar_disabled(progress)):
            records += _group_records(adapter, store, data, rows, method, group, size, f, model_name)
        frame = pd.DataFrame.from_records(records, columns=COLUMNS + ["curves"])
        write_frame(part, frame)
        parts.append(frame)
        log(f"{method}: {len(ids)} positive images")
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS + ["curves"])
    if table.empty:
        raise CxrsalError(f"--maps {store_path}: no positive image has a map of {', '.join(names)}")
    curves = _curve_rows(table, f.fractions)
    table = table[COLUMNS]
    summary = summarize(table, replicates=f.bootstrap, seed=f.seed)
    write_frame(out / "faithfulness.csv", table)
    write_frame(out / "faithfulness.parquet", table)
    write_frame(out / "curves.csv", curves)
    write_frame(out / "summary.csv", summary)
    _write_marker(out, cfg, store_path, meta, data_dir, model_name)
    for r in summary[summary.metric == "road_gap"].itertuples():
        log(f"{r.method:<10} ROAD gap (LeRF - MoRF) {r.mean:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] over {r.n} images")
    return table


def _methods(store, methods, where):
    have = store.methods()
    if not have:
        raise CxrsalError(f"--maps {where}: the store holds no maps")
    if methods in (None, "", "all"):
        return have
    from ..saliency.base import method_names

    names = method_names(methods)
    missing = [m for m in names if m not in have]
    if missing:
        raise CxrsalError(f"--methods {missing[0]}: the store {where} has no maps of it; it holds {', '.join(have)}")
    return names


def _group_records(adapter, store, data, rows, method, group, size, f, model_name):
    """Per-image rows (the areas, and every curve as one JSON cell) of one group of images."""
    from ..data.pipeline import load_batch
    from ..metrics.faithfulness import faithfulness_curves
    from ..saliency.base import METHODS, noise_rng

    loaded = [store.load(method, i) for i in group]
    idx = [rows[i]["index"] for i in group]
    images = load_batch(data, idx, size)[0]
    # the class the maps explain: the positive one, or the predicted one (saliency.target)
    positive = store.params(method).get("target", "positive") == "positive"      # params.json, read once
    cls = np.array([1 if positive else int(d["logit"] > 0) for d in loaded], np.int32)
    # the method's own flag; a map of an unregistered method by its shape ([H, W, C]: channel maps)
    channels = METHODS.get(method).channels if method in METHODS else np.ndim(loaded[0]["raw"]) == 3
    records = []
    for c in np.unique(cls):            # one class per call of the model
        pick = np.flatnonzero(cls == c)
        curves = faithfulness_curves(
            lambda b: adapter.probabilities(adapter.lift(b), np.full(len(b), c, np.int32)),
            images[pick], [loaded[k]["raw"] for k in pick], channels=channels,
            rng_for=lambda k: noise_rng(f.seed, idx[pick[k]]), fractions=f.fractions, steps=f.steps,
            blur_sd=f.blur * size, noise_sd=f.noise, batch_size=f.batch_size)
        for k, cv in zip(pick, curves):
            kept = json.dumps({name: np.asarray(getattr(cv, name), float).round(6).tolist() for name in CURVES})
            for metric, attr in METRICS.items():
                records.append(dict(image_id=group[k], model=model_name, method=method, metric=metric,
                                    value=float(getattr(cv, attr)), label=1, curves=kept if metric == "road_gap"
                                    else ""))
    return records


def _curve_rows(table, fractions):
    """curves.csv from the JSON cells of the per-image rows (one per image and method); x: ROAD's
    `fractions`, deletion's and insertion's k / steps."""
    import pandas as pd

    rows = []
    for r in table[table.metric == "road_gap"].itertuples():
        curves = json.loads(r.curves)
        steps = len(curves["deletion"]) - 1
        for name in CURVES:
            xs = fractions if name in ("morf", "lerf") else np.arange(steps + 1) / steps
            rows += [dict(image_id=r.image_id, model=r.model, method=r.method, curve=name, x=float(x), value=v)
                     for x, v in zip(xs, curves[name])]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def summarize(table, *, replicates=1000, seed=0, level=0.95):
    """Per model, method and metric: mean, sd, n and the image-level bootstrap interval, paired
    across methods (every method resampled on the same images)."""
    from ..metrics import paired_intervals

    keys = ["model", "method", "metric"]
    summary = table.groupby(keys)["value"].agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "n"})
    if not replicates:
        return summary.assign(ci_low=np.nan, ci_high=np.nan)
    ci = paired_intervals(table, ["method"], ["model", "metric"], replicates=replicates, seed=seed, level=level)
    return summary.merge(ci, on=keys, how="left")


def _write_marker(out, cfg, store_path, meta, data_dir, model_name):
    from .provenance import result_meta

    write_config(cfg, out)
    model_dir = Path(meta["model"])
    provenance = result_meta([model_dir], cfg) if model_dir.exists() else {"choices": cfg.choices()}
    atomic_write_text(out / MARKER, json.dumps({"maps": str(Path(store_path).resolve()), "data": data_dir,
                                                "model": model_name, **provenance,
                                                "faithfulness": dataclasses.asdict(cfg.faithfulness)},
                                               indent=2, default=list) + "\n")
