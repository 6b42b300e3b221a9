"""`cxrsal report`: one self-contained HTML page (figures embedded) plus Markdown."""

import base64
import functools
import html
import io
from pathlib import Path

import numpy as np

from ..files import atomic_path, atomic_write_text, read_json, read_table, remove_stale_tmp
from ..registry import Registry

# figure name (named by the result kinds, cxrsal.stats.results) -> fn(folders of that kind, stats
# results) giving (caption, png) or None
FIGURES = Registry("report figure")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _plt().close(fig)
    return buf.getvalue()


def fig_utility(scores):
    """[A] Fig 2: AUPRC per method (positives) with the average-mask and localization baselines;
    diamonds: each method's mean with its 95 % image-level bootstrap interval (error bar)."""
    from ..metrics import paired_intervals

    plt = _plt()
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
    for name, style in (("baseline:avg", "--"), ("baseline:detector", "-"), ("baseline:segmentation", "-")):
        d = auprc[auprc.method == name]
        if len(d):
            ax.axhline(d.value.mean(), linestyle=style, color="k" if style == "-" else "gray",
                       label=f"{name.split(':')[1]} ({d.value.mean():.3f})")
    ax.set_ylabel("AUPRC (positives)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _rand_table(rand_dir, name, columns):
    return read_table(Path(rand_dir) / name, columns,
                      remedy=f"run `cxrsal randomize` into {rand_dir} again to rewrite it")


def _drawn(draw, *args, **kw):
    """The PNG bytes a plotting function writes to a path (a temporary one: results folders are
    read, never written, by the report)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figure.png"
        draw(*args, path, **kw)
        return path.read_bytes()


def fig_randomization(rand_dir, title=""):
    from ..experiments.randomization import plot_curves

    curves = _rand_table(rand_dir, "curves.csv", ("method", "step", "step_name", "metric", "mean"))
    thresholds = _rand_table(rand_dir, "thresholds.csv", ("method", "threshold"))
    return _drawn(plot_curves, curves, thresholds, title=title)


def fig_complexity(rand_dir, title=""):
    from ..experiments.randomization import plot_complexity

    curves = _rand_table(rand_dir, "curves.csv", ("method", "step", "step_name", "metric", "mean"))
    if not (curves.metric == "complexity").any():
        return None
    return _drawn(plot_complexity, curves, title=title)


def _check_of(rand_dir):
    """The sanity check of a randomization folder ("MPRT top-down" for folders before checks)."""
    meta = read_json(Path(rand_dir) / "randomization.json",
                     remedy=f"run `cxrsal randomize` into {rand_dir} again to rewrite it")
    return meta.get("check") or "MPRT top-down"


def _slug(text):
    return "".join(c if c.isalnum() else "_" for c in text.lower())


def fig_overlays(store_path, n_images=3):
    """Each method's map over a few positive images, with the box/mask outline."""
    from ..data.manifest import read_manifest
    from ..data.pipeline import PreparedSplit, load_batch
    from ..saliency.overlay import overlay
    from ..saliency.store import MapStore

    plt = _plt()
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
    return _png(fig)


def fig_pr_curve(store_path, method=None):
    """The precision-recall curve of one stored map against its mask (what AUPRC integrates)."""
    from ..data.manifest import read_manifest
    from ..data.pipeline import PreparedSplit
    from ..experiments.scoring import truth_masks
    from ..metrics import auprc_score, precision_recall_points
    from ..saliency.store import MapStore

    plt = _plt()
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
    return _png(fig)


def _score_tables(folders):
    import pandas as pd

    return pd.concat([read_table(d / "scores.csv", ("image_id", "model", "method", "metric", "value"),
                                 remedy=f"run `cxrsal score` into {d} again to rewrite it") for d in folders],
                     ignore_index=True)


@functools.lru_cache(maxsize=4)
def _richest_store(folders):
    """The store with the most methods (not a pointwise-only store of grid maps); `folders` a
    tuple (the overlays and the PR curve both draw from it: looked up once)."""
    from ..saliency.store import MapStore

    stores = [read_json(d / "score.json", keys=("maps",), remedy=f"run `cxrsal score` into {d} again to rewrite it")
              ["maps"] for d in folders]
    return max(stores, key=lambda p: len(MapStore(p).methods()) if (Path(p) / "store.json").exists() else -1)


@FIGURES.register("fig2_utility")
def _fig2(folders, res):
    scores = _score_tables(folders)
    if (scores.metric == "auprc").any():
        return ("Utility per method with the average-mask and localization baselines ([A] Fig 2)",
                fig_utility(scores))
    return None


@FIGURES.register("overlays")
def _overlays(folders, res):
    return "Each method's map with the ground-truth outline", fig_overlays(_richest_store(tuple(folders)))


@FIGURES.register("pr_curve")
def _pr(folders, res):
    return "Precision-recall curve of one map", fig_pr_curve(_richest_store(tuple(folders)))


@FIGURES.register("fig3a_randomization")
def _fig3a(folders, res):
    """One figure per randomization folder (check and order); [A]'s (MPRT top-down) keeps the name
    fig3a_randomization."""
    out, seen = [], set()
    for d in folders:
        check = _check_of(d)
        key = "fig3a_randomization" if check == "MPRT top-down" else f"randomization_{_slug(check)}"
        if key in seen:
            key = f"{key}_{len(seen)}"
        seen.add(key)
        what = ("Cascading randomization ([A] Fig 3a)" if check == "MPRT top-down" else f"{check} randomization")
        out.append((key, f"{what}: SSIM with the trained maps per step, error bars: 95% bootstrap interval; "
                         f"dotted: degradation thresholds ({d.name})", fig_randomization(d, title=check)))
    return out


@FIGURES.register("emprt")
def _emprt(folders, res):
    """eMPRT: explanation complexity per step, one figure per MPRT folder."""
    out = []
    for d in folders:
        check = _check_of(d)
        if not check.startswith("MPRT"):
            continue
        png = fig_complexity(d, title="e" + check)
        if png is not None:
            out.append((f"emprt_{_slug(check)}", f"e{check}: explanation complexity (entropy of the normalized "
                                                  f"|map|) per step ({d.name})", png))
    return out


# figures shown in the "Sanity checks" section instead of the list of figures
SANITY_FIGURES = ("fig3a_randomization", "emprt")


def _provenance(found):
    """Resolved configs and versions behind every number: each result folder's config.yaml and
    marker file, then what its kind adds (a score's map store)."""
    from ..stats.results import kinds

    items, extra = [], []
    for kind in sorted(kinds(), key=lambda k: k.name != "runs"):     # run cards first
        for d in found[kind.name]:
            for name in ("config.yaml", kind.marker, "data.json" if kind.name == "runs" else None):
                if name and (d / name).exists():
                    items.append((f"{d}/{name}", (d / name).read_text()))
            extra += [(str(p), Path(p).read_text()) for p in kind.extra_files(d)]
    return items + extra


def _lines_html(lines):
    """Text lines of a table section: "- " lines become a list, the others paragraphs."""
    parts, items = [], []
    for line in lines + [""]:
        if line.startswith("- "):
            items.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if items:
            parts.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if line:
            parts.append(f"<p>{html.escape(line)}</p>")
    return "".join(parts)


def build_report(dirs, out, *, log=print, posthoc="mixedlm"):
    """Stats, tables, figures and provenance into OUT/report.html and OUT/report.md.

    `posthoc` ("mixedlm" or "tukey") is passed to `run_stats`.
    """
    from ..stats.results import kinds
    from ..stats.study import (FINDINGS_TITLE, LOCALIZATION_NOTE, LOCALIZATION_TITLE, NO_DATA, SANITY_TITLE,
                               TABLE1_TITLE, TABLE1_UTILITY_TITLE, markdown, run_stats, sanity_meanings,
                               table2_sections, tables_markdown)

    out = Path(out)
    remove_stale_tmp(out, recursive=True)
    res = run_stats(dirs, out / "stats", posthoc=posthoc, log=log)
    found = res["found"]
    figures = {}
    sanity_figures = {}
    for kind in kinds():
        for name in kind.figures if found[kind.name] else ():
            drawn = FIGURES.get(name)(found[kind.name], res)
            if drawn is None:
                continue
            # a figure function gives (caption, png), or a list of (key, caption, png)
            for key, caption, png in (drawn if isinstance(drawn, list) else [(name, *drawn)]):
                (sanity_figures if name in SANITY_FIGURES else figures)[key] = (caption, png)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for key, (_, png) in {**figures, **sanity_figures}.items():
        with atomic_path(out / "figures" / f"{key}.png") as tmp:
            tmp.write_bytes(png)
    # the report is drawn anew each time: a figure of an earlier report on other results goes
    for stale in set((out / "figures").glob("*.png")) - {out / "figures" / f"{k}.png" for k in {**figures,
                                                                                                **sanity_figures}}:
        stale.unlink(missing_ok=True)
    prov = _provenance(found)
    t1, t1u, tests = res["table1"], res["table1_utility"], res["tests"]

    md = ["# cxrsal report", "", tables_markdown(res)]
    for key, (caption, _) in sanity_figures.items():
        md += [f"### {caption}", "", f"![{key}](figures/{key}.png)", ""]
    md += ["## Statistical tests", "",
           markdown(tests.round(4)) if len(tests) else "no tests (no results with baselines)", ""]
    for key, (caption, _) in figures.items():
        md += [f"## {caption}", "", f"![{key}](figures/{key}.png)", ""]
    md += ["## Configs and versions", ""]
    for name, text in prov:
        md += [f"### {name}", "", "```", text.strip(), "```", ""]
    atomic_write_text(out / "report.md", "\n".join(md))

    def table_html(df):
        # a wide table scrolls inside its box instead of widening the page
        return ("<div class='wide'>" + df.to_html(index=False, border=0, classes="t", na_rep="",
                                                  float_format=lambda v: f"{v:.3f}") + "</div>")

    def figure_html(key, caption, png, level=2):
        return (f"<h{level}>{html.escape(caption)}</h{level}><figure id='{key}'><img alt='{key}' "
                f"src='data:image/png;base64,{base64.b64encode(png).decode()}'/></figure>")

    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'><title>cxrsal report</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table.t{border-collapse:collapse}div.wide{max-width:100%;overflow-x:auto}"
             "table.t td,table.t th{border:1px solid #ccc;padding:3px 6px;font-size:12px}"
             "figure{margin:0}img{max-width:100%;height:auto}"
             "pre{background:#f6f6f6;padding:6px;font-size:11px;overflow:auto}</style></head><body>",
             "<h1>cxrsal report</h1>"]
    sections = table2_sections(res)
    if not sections:
        parts.append(f"<h2>Table 2 ([A])</h2><p>{NO_DATA}</p>")
    for title, before, rows, after in sections:
        parts += [f"<h2>{html.escape(title)}</h2>", _lines_html(before),
                  table_html(rows) if len(rows) else f"<p>{NO_DATA}</p>", _lines_html(after)]
    loc = res["localization"]
    for title, table in ((TABLE1_TITLE, t1), (TABLE1_UTILITY_TITLE, t1u),
                         (LOCALIZATION_TITLE, loc.drop(columns=["group"]) if len(loc) else loc),
                         (FINDINGS_TITLE, res["findings"])):
        parts += [f"<h2>{html.escape(title)}</h2>", table_html(table) if len(table) else f"<p>{NO_DATA}</p>"]
        if title == LOCALIZATION_TITLE and len(loc):
            parts.append(f"<p>{html.escape(LOCALIZATION_NOTE)}</p>")
    sanity = res["sanity"]
    parts.append(f"<h2 id='sanity'>{html.escape(SANITY_TITLE)}</h2>")
    if len(sanity):
        parts += [table_html(sanity), _lines_html(sanity_meanings(sanity))]
    else:
        parts.append(f"<p>{NO_DATA}: run `cxrsal randomize` (any --order, --smooth-samples) or `cxrsal compare` "
                     "of a model and its `--permute-labels` twin</p>")
    for key, (caption, png) in sanity_figures.items():
        parts.append(figure_html(key, caption, png, level=3))
    parts += ["<h2>Statistical tests</h2>", table_html(tests) if len(tests) else "<p>no tests</p>"]
    for key, (caption, png) in figures.items():
        parts.append(figure_html(key, caption, png))
    parts.append("<h2>Configs and versions</h2>")
    for name, text in prov:
        parts.append(f"<h3>{html.escape(name)}</h3><pre>{html.escape(text)}</pre>")
    parts.append("</body></html>")
    atomic_write_text(out / "report.html", "\n".join(parts))
    log(f"report: {out / 'report.html'} ({len(figures) + len(sanity_figures)} figures)")
    return out / "report.html"
