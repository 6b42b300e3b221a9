"""`cxrsal score`: localization utility per image and method (AUPRC against the average mask and
the localization networks, [A] Table 2 and Fig 2), pointwise detection per method ([B]), and the
localization table as clinicians read it (AUPRC, hit rate, mIoU with intervals)."""

import functools
from pathlib import Path

import numpy as np

from ...experiments.score_baselines import score_baselines
from ...metrics.utility import utility_metrics
from ...saliency.base import METHODS, ordered
from ...metrics.defined import UNDEFINED
from .. import Rules
from ..plotting import png, pyplot
from ..questions import BOOTSTRAP, ids_of, keys_of, sets_per_model, versus_rows
from ..results import Figure, Output, ResultKind, register_result
from ..sources import NO_DATA, read_result_json, read_result_table, store_model_refs

# each registered baseline's question: the average mask is [A]'s low baseline, the localization
# networks (U-Net for SIIM, RetinaNet for RSNA) its high one
LOW_QUESTION, HIGH_QUESTION = "utility vs average mask", "utility vs localization network"
LOCALIZATION_METRICS = {m.name: m.label for m in utility_metrics(localization=True)}
LOCALIZATION_TITLE = "Localization as clinicians read it: AUPRC, hit rate and mIoU with 95% intervals"
LOCALIZATION_NOTE = ("Hit rate: the map's maximum inside the ground truth (pointing game); mIoU: IoU of the map "
                     "thresholded at the value tuned on the validation split's maps, never the test split's "
                     "(CheXlocalize, Saporta et al. 2022); `no data` without `cxrsal score --validation`. "
                     f"Intervals: {BOOTSTRAP} image-level bootstrap replicates, seed 0, the same images for every "
                     "method.")


def utility_tests(scores, rules=Rules()):
    """AUPRC of each method against the average mask and the localization networks (mixed model,
    one per scored model); PASS = significantly better, whichever the baseline."""
    rows = []
    if scores.empty:
        return rows
    auprc = scores[scores.metric == "auprc"]
    keys = keys_of(auprc, "model")
    for values, d in auprc.groupby(keys, sort=True):
        ids = ids_of(keys, values)
        for baseline in score_baselines():
            if baseline.method in set(d.method):
                question = HIGH_QUESTION if baseline.high else LOW_QUESTION
                rows += versus_rows(ids, question, ids.get("model", ""), d, baseline.method, rules)
    return rows


def flagged(frame, keys, per_row=1):
    """dataset, group, method, maps, constant of the saliency methods' rows of `frame`, one map per
    distinct `keys` (its `constant` flag: a bool, or the count of a pair's constant maps with
    `per_row` 2); rows without a flag (older results) are not counted; None when no row has one."""
    if frame.empty or "constant" not in frame.columns:
        return None
    d = frame[frame.method.astype(str).isin(METHODS.names())]
    d = d[d["constant"].notna()]
    if d.empty:
        return None
    flags = d.groupby(keys)["constant"].max().astype(float).reset_index()
    flags["maps"] = per_row
    return flags.groupby(["dataset", "group", "method"], as_index=False)[["maps", "constant"]].sum()


def constant_counts(frame, keys):
    """{keys' values: "c of n"}: of the distinct images of each group of score rows, how many had a
    constant map (the `constant` flag `cxrsal score` writes); {} when the table does not record it."""
    if frame.empty or "constant" not in frame.columns:
        return {}
    frame = frame[frame["constant"].notna()]           # older results record no flag: not counted
    if frame.empty:
        return {}
    per_image = frame.groupby([*keys, "image_id"])["constant"].max().astype(float)
    counts = per_image.groupby(level=list(range(len(keys)))).agg(["sum", "count"])
    return {k if isinstance(k, tuple) else (k,): f"{int(r['sum'])} of {int(r['count'])}" for k, r in counts.iterrows()}


def trained(frame):
    """The rows of the trained model (a score of a randomization step is not)."""
    if "step" in frame.columns:
        frame = frame[frame.step.astype(str) == "trained"]
    return frame


def interval_cell(interval, n=None):
    """[low, high] as a table cell: "undefined (1 image)" when it rests on fewer than two images
    (`n`), "no data" when missing."""
    if n is not None and 0 < n < 2:
        return f"{UNDEFINED} ({n} image)"
    if not interval or len(interval) != 2 or not all(np.isfinite(float(v)) for v in interval):
        return NO_DATA
    return f"[{float(interval[0]):.3f}, {float(interval[1]):.3f}]"


def localization_table(scores, replicates=BOOTSTRAP, seed=0):
    """Localization per scored model and method as clinicians read it beside AUPRC: mean AUPRC,
    hit rate (pointing game) and mIoU (threshold tuned on validation maps), each with its 95 %
    image-level bootstrap interval (paired: one set of resampled images for every method of a
    model). Positive images of the trained step; an image scored twice counts once."""
    import pandas as pd

    from ...metrics import paired_intervals

    columns = ["dataset", "group", "model", "method", "positives"]
    for name in LOCALIZATION_METRICS.values():
        columns += [name, f"{name} 95% CI"]
    columns.append("constant maps")
    if scores.empty:
        return pd.DataFrame(columns=columns)
    d = trained(scores[scores.metric.isin(list(LOCALIZATION_METRICS))])
    if "label" in d.columns:
        d = d[d.label == 1]
    keys = ["dataset", "group", "model", "method", "metric"]
    per_image = d.groupby([*keys, "image_id"])["value"].mean().reset_index()
    means = per_image.groupby(keys)["value"].agg(["mean", "count"])
    ci = paired_intervals(per_image, ["method"], ["dataset", "group", "model", "metric"], replicates=replicates,
                          seed=seed).set_index(keys)
    rows = {}
    scored = set(means.index.get_level_values("metric"))
    for metric, name in LOCALIZATION_METRICS.items():       # positives: of the first metric scored
        if metric not in scored:
            continue
        for (dataset, group, model, method, _), r in means.xs(metric, level="metric", drop_level=False).iterrows():
            row = rows.setdefault((dataset, group, model, method), {
                "dataset": dataset, "group": group, "model": model, "method": method, "positives": int(r["count"])})
            row[name] = float(r["mean"])
            c = ci.loc[(dataset, group, model, method, metric)]
            row[f"{name} 95% CI"] = interval_cell([c.ci_low, c.ci_high], int(r["count"]))
    flat = constant_counts(d, ["dataset", "group", "model", "method"])
    for key, row in rows.items():
        row["constant maps"] = flat.get(key, NO_DATA)
    order = {m: k for k, m in enumerate(ordered([m for m in {r[3] for r in rows} if m in METHODS]))}
    out = pd.DataFrame(sorted(rows.values(), key=lambda r: (r["dataset"], r["group"], r["model"],
                                                            order.get(r["method"], len(order)), r["method"])),
                       columns=columns)
    for c in columns[5:]:
        out[c] = out[c].astype(object).where(out[c].notna(), NO_DATA)
    return out


# ---------------------------------------------------------------- figures

def fig_utility(scores):
    """[A] Fig 2: AUPRC per method (positives) with the average-mask and localization baselines;
    diamonds: each method's mean with its 95 % image-level bootstrap interval (error bar)."""
    from ...metrics import paired_intervals

    plt = pyplot()
    auprc = scores[scores.metric == "auprc"]
    methods = [m for m in auprc.method.unique() if not m.startswith("baseline:")]
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(methods) + 2), 4))
    ax.boxplot([auprc[auprc.method == m].value for m in methods], tick_labels=methods)
    shown = auprc[auprc.method.isin(methods)]
    ci = paired_intervals(shown, ["method"], ["metric"]).set_index("method").reindex(methods)
    if ci.ci_low.notna().any():
        mean = shown.groupby(["method", "image_id"]).value.mean().groupby("method").mean().reindex(methods)
        ax.errorbar(np.arange(1, len(methods) + 1), mean, yerr=[mean - ci.ci_low, ci.ci_high - mean], fmt="D",
                    color="C3", markersize=4, capsize=3, label="mean, 95% bootstrap CI")
    for name, style in ((b.method, "-" if b.high else "--") for b in score_baselines()):
        d = auprc[auprc.method == name]
        if len(d):
            ax.axhline(d.value.mean(), linestyle=style, color="k" if style == "-" else "gray",
                       label=f"{name.split(':')[1]} ({d.value.mean():.3f})")
    ax.set_ylabel("AUPRC (positives)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png(fig)


def fig_overlays(store_path, n_images=3):
    """Each method's map over a few positive images, with the box/mask outline."""
    from ...data.manifest import read_manifest
    from ...data.pipeline import PreparedSplit, load_batch
    from ...saliency.overlay import overlay
    from ...saliency.store import MapStore

    plt = pyplot()
    store = MapStore(store_path)
    meta = store.meta
    methods = store.methods()
    rows = {r["image_id"]: r for r in read_manifest(meta["data"]) if r["split"] == meta["split"]}
    ids = [i for i in store.ids(methods[0]) if rows[i]["label"] == 1][:n_images]
    data = PreparedSplit(meta["data"], meta["split"])
    fig, axes = plt.subplots(len(ids), len(methods), figsize=(1.6 * len(methods), 1.7 * len(ids)), squeeze=False)
    for r, image_id in enumerate(ids):
        images, _, masks = load_batch(data, [rows[image_id]["index"]], meta["input_size"])
        for c, method in enumerate(methods):
            m = store.load(method, image_id)["processed"]
            axes[r, c].imshow(overlay(images[0, ..., 0], m, masks[0, ..., 0] > 0))
            axes[r, c].axis("off")
            if r == 0:
                axes[r, c].set_title(method, fontsize=8)
    fig.tight_layout()
    return png(fig)


def fig_pr_curve(store_path, method=None):
    """The precision-recall curve of one stored map against its mask (what AUPRC integrates)."""
    from ...data.manifest import read_manifest
    from ...data.pipeline import PreparedSplit
    from ...experiments.score_sheet import truth_masks
    from ...metrics import auprc_score, precision_recall_points
    from ...saliency.store import MapStore

    plt = pyplot()
    store = MapStore(store_path)
    meta = store.meta
    method = method or ("gcam" if "gcam" in store.methods() else store.methods()[0])
    rows = [r for r in read_manifest(meta["data"]) if r["split"] == meta["split"] and r["label"] == 1]
    row = next(r for r in rows if store.has(method, r["image_id"]))
    mask = truth_masks(meta["data"], PreparedSplit(meta["data"], meta["split"]), [row], meta["input_size"])[row["image_id"]]
    smap = store.load(method, row["image_id"])["processed"]
    p, r = precision_recall_points(mask, smap)
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.step(np.r_[0, r], np.r_[1, p], where="post")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"{method}, image {row['image_id'][:8]}: AP {auprc_score(mask, smap):.3f}", fontsize=9)
    fig.tight_layout()
    return png(fig)


@functools.lru_cache(maxsize=4)
def _richest_store(folders):
    """The store with the most methods (not a pointwise-only store of grid maps); `folders` a
    tuple (the overlays and the PR curve both draw from it: looked up once)."""
    from ...saliency.store import MapStore

    stores = [read_result_json(d / ScoreResult.marker, ScoreResult.command, keys=("maps",))["maps"] for d in folders]
    return max(stores, key=lambda p: len(MapStore(p).methods()) if (Path(p) / "store.json").exists() else -1)


# ---------------------------------------------------------------- the kind

@register_result
class ScoreResult(ResultKind):
    """`cxrsal score`: utility per image and method, pointwise detection per method."""
    name, marker, order = "score", "score.json", 0
    tables = {"scores": "scores.csv", "pointwise": "pointwise.csv"}
    columns = {"scores": ("image_id", "model", "method", "step", "metric", "value"),
               "pointwise": ("model", "method", "step", "n", "pointwise_ap")}
    command = "`cxrsal score`"
    sections = ("saliency", "ggcam", "score", "pointwise")
    questions = (LOW_QUESTION, HIGH_QUESTION)

    def model_refs(self, meta):
        return store_model_refs(meta)

    def tests(self, tables, rules):
        return utility_tests(tables["scores"], rules)

    def posthoc_sets(self, tables):
        scores = tables["scores"]
        return sets_per_model(scores[scores.metric == "auprc"], "utility") if not scores.empty else []

    def constant_maps(self, tables):
        """The trained model's maps scored (every image a map once per method), constant ones flagged."""
        return flagged(trained(tables["scores"]), ["dataset", "group", "model", "image_id", "method"])

    def outputs(self, tables, res):
        return [Output("localization", LOCALIZATION_TITLE, localization_table(tables["scores"]), LOCALIZATION_NOTE)]

    def figures(self, folders, res):
        scores = read_tables(folders)
        out = []
        if (scores.metric == "auprc").any():
            out.append(Figure("fig2_utility", "Utility per method with the average-mask and localization baselines "
                                              "([A] Fig 2)", fig_utility(scores)))
        store = _richest_store(tuple(folders))
        out.append(Figure("overlays", "Each method's map with the ground-truth outline", fig_overlays(store)))
        out.append(Figure("pr_curve", "Precision-recall curve of one map", fig_pr_curve(store)))
        return out

    def provenance_files(self, folder):
        store = Path(read_result_json(Path(folder) / self.marker, self.command).get("maps", "")) / "store.json"
        return super().provenance_files(folder) + ([store] if store.is_file() else [])


def read_tables(folders):
    """The scores.csv of score folders, pooled."""
    import pandas as pd

    return pd.concat([read_result_table(d / "scores.csv", ("image_id", "model", "method", "metric", "value"),
                                        ScoreResult.command) for d in folders], ignore_index=True)
