"""The papers beside your run: every figure [A] and [B] publish (`published.csv`, shipped with
cxrsal, each row with the table or section it comes from) next to this run's figure for the same
metric, matched by role, not by name: [A]'s InceptionV3 is the run's mapped model whatever its
architecture, its replicate the mapped model's other replicate, its DenseNet121 the run's
reproducibility model, its U-Net or RetinaNet the run's chosen localization network; [B]'s rows
match the run's Table 1 row of the same backbone and head. Each side's architecture is shown, and
Table 2's verdicts are set side by side with a mark where they differ ("undefined here" where
this run's verdict is undefined).

The papers' figures are real-data figures (Kaggle RSNA stage 2, SIIM-ACR, 320 px,
ImageNet-pretrained backbones): beside a run on other or synthetic data they are a reference,
not an expectation.

A role is a mapping (what `cxrsal study` knows of each data set):
    kind          rsna or siim (the papers' data sets; other kinds have no published figures)
    dataset       the data set's id in the tables (the manifest digest's first 12 characters)
    results       its results folder (score-*, repeatability, reproducibility, randomization)
    models, baselines   its run folders
    mapped        (model name, run name) of the mapped model; replicate, reproducibility: run names
    localization  the chosen localization network's run name; localizations: all of them
    synthetic     True when the data came from `cxrsal synth`
"""

import csv
from pathlib import Path

from ..metrics.defined import UNDEFINED

PUBLISHED = Path(__file__).with_name("published.csv")
# the papers' baseline names -> the methods of cxrsal's score and compare tables
SCORE_BASELINE = {"avg": "baseline:avg", "retinanet": "baseline:detector", "unet": "baseline:segmentation"}
COMPARE_BASELINE = {"retinanet": "baseline:localization", "unet": "baseline:localization"}
DIFFERS = "differs"
UNDECIDED = "undefined here"     # this run's verdict is undefined: it neither agrees nor differs
REFERENCE_NOTE = ("The papers' figures are real-data figures (Kaggle RSNA stage 2, SIIM-ACR, 320 px, "
                  "ImageNet-pretrained backbones): a reference for this run, not an expectation.")
SYNTHETIC_NOTE = ("This run's data are synthetic (`cxrsal synth`): the papers' column holds real-data figures, "
                  "not expectations for synthetic data.")


def read_published(path=PUBLISHED):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _frame(path):
    import pandas as pd

    return pd.read_csv(path) if Path(path).is_file() else None


def _card(folder):
    from ..runs import read_card

    return read_card(folder) if folder and Path(folder).exists() else None


def _arch(card, run):
    return f"{card.get('arch', '?')} ({run})" if card else run


def _mean(frame, **where):
    if frame is None:
        return None
    rows = frame
    for k, v in where.items():
        rows = rows[rows[k] == v]
    return float(rows["value"].mean()) if len(rows) else None


class _Run:
    """This run's figures of one data set, read from its folders."""

    def __init__(self, role):
        self.role = role
        r = Path(role["results"])
        entry, run = role["mapped"]
        self.scores = _frame(r / f"score-{run}" / "scores.csv")
        self.repeat = _frame(r / "repeatability" / "compare.csv")
        self.reprod = _frame(r / "reproducibility" / "compare.csv")
        self.random = _frame(r / "randomization" / "randomization.csv")
        self.thresholds = _frame(r / "randomization" / "thresholds.csv")
        models, baselines = Path(role["models"]), Path(role["baselines"])
        self.cards = {"mapped": _card(models / run), "replicate": role.get("replicate") and _card(models / role["replicate"]),
                      "reproducibility": role.get("reproducibility") and _card(models / role["reproducibility"]),
                      "localization": role.get("localization") and _card(baselines / role["localization"])}
        self.names = {"mapped": run, "replicate": role.get("replicate"), "reproducibility": role.get("reproducibility"),
                      "localization": role.get("localization")}

    def shown(self, who):
        return _arch(self.cards.get(who), self.names.get(who) or "none")

    def figure(self, metric, method, model):
        """(value, this run's model as shown) or None."""
        high = method in COMPARE_BASELINE
        if metric in ("utility AUPRC", "utility AUROC"):
            m = SCORE_BASELINE.get(method, method)
            value = _mean(self.scores, method=m, metric=metric.split()[1].lower(), label=1) \
                if self.scores is not None else None
            return value, self.shown("localization" if high else "mapped")
        if metric == "repeatability SSIM":
            value = _mean(self.repeat, method=COMPARE_BASELINE.get(method, method), metric="ssim")
            return value, (" vs ".join(self.role.get("localizations") or []) if high
                           else f"{self.shown('mapped')} vs {self.names['replicate']}")
        if metric == "reproducibility SSIM":
            value = _mean(self.reprod, method=COMPARE_BASELINE.get(method, method), metric="ssim")
            return value, f"{self.shown('mapped')} vs {self.shown('reproducibility')}"
        if metric == "SSIM fully randomized" and self.random is not None:
            last = self.random["step"].max()
            return _mean(self.random, method=method, metric="ssim", step=last), self.shown("mapped")
        if metric == "degradation threshold" and self.thresholds is not None:
            rows = self.thresholds[self.thresholds["method"] == method]
            return (float(rows["threshold"].mean()) if len(rows) else None), self.shown("mapped")
        if metric == "test AUC":
            who = {"inceptionv3": "mapped", "inceptionv3 replicate": "replicate", "densenet121": "reproducibility",
                   "unet": "localization", "retinanet": "localization"}.get(model)
            card = self.cards.get(who) if who else None
            return ((card or {}).get("metrics", {}).get("test_auc"), self.shown(who)) if who else (None, "")
        return None, ""


def _verdict(table2, dataset, arch, method, column):
    if table2 is None or column not in getattr(table2, "columns", ()):
        return None
    rows = table2[(table2["dataset"] == dataset) & (table2["model"] == arch) & (table2["method"] == method)]
    return str(rows[column].iloc[0]) if len(rows) else None


def _b_row(table1, table1_utility, dataset, backbone, head, metric, method):
    """[B]'s figure from the run's Table 1 row of the same backbone and head."""
    if metric in ("test AUC", "pointwise AP") and table1 is not None:
        rows = table1[(table1["dataset"] == dataset) & (table1["backbone"] == backbone) & (table1["head"] == head)]
        value = rows[metric].iloc[0] if len(rows) and metric in rows else None
        return value, (f"{backbone} {head} ({rows['run'].iloc[0]})" if len(rows) else "")
    if metric == "utility AUPRC" and table1_utility is not None:
        rows = table1_utility[(table1_utility["dataset"] == dataset) & (table1_utility["backbone"] == backbone)
                              & (table1_utility["head"] == head)]
        column = {"avg": "average mask", "retinanet": "RetinaNet heatmap"}.get(method, method)
        value = rows[column].iloc[0] if len(rows) and column in rows else None
        return value, (f"{backbone} {head} ({rows['run'].iloc[0]})" if len(rows) else "")
    return None, ""


def _number(value):
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if v != v else v


def beside(roles, tables, published=None):
    """[(title, notes, frame)]: per data set of a published kind, the papers' figures beside this
    run's (`tables`: the stats tables table2, table1, table1_utility)."""
    import pandas as pd

    published = read_published() if published is None else published
    out = []
    for role in roles:
        kind = role.get("kind")
        if kind not in ("rsna", "siim"):
            continue
        run = _Run(role)
        mapped_card = run.cards["mapped"] or {}
        arch = mapped_card.get("arch")
        rows = []
        for p in published:
            if p["dataset"] != kind:
                continue
            metric, method, model = p["metric"], p["method"], p["model"]
            paper = p["value"]
            if p["study"] == "A" and metric in tables["table2"].columns:
                value = _verdict(tables["table2"], role["dataset"], arch, method, metric)
                shown = run.shown("mapped")
            elif p["study"] == "A":
                value, shown = run.figure(metric, method, model)
            else:
                backbone, _, head = model.partition(" ")
                value, shown = _b_row(tables.get("table1"), tables.get("table1_utility"), role["dataset"], backbone,
                                      head, metric, method)
            verdict = paper in ("PASS", "FAIL")
            number = None if verdict else _number(value)
            if (verdict and not isinstance(value, str)) or (not verdict and number is None):
                continue            # this run has no figure for it
            if p["study"] == "A" and method in COMPARE_BASELINE:
                model = method                      # the localization network's own figure
            elif metric == "reproducibility SSIM":
                model = f"{model} vs densenet121"
            rows.append({"study": f"[{p['study']}]", "metric": metric, "method": method or "",
                         "paper model": model, "paper": paper + (f" ± {p['sd']}" if p.get("sd") else ""),
                         "this run's model": shown,
                         "this run": value if verdict else f"{number:.3f}",
                         "": (UNDECIDED if value == UNDEFINED else DIFFERS) if verdict and value != paper else "",
                         "source": p["source"]})
        if not rows:
            continue
        notes = [REFERENCE_NOTE] + ([SYNTHETIC_NOTE] if role.get("synthetic") else [])
        out.append((f"The papers beside this run: {kind} ({role['name']})", notes, pd.DataFrame(rows)))
    return out
