"""`cxrsal faithfulness`: ROAD (Rong et al., ICML 2022) and deletion / insertion (Petsiuk et al.,
BMVC 2018) per image and method; Table 2's "faithfulness vs random": a method PASSES when its ROAD
gap (LeRF - MoRF area) is significantly above the `random` control's (mixed model, paired by image)."""

from pathlib import Path

import numpy as np

from .. import Rules
from ..plotting import png, pyplot
from ..questions import BOOTSTRAP, ids_of, keys_of, sets_per_model, versus_rows
from ..results import Figure, Output, ResultKind, register_result
from ..sources import read_result_table, store_model_refs

QUESTION = "faithfulness vs random"
REFERENCE = "random"
METRICS = {"road_gap": "ROAD gap (LeRF - MoRF)", "road_morf": "ROAD MoRF area", "road_lerf": "ROAD LeRF area",
           "deletion": "deletion AUC", "insertion": "insertion AUC"}
TITLE = "Faithfulness: ROAD, deletion and insertion with 95% intervals"
NOTE = ("ROAD (Rong et al., ICML 2022): the explained class's probability as the most (MoRF) or least (LeRF) relevant "
        "pixels of the raw map are removed and filled by noisy linear imputation; a faithful map makes it fall faster "
        "under MoRF: the gap LeRF - MoRF is higher. Deletion (lower is better) and insertion (higher is better) AUC "
        f"(Petsiuk et al., BMVC 2018). Positive images; intervals: {BOOTSTRAP} image-level bootstrap replicates, "
        "seed 0, the same images for every method. Table 2's \"faithfulness vs random\" compares each method's ROAD "
        "gap with the random control's.")


def faithfulness_tests(table, rules=Rules()):
    """The ROAD gap of each method against the `random` control's (mixed model per scored model;
    the other controls each in a fit of their own); PASS = significantly higher."""
    rows = []
    if table.empty:
        return rows
    gap = table[table.metric == "road_gap"]
    keys = keys_of(gap, "model")
    for values, d in gap.groupby(keys, sort=True):
        ids = ids_of(keys, values)
        if REFERENCE in set(d.method):
            rows += versus_rows(ids, QUESTION, ids.get("model", ""), d, REFERENCE, rules)
    return rows


def faithfulness_table(table, replicates=BOOTSTRAP, seed=0):
    """Per data set, group, model and method: each metric's mean over the positive images with
    its paired bootstrap interval."""
    import pandas as pd

    from ...metrics import paired_intervals
    from ...saliency.base import METHODS, ordered

    columns = ["dataset", "group", "model", "method", "images"]
    for label in METRICS.values():
        columns += [label, f"{label} 95% CI"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    keys = ["dataset", "group", "model", "method", "metric"]
    means = table.groupby(keys)["value"].agg(["mean", "count"])
    ci = paired_intervals(table, ["method"], ["dataset", "group", "model", "metric"], replicates=replicates,
                          seed=seed).set_index(keys)
    rows = {}
    for (dataset, group, model, method, metric), r in means.iterrows():
        if metric not in METRICS:
            continue
        row = rows.setdefault((dataset, group, model, method), dict(dataset=dataset, group=group, model=model,
                                                                   method=method, images=int(r["count"])))
        row[METRICS[metric]] = float(r["mean"])
        c = ci.loc[(dataset, group, model, method, metric)] if len(ci) else None
        row[f"{METRICS[metric]} 95% CI"] = ("no data" if c is None or not np.isfinite([c.ci_low, c.ci_high]).all()
                                            else f"[{c.ci_low:.3f}, {c.ci_high:.3f}]")
    order = {m: k for k, m in enumerate(ordered([m for m in {k[3] for k in rows} if m in METHODS]))}
    out = sorted(rows.values(), key=lambda r: (r["dataset"], r["group"], r["model"], order.get(r["method"], 1e9),
                                               r["method"]))
    return pd.DataFrame(out, columns=columns)


def fig_curves(curves):
    """The mean curves per method (MoRF, LeRF, deletion, insertion), each with its 95 % image-level
    bootstrap band."""
    from ...metrics import paired_intervals
    from ...saliency.base import METHODS, ordered

    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), sharey=True)
    methods = ordered([m for m in curves.method.unique() if m in METHODS]) + sorted(
        m for m in curves.method.unique() if m not in METHODS)
    titles = {"morf": "ROAD MoRF (lower = more faithful)", "lerf": "ROAD LeRF (higher = more faithful)",
              "deletion": "deletion (lower is better)", "insertion": "insertion (higher is better)"}
    for ax, (curve, title) in zip(axes, titles.items()):
        d = curves[curves.curve == curve]
        if d.empty:
            ax.set_visible(False)
            continue
        ci = paired_intervals(d, ["method"], ["x"], replicates=200, seed=0)
        for k, m in enumerate(methods):
            dm = d[d.method == m]
            if dm.empty:
                continue
            mean = dm.groupby("x").value.mean()
            style = "--" if m in METHODS and getattr(METHODS.get(m), "control", False) else "-"
            ax.plot(mean.index, mean.values, style, color=f"C{k % 10}", label=m)
            band = ci[ci.method == m].set_index("x").reindex(mean.index)
            if band.ci_low.notna().any():
                ax.fill_between(mean.index, band.ci_low, band.ci_high, color=f"C{k % 10}", alpha=0.15)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("fraction of pixels")
    axes[0].set_ylabel("explained class probability")
    axes[-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return png(fig)


@register_result
class FaithfulnessResult(ResultKind):
    """`cxrsal faithfulness`: per image and method the areas under ROAD's, deletion's and
    insertion's curves."""
    name, marker, order = "faithfulness", "faithfulness.json", 4
    tables = {"faithfulness": "faithfulness.csv"}
    columns = {"faithfulness": ("image_id", "model", "method", "metric", "value")}
    command = "`cxrsal faithfulness`"
    sections = ("faithfulness",)
    questions = (QUESTION,)
    absent = "run `cxrsal faithfulness` on a map store holding the random control (`--methods study,controls`)"

    def model_refs(self, meta):
        return store_model_refs(meta)

    def tests(self, tables, rules):
        return faithfulness_tests(tables["faithfulness"], rules)

    def posthoc_sets(self, tables):
        t = tables["faithfulness"]
        return sets_per_model(t[t.metric == "road_gap"], "faithfulness") if not t.empty else []

    def outputs(self, tables, res):
        return [Output("faithfulness", TITLE, faithfulness_table(tables["faithfulness"]), NOTE)]

    def figures(self, folders, res):
        out = []
        for k, folder in enumerate(folders):
            path = Path(folder) / "curves.csv"
            curves = read_result_table(path, ("image_id", "model", "method", "curve", "x", "value"),
                                       self.command) if path.is_file() else None
            if curves is not None and len(curves):
                where = f"{Path(folder).parent.name}/{Path(folder).name}"
                out.append(Figure(f"faithfulness_curves_{k}", f"Faithfulness curves per method ({where}): mean and "
                                                              "95% bootstrap band", fig_curves(curves)))
        return out
