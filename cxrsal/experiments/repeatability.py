"""Repeatability (two replicates of one architecture) and reproducibility (two architectures):
per-image SSIM between the two models' maps of the same images, against the low baseline 0.5
and, when given, the high baseline of two localization networks' heatmaps.

With a model trained on permuted labels (`cxrsal train --permute-labels`) and one trained on the
true labels, the comparison is the data randomization test (Adebayo et al. 2018): a method
passes when its maps of the two models are less similar than its degradation threshold (the
mean SSIM between the true model's maps of random pairs of images, as `cxrsal randomize`)."""

import json
from pathlib import Path

import numpy as np

from ..config import write_config
from ..errors import CxrsalError
from ..resizing import resize_map
from ..files import atomic_write_text, remove_stale_tmp, write_frame
from ..metrics.similarity import LOW_BASELINE, degradation_threshold
from ..saliency.postprocess import normalize
from ..metrics.defined import is_constant, pair_similarity, threshold_reason
from .randomization import similarity_map, threshold_verdicts, with_intervals

SIDES = ("first model's", "second model's")    # how a reason names the map of each model


def run_compare(model_dirs, out, cfg, methods="study", *, baseline_maps=None, progress=None, log=print, maps=()):
    """Per-image SSIM between two models' maps (`cfg.similarity`: which maps, data_range;
    `cfg.compare.n_images`: positive test images, 0 = all), and between two localization
    networks' heatmaps (`baseline_maps`, the high baseline). The verdicts are `cxrsal stats`'.
    Maps a model's other stores (or `maps`) hold with the same identity are copied, not
    recomputed (`MapStore.reuse`)."""
    import pandas as pd

    from ..data.manifest import read_manifest
    from ..data.pipeline import PreparedSplit
    from ..metrics import ssim_score
    from ..saliency.adapter import ModelAdapter
    from ..runs import CLASSIFICATION, Run, read_card
    from ..saliency.base import parse_methods
    from ..data.manifest import manifest_hash
    from ..identity import claim
    from ..saliency.runner import fill_store, method_records, select, store_identity
    from ..saliency.store import MapStore, remember, remembered, weights_digest
    from ..training.fit import versions
    from .provenance import refuse_repeats, result_meta
    from .score_baselines import read_probability_map

    if len(model_dirs) != 2:
        raise CxrsalError(f"--models: give exactly two trained runs, got {len(model_dirs)}")
    s, sim = cfg.saliency, cfg.similarity
    out = Path(out)
    # both models' images first: a mismatch is one line before any map is computed
    runs = [Run(d, option="--models").expect(CLASSIFICATION) for d in model_dirs]
    two = "repeatability compares two independently trained replicates, reproducibility two architectures"
    refuse_repeats(model_dirs, "--models", two)
    permuted = [bool((read_card(run.path) or {}).get("label_permuted")) for run in runs]
    data_randomization = sum(permuted) == 1
    if sum(permuted) == 2:
        raise CxrsalError("--models: both models were trained on permuted labels; the data randomization test "
                          "compares a model of the true labels with one of permuted labels")
    data_dirs = [run.checked_data() for run in runs]
    manifests = [read_manifest(d) for d in data_dirs]
    chosen = [r["image_id"] for r in select(manifests[0], s.split, s.positives_only, cfg.compare.n_images)]
    if not chosen:
        raise CxrsalError(f"--models {runs[0].path}: no {s.split} images to compare in {runs[0].data}")
    for run, manifest in zip(runs[1:], manifests[1:]):
        in_split = {r["image_id"] for r in manifest if r["split"] == s.split}
        missing = [i for i in chosen if i not in in_split]
        if missing:
            raise CxrsalError(f"--models {run.path}: {len(missing)} of the {len(chosen)} {s.split} images of "
                              f"{runs[0].path.name} (first: {missing[0]}) are not in the {s.split} split of "
                              f"{run.data}; the two models must be trained on the same split")
    models = [run.model(s.checkpoint) for run in runs]
    digests = [weights_digest(m) for m in models]
    refuse_repeats(model_dirs, "--models", two, digests)
    adapters = [ModelAdapter(model, batch_size=s.batch_size, input_channels=s.input_channels,
                             jit_compile=s.jit_compile, precision=s.precision, log=log) for model in models]
    method_sets = [parse_methods(methods, a.has_class_maps, a.has_layers) for a in adapters]
    splits = [PreparedSplit(d, s.split) for d in data_dirs]
    size = min(a.input_shape[0] for a in adapters)      # the maps are compared at the smaller side
    # the localization networks' heatmaps read (and checked) before any map is computed, at that size
    heatmaps = [{i: read_probability_map(d, i, size, where="--baseline-maps ") for i in chosen}
                for d in baseline_maps] if baseline_maps else None
    stores = [MapStore(out / "maps" / f"{k}-{run.path.name}") for k, run in enumerate(runs)]
    metas = [{"model": str(run.path.resolve()), "checkpoint": s.checkpoint, "data": d, "split": s.split,
              "image_ids": chosen, "weights": digest, "model_name": model.name, **store_identity(d, adapter),
              "versions": versions()} for run, d, digest, model, adapter in zip(runs, data_dirs, digests, models,
                                                                             adapters)]
    claim(out, "compare", {**cfg.map_settings(), **cfg.settings("compare")},
          {f"model {k + 1}": {"run": str(run.path.resolve()), "weights": digest, "manifest": manifest_hash(d)}
           for k, (run, digest, d) in enumerate(zip(runs, digests, data_dirs))})
    for store, meta, adapter, names in zip(stores, metas, adapters, method_sets):
        store.check(meta, method_records(names, cfg, adapter))     # before either store is written
    remove_stale_tmp(out, recursive=True)
    for k, (run, manifest, adapter, names, store, meta, split) in enumerate(
            zip(runs, manifests, adapters, method_sets, stores, metas, splits)):
        by_id = {r["image_id"]: r for r in manifest if r["split"] == s.split}
        rows = [by_id[i] for i in chosen]
        store.init(meta)
        sources = [MapStore(p) for p in [*remembered(run.path), *maps]]
        remember(run.path, store.path)
        fill_store(adapter, store, rows, split, names, cfg, progress=progress, log=log, label=f"model {k + 1} ",
                   sources=sources)
    names = [m for m in method_sets[0] if m in method_sets[1]]
    ssim = lambda a, b: ssim_score(a, b, data_range=sim.data_range)
    records = []

    true = permuted.index(False) if data_randomization else None

    def record(i, name_a, name_b, method, a, b, reference=None):
        """One SSIM row; `reference`: the index of the map that must have structure (the data
        randomization test's true model), None for two maps of equal standing."""
        if reference is None:
            value, why = pair_similarity(a, b, ssim, sides=SIDES)
        else:
            pair = (a, b) if reference == 0 else (b, a)      # SSIM is symmetric: the reference first
            value, why = pair_similarity(*pair, ssim, sides=("true model's", "permuted model's"),
                                         undefined_when="reference")
        records.append(dict(image_id=i, model_a=name_a, model_b=name_b, method=method, metric="ssim", value=value,
                            constant=int(is_constant(a)) + int(is_constant(b)), undefined=why))

    for method in names:
        ch = stores[0].params(method)["channels"]
        for i in chosen:
            a = resize_map(similarity_map(stores[0].load(method, i), ch, sim.maps), size)
            b = resize_map(similarity_map(stores[1].load(method, i), ch, sim.maps), size)
            record(i, Path(model_dirs[0]).name, Path(model_dirs[1]).name, method, a, b, true)
    if baseline_maps:
        da, db = baseline_maps
        for i in chosen:
            # prepared as the saliency maps are (`similarity.maps`), so both sides compare alike
            a, b = (similarity_map({"raw": m, "processed": normalize(m)[0]}, False, sim.maps)
                    for m in (heatmaps[0][i], heatmaps[1][i]))
            record(i, Path(da).name, Path(db).name, "baseline:localization", a, b)
    table = pd.DataFrame.from_records(records)
    summary = table.groupby("method")["value"].agg(["mean", "std", "count"]).reset_index()
    summary = with_intervals(table.assign(metric="ssim"), summary, ["method"], seed=cfg.randomization.seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").unlink(missing_ok=True)     # the marker `cxrsal stats` reads: written last
    check = "data randomization" if data_randomization else None
    if data_randomization:
        true = permuted.index(False)
        thr = []
        for method in names:
            ch = stores[true].params(method)["channels"]
            maps = np.stack([resize_map(similarity_map(stores[true].load(method, i), ch, sim.maps), size)
                             for i in chosen])
            rz = cfg.randomization
            flat = sum(is_constant(m) for m in maps)
            thr.append(dict(method=method, threshold=degradation_threshold(
                maps, pairs_per_image=rz.pairs_per_image, pairs=rz.pairs or None, seed=rz.seed,
                data_range=sim.data_range) if len(chosen) > 1 else float("nan"), images=len(chosen), constant=flat,
                reason=threshold_reason(len(chosen), flat, cfg.stats.min_images)))
        verdicts = threshold_verdicts(table[table.method.isin(names)], pd.DataFrame(thr), cfg.stats.min_images)
        verdicts = verdicts.merge(summary[["method", "ci_low", "ci_high"]], on="method", how="left")
        write_frame(out / "thresholds.csv", pd.DataFrame(thr))
        write_frame(out / "verdicts.csv", verdicts)
    write_frame(out / "compare.csv", table)
    write_frame(out / "compare.parquet", table)
    write_frame(out / "compare_summary.csv", summary)
    write_config(cfg, out)   # the settings used (compare:, similarity:, saliency:)
    atomic_write_text(out / "compare.json", json.dumps(
        {"models": [str(m) for m in model_dirs], **result_meta(model_dirs, cfg), "size": size,
         "maps": sim.maps, "data_range": sim.data_range, "low_baseline": LOW_BASELINE, "check": check,
         "label_permuted": [str(m) for m, p in zip(model_dirs, permuted) if p]}, indent=2) + "\n")
    log(f"SSIM of {sim.maps} maps, data_range {sim.data_range:g} (PASS/FAIL: `cxrsal stats`)")
    for r in summary.itertuples():
        log(f"{r.method:<22} SSIM {r.mean:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] +/- "
            f"{0 if np.isnan(r.std) else r.std:.3f} (n={r.count})")
    if data_randomization:
        log(f"data randomization test ({Path(model_dirs[permuted.index(True)]).name}: permuted labels):")
        for r in verdicts.itertuples():
            log(f"{r.method:<22} SSIM {r.ssim:.3f} vs threshold {r.threshold:.3f}: {r.result}"
                + (f" ({r.reason})" if r.reason else ""))
    return table, summary
