"""Model parameter randomization tests: cascading randomization [Adebayo et al. 2018] as in [A]
(re-initialise blocks from the top (logits) down, recompute every map, compare with the trained
model's maps), in three orders (top-down, bottom-up, independent), as MPRT or sMPRT (every map
denoised by averaging over noisy inputs), with eMPRT's complexity rise from the same maps.

The trained model on disk is never touched: weights are copied in memory, each step's weights
are a pure function of (trained weights, seed, blocks randomized), and every step's maps go to
their own resumable map store, so a killed run continues at the step (and map) it reached.
"""

import json
from pathlib import Path

import numpy as np

from ..config import CHECK_DEFAULTS, INITS, ORDERS, EmprtConfig, write_config
from ..errors import CxrsalError
from ..files import atomic_write_text, remove_stale_tmp, write_frame
from .randomization_figures import SIMILARITY_NAMES, plot_complexity, plot_curves

# the randomization settings that shape the steps' maps (the threshold's pairs and the similarity
# settings shape only tables recomputed on every run)
RANDOMIZATION_MAP_SETTINGS = ("randomization.n_images", "randomization.init", "randomization.sigma",
                              "randomization.order", "randomization.all_blocks", "randomization.smooth_samples",
                              "randomization.smooth_noise", "randomization.seed")


def comparable(raw, channels):
    """`similarity.maps: raw` ([A]'s text, "raw maps, no abs"): channels summed with their signs,
    min-max scaled to [0, 1] (constant -> zeros)."""
    m = signed_2d(raw, channels)
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def signed_2d(raw, channels):
    """A raw map as one 2-D map: channels summed with their signs (2-D maps unchanged)."""
    m = np.asarray(raw, np.float64)
    return m.sum(axis=-1) if channels and m.ndim == 3 else m


MAPS = ("processed", "raw")


def similarity_map(stored, channels, maps):
    """The map SSIM compares, from a stored map (`MapStore.load`): `processed` ([A]'s code and
    the default: the post-processed [0, 1] map) or `raw` (`comparable`)."""
    if maps == "processed":
        return np.asarray(stored["processed"], np.float64)
    if maps == "raw":
        return comparable(stored["raw"], channels)
    raise CxrsalError(f"similarity.maps {maps!r}: valid choices: {', '.join(MAPS)}")


def rank_map(stored, channels):
    """What Spearman ranks: |raw map| (absolute values taken before ranking, docs/methods.md)."""
    return np.abs(signed_2d(stored["raw"], channels))


def _variable_seed(seed, block, layer, k):
    return np.random.SeedSequence([int(seed), *map(ord, f"{block}/{layer}/{k}")])


def _truncated_normal(rng, shape, sigma):
    x = rng.normal(0.0, sigma, size=shape)
    bad = np.abs(x) > 2 * sigma
    while bad.any():   # redraw outside two standard deviations, as Keras' TruncatedNormal
        x[bad] = rng.normal(0.0, sigma, size=int(bad.sum()))
        bad = np.abs(x) > 2 * sigma
    return x


def new_value(layer, variable, k, *, block, init, sigma, seed):
    """A fresh value for one variable; BatchNorm moving variance is reset to ones (stays > 0)."""
    import keras

    name = variable.path.split("/")[-1]
    shape, dtype = tuple(variable.shape), keras.backend.standardize_dtype(variable.dtype)
    if name == "moving_variance":
        return np.ones(shape, dtype)
    ss = _variable_seed(seed, block, layer.name, k)
    if init == "truncated-normal":
        return _truncated_normal(np.random.default_rng(ss), shape, sigma).astype(dtype)
    initializer = getattr(layer, f"{name}_initializer", None)
    if initializer is None:
        raise CxrsalError(f"layer {layer.name}: variable {name} has no initializer; use --init truncated-normal")
    config = initializer.get_config()
    if "seed" in config:
        config["seed"] = int(ss.generate_state(1)[0] % (2**31))
    return np.asarray(initializer.__class__.from_config(config)(shape, dtype=dtype))


def step_weights(model, blocks, randomized, *, init, sigma, seed):
    """{variable path: value} of the trained model with the layers of `randomized` blocks re-initialised."""
    if init not in INITS:
        raise CxrsalError(f"randomization.init {init!r}: valid choices: {', '.join(INITS)}")
    members = dict(blocks)
    values = {}
    for block in randomized:
        for lname in members[block]:
            layer = model.get_layer(lname)
            for k, v in enumerate(layer.weights):
                values[v.path] = new_value(layer, v, k, block=block, init=init, sigma=sigma, seed=seed)
    return values


def apply_weights(work, trained, values):
    """Set `work`'s variables: the trained values, replaced by `values` where given."""
    for v, t in zip(work.weights, trained):
        v.assign(values.get(v.path, t))


def steps_of(blocks, *, order="top-down", all_blocks, arch):
    """[(step name, blocks randomized)] after the trained step 0, blocks listed top (logits) first.

    top-down ([A]): cumulatively from the logits down; bottom-up: cumulatively from the lowest
    block up, ending with the same fully randomized model (each block's values depend only on the
    seed and the block); independent: one block at a time. Without `all_blocks`, the blocks
    `arch`'s backbone leaves out (`Backbone.randomization_skips`: the stem, and InceptionV3's
    mixed0) are not randomized."""
    if order not in ORDERS:
        raise CxrsalError(f"randomization.order {order!r}: valid choices: {', '.join(ORDERS)}")
    names = [b for b, _ in blocks]
    if not all_blocks:   # [A]: the blocks `arch` declares skipped only as optional extra steps
        from ..models.backbones import randomization_skips

        skips = randomization_skips(arch)
        names = [b for b in names if b not in skips]
    if order == "independent":
        return [(b, [b]) for b in names]
    if order == "bottom-up":
        names = names[::-1]
    return [(b, names[: i + 1]) for i, b in enumerate(names)]


def check_name(rz):
    """The sanity check a randomization run makes: "MPRT top-down" ([A]), "sMPRT bottom-up", ..."""
    return f"{'sMPRT' if rz.check == 'smprt' else 'MPRT'} {rz.order}"


# the similarity that decides each check: [A]'s SSIM for MPRT; the authors' Spearman of |maps| for
# sMPRT (SSIM alongside)
DECIDES = {"mprt": "ssim", "smprt": "spearman"}


def similarities_of(rz):
    """The similarities a run's verdicts use, the deciding one first."""
    first = DECIDES[rz.check]
    return (first,) + tuple(m for m in ("ssim",) if m != first)


def check_choices(rz, sim, em):
    """The choices of a randomization run, in words: what the sanity table prints beside it."""
    words = [f"{check_name(rz)}: {SIMILARITY_NAMES[DECIDES[rz.check]]} decides"]
    if rz.check == "smprt":
        authors = CHECK_DEFAULTS["smprt"]["smooth_samples"]
        copies = f"{rz.smooth_samples} cop{'y' if rz.smooth_samples == 1 else 'ies'}"
        words.append(f"SSIM alongside; every map the mean over {copies} of the input"
                     + (f" (the authors': {authors})" if rz.smooth_samples != authors else "")
                     + f", {rz.smooth_samples - 1} with noise of {rz.smooth_noise:g} x its range and the input itself")
    words.append(f"SSIM of the {sim.maps} maps (data_range {sim.data_range:g})")
    if rz.check == "mprt":
        words.append(f"eMPRT {rz.order}: {complexity_words(em)}")
    return "; ".join(words)


def complexity_words(em):
    """eMPRT's complexity setting in words."""
    if em.complexity == "spatial":
        return "spatial entropy of the normalized |map|"
    authors = EmprtConfig().bins
    bins = (f"{em.bins} bins" if not isinstance(em.bins, str) else f"bins by the {em.bins} rule") + (
        " (the authors' default)" if em.bins == authors else f" (the authors': {authors})")
    return f"entropy of the histogram of the raw map's values, {bins}"


def run_randomization(model_dirs, out, cfg, methods="study", *, progress=None, log=print, maps=()):
    """Maps of every step for every model, then the tables, thresholds, verdicts and figure.

    Settings: `cfg.randomization` (images, re-initialisation, threshold pairs, seed),
    `cfg.similarity` (which maps SSIM compares, data_range) and `cfg.saliency`. The trained
    step's maps are copied from the model's map stores (or `maps`) where they hold them with the
    same identity (`MapStore.reuse`), not recomputed."""
    import keras

    from ..data.manifest import read_manifest
    from ..data.pipeline import PreparedSplit
    from ..models import backbone_blocks
    from ..saliency.adapter import ModelAdapter
    from ..runs import CLASSIFICATION, Run
    from ..saliency.base import parse_methods
    from ..data.manifest import manifest_hash
    from ..identity import claim
    from ..saliency.runner import fill_store, method_records, select, store_identity
    from ..saliency.store import MapStore, remember, remembered, weights_digest
    from ..training.fit import versions
    from .provenance import refuse_repeats, result_meta

    out = Path(out)
    s, rz = cfg.saliency, cfg.randomization
    meta = result_meta(model_dirs, cfg)
    wrap = None
    if rz.check == "smprt":    # sMPRT: every step's maps (the trained one's too) denoised alike
        from ..saliency.smooth import NoiseAveraged

        def wrap(method):
            return NoiseAveraged(method, rz.smooth_samples, rz.smooth_noise)
    if len(set(zip(meta["archs"], meta["heads"]))) > 1:
        raise CxrsalError(f"--model: replicates must share one architecture and head, got "
                          f"{', '.join(f'{a}/{h}' for a, h in zip(meta['archs'], meta['heads']))}")
    # every model opened and checked first: nothing is written before a setting, a model or its
    # data is refused, and the folder's identity (settings and models) is claimed
    replicates = "replicates are independently trained runs"
    refuse_repeats(model_dirs, "--model", replicates)
    opened = []
    for k, model_dir in enumerate(model_dirs):
        run = Run(model_dir).expect(CLASSIFICATION)
        model_dir, data_dir = run.path, run.checked_data()
        model = run.model(s.checkpoint)
        arch = run.config.model.arch
        blocks = backbone_blocks(model, arch, run.config.model.blocks)
        steps = steps_of(blocks, order=rz.order, all_blocks=rz.all_blocks, arch=arch)
        rows = select(read_manifest(data_dir), s.split, s.positives_only, rz.n_images)
        digest = weights_digest(model)
        refuse_repeats([o[1] for o in opened] + [model_dir], "--model", replicates, [o[8] for o in opened] + [digest])
        data = PreparedSplit(data_dir, s.split)
        work = keras.models.clone_model(model)
        work.set_weights(model.get_weights())
        adapter = ModelAdapter(work, batch_size=s.batch_size, input_channels=s.input_channels,
                               jit_compile=s.jit_compile, precision=s.precision, log=log)
        names = parse_methods(methods, adapter.has_class_maps, adapter.has_layers)
        all_steps = [("trained", [])] + steps
        tag = f"{k:02d}-{model_dir.name}"
        # step 0 is the trained model: its digest lets it share maps with `cxrsal saliency`
        metas = [{"model": str(model_dir.resolve()), "checkpoint": s.checkpoint, "data": data_dir,
                  "split": s.split, "image_ids": [r["image_id"] for r in rows],
                  "weights": digest if i == 0 else None, "trained_weights": digest, "model_name": model.name,
                  **store_identity(data_dir, adapter), "step": i, "step_name": step_name, "randomized": randomized,
                  "init": rz.init, "sigma": rz.sigma, "seed": rz.seed, "versions": versions()}
                 for i, (step_name, randomized) in enumerate(all_steps)]
        opened.append((k, model_dir, data_dir, model, arch, blocks, steps, rows, digest, data, adapter, names,
                       all_steps, tag, metas))
    claim(out, "randomize", {**cfg.map_settings(), **cfg.settings(*RANDOMIZATION_MAP_SETTINGS)},
          {f"model {o[0] + 1}": {"run": str(o[1].resolve()), "weights": o[8], "manifest": manifest_hash(o[2])}
           for o in opened})
    # every step store this run resumes, checked before the first is written
    for *_, adapter, names, all_steps, tag, metas in opened:
        records = method_records(names, cfg, adapter, wrap)
        for i, (step_name, _) in enumerate(all_steps):
            MapStore(out / "maps" / tag / f"step-{i:02d}-{step_name}").check(metas[i], records)
    remove_stale_tmp(out, recursive=True)
    plan = []
    for _, model_dir, data_dir, model, arch, blocks, steps, rows, _, data, adapter, names, all_steps, tag, metas \
            in opened:
        trained = [np.array(w) for w in model.get_weights()]
        log(f"{model_dir}: {arch}, {len(steps)} steps ({check_name(rz)}), "
            f"{len(rows)} images, methods {', '.join(names)}")
        for i, (step_name, randomized) in enumerate(all_steps):
            store = MapStore(out / "maps" / tag / f"step-{i:02d}-{step_name}")
            store.init(metas[i])
            ids = [r["image_id"] for r in rows]
            damaged = sum(store.drop_damaged(m, ids, log=log) for m in names if (store.path / m).exists())
            if not damaged and all((store.path / m).exists() and len(store.ids(m)) == len(rows) for m in names):
                continue   # finished before a kill
            apply_weights(adapter.model, trained, step_weights(model, blocks, randomized, init=rz.init, sigma=rz.sigma,
                                                      seed=rz.seed))
            sources = []
            if i == 0:
                sources = [MapStore(p) for p in [*remembered(model_dir), *maps]]
                remember(model_dir, store.path)
            fill_store(adapter, store, rows, data, names, cfg, progress=progress, log=log,
                       label=f"step {i} ({step_name}) ", sources=sources, wrap=wrap)
        plan.append((tag, model_dir, all_steps, names, rows))
    return analyse(out, plan, cfg, meta, log=log)


def analyse(out, plan, cfg, meta, *, log=print):
    """Tidy per-image table, curves, thresholds and PASS/FAIL from the step stores."""
    import pandas as pd
    from scipy.stats import spearmanr

    from ..metrics import degradation_threshold, ssim_score
    from ..metrics.complexity import bins_for
    from ..metrics.defined import is_constant, pair_similarity, threshold_reason
    from ..saliency.store import MapStore

    sim, rz, em = cfg.similarity, cfg.randomization, cfg.emprt
    ssim = lambda a, b: ssim_score(a, b, data_range=sim.data_range)
    rho = lambda a, b: spearmanr(a, b).statistic
    measured = similarities_of(rz)
    records, thresholds, bins_used = [], [], {}
    for tag, model_dir, all_steps, names, rows in plan:
        stores = [MapStore(out / "maps" / tag / f"step-{i:02d}-{name}") for i, (name, _) in enumerate(all_steps)]
        for method in names:
            channels = stores[0].params(method)["channels"]
            ids = [r["image_id"] for r in rows]
            trained = {i: stores[0].load(method, i) for i in ids}
            base = {i: similarity_map(trained[i], channels, sim.maps) for i in ids}
            ranks = {i: rank_map(trained[i], channels).ravel() for i in ids}
            bins = (bins_for([signed_2d(trained[i]["raw"], channels) for i in ids], em.bins)
                    if em.complexity == "histogram" else None)
            bins_used[(tag, method)] = bins
            # each similarity's degradation threshold, from pairs of distinct images' trained maps
            for metric, maps, measure in (("ssim", base, ssim), ("spearman", ranks, rho)):
                if metric not in measured:
                    continue
                flat = sum(is_constant(maps[i]) for i in ids)
                thr = degradation_threshold(np.stack([maps[i] for i in ids]), pairs_per_image=rz.pairs_per_image,
                                            pairs=rz.pairs or None, seed=rz.seed, data_range=sim.data_range,
                                            similarity=measure) if len(ids) > 1 else float("nan")
                thresholds.append(dict(model=tag, method=method, metric=metric, threshold=thr, images=len(ids),
                                       constant=flat, reason=threshold_reason(len(ids), flat, cfg.stats.min_images)))
            for k, store in enumerate(stores):
                for i in ids:
                    stored = trained[i] if k == 0 else store.load(method, i)
                    m, b = similarity_map(stored, channels, sim.maps), rank_map(stored, channels).ravel()
                    entropy = complexity_of(stored, channels, em.complexity, bins)
                    for metric, (value, why) in (("ssim", pair_similarity(base[i], m, ssim,
                                                                          undefined_when="reference")),
                                                 ("spearman", pair_similarity(ranks[i], b, rho,
                                                                              undefined_when="either")),
                                                 ("complexity", (entropy, "" if np.isfinite(entropy) else
                                                                 "no complexity (all-zero map)"))):
                        records.append(dict(image_id=i, model=tag, method=method, step=k, step_name=all_steps[k][0],
                                            metric=metric, value=float(value), constant=is_constant(m),
                                            undefined=why))
    table = pd.DataFrame.from_records(records)
    per_model = (table.groupby(["model", "method", "step", "step_name", "metric"])["value"].mean()
                 .reset_index(name="mean"))
    curves = (per_model.groupby(["method", "step", "step_name", "metric"])["mean"]
              .agg(mean="mean", sd="std", replicates="count").reset_index())
    curves = with_intervals(table, curves, ["method", "step", "step_name", "metric"], seed=rz.seed)
    thr = pd.DataFrame(thresholds)
    verdicts = []
    for metric in measured:
        last = curves[(curves.metric == metric) & (curves.step == curves.step.max())][["method", "ci_low", "ci_high"]]
        v = (threshold_verdicts(final_step(table, metric), thr[thr.metric == metric], cfg.stats.min_images)
             .merge(last, on="method", how="left").rename(columns={"ssim": "randomized"}))
        v.insert(0, "similarity", metric)
        verdicts.append(v)
    verdict = pd.concat(verdicts, ignore_index=True)
    verdict = verdict[["similarity", "method", "randomized", "ci_low", "ci_high", "threshold", "n", "result",
                       "reason"]]
    verdict.insert(0, "check", check_name(rz))
    from ..metrics import emprt_table

    emprt = emprt_table(table, min_images=cfg.stats.min_images)
    emprt.insert(1, "complexity", em.complexity)
    emprt.insert(2, "bins", [", ".join(sorted({str(b) for (_, m), b in bins_used.items() if m == method and b}))
                             for method in emprt.method])
    out.mkdir(parents=True, exist_ok=True)
    (out / "randomization.json").unlink(missing_ok=True)     # the marker `cxrsal stats` reads: written last
    for name, frame in (("randomization.csv", table), ("curves.csv", curves), ("thresholds.csv", thr),
                        ("verdicts.csv", verdict), ("emprt.csv", emprt)):
        write_frame(out / name, frame)
    write_frame(out / "randomization.parquet", table)
    decides = DECIDES[rz.check]
    plot_curves(curves, thr, out / "fig3a.png", title=check_name(rz), metric=decides)
    plot_complexity(curves, out / "fig_emprt.png", title=f"eMPRT {rz.order}", complexity=em.complexity)
    write_config(cfg, out)   # the settings used (randomization:, emprt:, similarity:, saliency:)
    atomic_write_text(out / "randomization.json", json.dumps(
        {"models": [str(p[1]) for p in plan], **meta, "check": check_name(rz), "order": rz.order,
         "similarity": decides, "choices_in_words": check_choices(rz, sim, em),
         "smoothing": ({"samples": rz.smooth_samples, "noise": rz.smooth_noise, "last_copy": "input"}
                       if rz.check == "smprt" else None),
         "emprt": {"complexity": em.complexity, "bins": em.bins,
                   "bins_used": {f"{t}/{m}": b for (t, m), b in bins_used.items() if b}},
         "data_range": sim.data_range, "maps": sim.maps,
         "pairs_per_image": rz.pairs_per_image, "pairs": rz.pairs, "seed": rz.seed,
         "n_images": len(plan[0][4]) if plan else 0}, indent=2) + "\n")
    log(check_choices(rz, sim, em) + "; threshold from "
        + (f"{rz.pairs} random pairs" if rz.pairs else f"{rz.pairs_per_image} partners per image"))
    for r in verdict.itertuples():
        log(f"{r.method:<8} randomized {SIMILARITY_NAMES[r.similarity]} {r.randomized:.3f} [{r.ci_low:.3f}, "
            f"{r.ci_high:.3f}] vs threshold {r.threshold:.3f}: {r.result}" + (f" ({r.reason})" if r.reason else "")
            + ("" if r.similarity == decides else " (alongside)"))
    if rz.check == "mprt":       # eMPRT is defined on the plain maps
        for r in emprt.itertuples():
            log(f"{r.method:<8} eMPRT complexity {r.trained:.3f} -> {r.randomized:.3f} nats (rise {r.rise:+.3f}, "
                f"p {r.p_value:.3g}): {r.result}" + (f" ({r.reason})" if r.reason else ""))
    return table, curves, thr, verdict


def final_step(table, metric="ssim"):
    """The rows of one similarity at each model's fully randomized step."""
    rows = table[table.metric == metric]
    return rows[rows.step == rows.groupby("model")["step"].transform("max")]


def threshold_verdicts(last, thresholds, min_images):
    """Per method: the mean of the defined SSIMs in `last` (one row per image and model, with its
    `undefined` reason), the mean threshold, and the verdict: PASS below the threshold,
    "undefined" with the reason when the threshold or the images are (`cxrsal.metrics.defined`)."""
    import pandas as pd

    from ..metrics.defined import UNDEFINED, counted, joined, texts, too_few

    rows = []
    for method, d in last.groupby("method", sort=False):
        values = d.value.to_numpy(float)
        ok = values[np.isfinite(values)]
        th = thresholds[thresholds.method == method]
        reasons = sorted({r for r in texts(th, "reason") if r})
        if th.threshold.isna().all() and not reasons:
            reasons = ["no threshold"]
        images = d[np.isfinite(values)].image_id.nunique()          # replicates share their images
        few = too_few(images, min_images)
        reason = joined(*reasons, joined(few, counted(texts(d, "undefined"), d.image_id)) if few else "")
        mean = float(ok.mean()) if len(ok) else float("nan")
        t = float(th.threshold.mean()) if len(th) else float("nan")
        result = UNDEFINED if reason else ("PASS" if mean < t else "FAIL")
        rows.append(dict(method=method, ssim=mean, threshold=t, n=images, result=result, reason=reason))
    return pd.DataFrame(rows, columns=["method", "ssim", "threshold", "n", "result", "reason"])


def with_intervals(table, summary, keys, *, seed=0, replicates=1000):
    """`summary` with `ci_low`, `ci_high`: 95 % image-level bootstrap intervals of each row's mean
    over images (an image's value: its mean over the models), all rows of one metric resampled
    with the same image sets (paired; `metrics.paired_intervals`)."""
    from ..metrics import paired_intervals

    rows = [k for k in keys if k != "metric"]
    ci = paired_intervals(table, rows, ["metric"], replicates=replicates, seed=seed)
    return summary.merge(ci if "metric" in keys else ci.drop(columns="metric"), on=keys, how="left")


def complexity_of(stored, channels, kind="histogram", bins=100):
    """eMPRT's complexity of a stored map (`emprt.complexity`): ``histogram``, the entropy of the
    histogram of its raw values in `bins` bins (channels summed with their signs: a map compared
    in 2-D); ``spatial``, the entropy of its |raw| map (channels: sum of |values|)."""
    from ..metrics.complexity import explanation_entropy, histogram_entropy

    if kind == "histogram":
        return histogram_entropy(signed_2d(stored["raw"], channels), bins)
    raw = np.abs(np.asarray(stored["raw"], np.float64))
    return explanation_entropy(raw.sum(axis=-1) if channels and raw.ndim == 3 else raw)
