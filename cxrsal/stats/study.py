"""`cxrsal stats`: every question of [A] over whatever results exist, one Table 2 per data set x
model group (never pooled), Table 1 ([B]), the choices in force, saying which cells lack data."""

import re
from pathlib import Path

import numpy as np

from ..data.manifest import MANIFEST_FILE, manifest_hash
from ..errors import CxrsalError
from ..files import atomic_path, read_json, read_table, remove_stale_tmp, write_frame
from ..metrics.similarity import LOW_BASELINE
from ..runs import CARD_FILE, read_card
from ..saliency.base import METHODS, ordered, study_methods
from .results import RESULTS, ResultKind, kinds, register_result, table_names
from . import ALPHA, POSTHOC, better_than, finding, mixed_model, one_sample, tukey, vs_threshold  # noqa: F401 (tukey, one_sample: re-exported)

HIGH = ("baseline:detector", "baseline:segmentation")
LOCALIZATION = "baseline:localization"
UNKNOWN = "unknown"
NO_DATA = "no data"
TESTS_COLUMNS = ("dataset", "group", "question", "model", "method", "comparison", "estimate", "ci_low", "ci_high",
                 "p_value", "test", "finding", "decision", "source")
TABLE2_COLUMNS = ("utility vs average mask", "utility vs localization network", "trained vs randomized",
                  "repeatability vs 0.5", "repeatability vs localization network", "reproducibility vs 0.5",
                  "reproducibility vs localization network", "data randomization")
# [A]'s one sanity check (cascading randomization, top-down) is Table 2's "trained vs randomized"
A_CHECK = "MPRT top-down"
ORDERS = ("top-down", "bottom-up", "independent")
# the sanity checks published since [A], in the order of the report's "Sanity checks" table
SANITY_COLUMNS = tuple(f"{test} {order}" for order in ORDERS for test in ("MPRT", "sMPRT", "eMPRT")) + (
    "data randomization",)
SANITY_MEANING = {
    "MPRT": "the maps of the fully randomized model are less similar (SSIM) to the trained model's than two "
            "different images' maps are: the method depends on what the model learnt",
    "sMPRT": "as MPRT, every map first averaged over noisy copies of the input, so that noise in the maps cannot "
             "make them look changed (Hedstroem et al. 2023)",
    "eMPRT": "the maps' complexity (entropy of the normalized |map|) rises significantly from the trained to the "
             "fully randomized model (paired one-sided Wilcoxon), no similarity measure needed "
             "(Hedstroem et al. 2023)",
    "data randomization": "the maps of a model trained on permuted labels are less similar to the true model's "
                          "than two different images' maps are: the method depends on the labels the model "
                          "learnt from (Adebayo et al. 2018)",
}
BOOTSTRAP = 1000    # image-level replicates of every interval of a mean
POOLING = "Results of different data sets or architectures are never pooled: each Table 2 holds one group."


def discover(dirs):
    """Result folders under `dirs` (any depth): score, randomization, compare outputs and run cards."""
    found = {kind.name: [] for kind in kinds()}
    for d in dirs:
        d = Path(d)
        if not d.exists():
            raise CxrsalError(f"--results {d}: no such folder")
        for kind in kinds():
            found[kind.name] += sorted(p.parent for p in d.rglob(kind.marker))
    if not any(found.values()):
        raise CxrsalError(f"--results {', '.join(map(str, dirs))}: no results (score, randomize, compare or "
                          "train outputs) found")
    return found


# ---------------------------------------------------------------- where each result comes from

def _read_json(path, command="the command that wrote it"):
    return read_json(path, remedy=f"run {command} into {Path(path).parent} again to rewrite it")


def model_key(arch, head):
    """The architecture a result belongs to: `arch` for a classification head, f"{arch}-wildcat"
    for a WILDCAT head (f"{arch}-{head}" for any other); "unknown" without an architecture."""
    if not arch or arch == UNKNOWN:
        return UNKNOWN
    return arch if head == "classification" else f"{arch}-{head or UNKNOWN}"


def _known(value):
    """`value` unless missing or "unknown" (then the next fallback is tried)."""
    return value if value and value != UNKNOWN else None


def _card(ref, runs_by_name):
    """The run card of a model a result names (its path, or only its directory's name)."""
    if not ref:
        return None
    for d in (Path(ref), runs_by_name.get(Path(ref).name)):
        card = read_card(d) if d is not None else None
        if card is not None:
            return card
    return None


def result_info(path, kind, runs_by_name=None):
    """Data set, models (name, arch, head, key) and choices of one result folder.

    Reads the result JSON's ``data_hash``, ``arch``/``head`` (``archs``/``heads`` for several
    models) and ``choices``; older folders fall back to the manifest hash of its ``data`` folder
    and to the run cards (``run.json``) of the models it names, else "unknown".
    """
    path = Path(path)
    runs_by_name = runs_by_name or {}
    meta = _read_json(path / RESULTS.get(kind).marker, RESULTS.get(kind).command)
    if kind == "score":
        # score.json names the model by its directory's name; its map store holds the path
        store = Path(meta.get("maps", "")) / "store.json"
        refs = [(_read_json(store).get("model") if store.is_file() else None) or meta.get("model")]
    else:
        refs = list(meta.get("models", []))
    cards = [_card(r, runs_by_name) for r in refs]
    n = len(refs)
    listed = {}
    for field in ("arch", "head"):
        many, one = meta.get(field + "s"), meta.get(field)
        listed[field] = (list(many) if many and len(many) == n else [one] * n if one and n == 1 else None)
    models = []
    for k, (ref, card) in enumerate(zip(refs, cards)):
        card = card or {}
        arch, head = ((_known(listed[f][k]) if listed[f] else None) or _known(card.get(f)) or _known(meta.get(f))
                      or UNKNOWN for f in ("arch", "head"))
        models.append(dict(name=Path(ref).name if ref else UNKNOWN, arch=arch, head=head, key=model_key(arch, head)))
    data = meta.get("data") or next((c["data"].get("dir", "") for c in cards if c and "data" in c), "")
    data_hash = _known(meta.get("data_hash"))
    if not data_hash and data and (Path(data) / MANIFEST_FILE).is_file():
        data_hash = manifest_hash(data)
    if not data_hash:
        data_hash = next((c["data"]["manifest_sha256"] for c in cards
                          if c and c.get("data", {}).get("manifest_sha256")), UNKNOWN)
    return dict(path=path, kind=kind, data_hash=data_hash, dataset=data_hash[:12], data=str(data), models=models,
                choices=dict(meta.get("choices") or {}), check=meta.get("check"))


def group_name(dataset, key):
    """A group's name in tests.csv and posthoc.csv: data set (12 hex) / model key."""
    return f"{dataset}/{key}"


def _source(path, roots):
    """A result folder's name relative to the --results folder it was found under (stable across
    machines, unlike the absolute path)."""
    for root in roots:
        try:
            rel = Path(path).resolve().relative_to(Path(root).resolve())
        except ValueError:
            continue
        return str(Path(Path(root).name) / rel)
    return str(path)


def _read_csv(path, columns=(), command="the command that wrote it"):
    """A result CSV, refused in one line when damaged or without `columns`; an empty table
    (written from no rows) reads as an empty frame."""
    return read_table(path, columns, remedy=f"run {command} into {Path(path).parent} again to rewrite it")


def _tagged(info, frame, group_of_row):
    frame = frame.copy()
    frame.insert(0, "dataset", info["dataset"])
    frame.insert(1, "group", group_of_row(frame))
    frame["source"] = info["source"]
    return frame


def _load_results(infos):
    """Tidy tables of every folder (each kind's `tables`), each row tagged with its data set,
    group and source."""
    import pandas as pd

    out = {name: [] for name in table_names()}
    for info in infos:
        kind, p = RESULTS.get(info["kind"]), info["path"]
        models = info["models"]
        first = group_name(info["dataset"], models[0]["key"]) if models else group_name(info["dataset"], UNKNOWN)
        for name, file in kind.tables.items():
            frame = (_read_csv(p / file, kind.columns.get(name, ()), kind.command) if (p / file).is_file()
                     else pd.DataFrame())
            if len(frame):
                out[name].append(kind.prepare(info, _tagged(info, frame, kind.group_of_rows(info, first))))
    return {k: pd.concat(v, ignore_index=True) if v else pd.DataFrame() for k, v in out.items()}


def _compare_kind(info):
    """The data randomization test when one model learnt permuted labels; else repeatability when
    both models share an architecture (model key), reproducibility otherwise."""
    if info.get("check") == "data randomization":
        return "data randomization"
    keys = [m["key"] for m in info["models"]]
    return "repeatability" if len(set(keys)) == 1 and UNKNOWN not in keys else "reproducibility"


# ---------------------------------------------------------------- the tests behind Table 2

def _keys(frame, *extra):
    return [c for c in ("dataset", "group", "source", *extra) if c in frame.columns]


def _ids(keys, values):
    values = values if isinstance(values, tuple) else (values,)
    return dict(zip(keys, values))


def _row(ids, question, model, method, comparison, estimate, ci_low, ci_high, p, test, decision, found):
    return dict(ids, question=question, model=model, method=method, comparison=comparison, estimate=estimate,
                ci_low=ci_low, ci_high=ci_high, p_value=p, test=test, finding=found, decision=decision)


def _t_interval(values, alpha):
    """The (1 - alpha) interval of a mean over images: percentile interval of `BOOTSTRAP`
    image-level bootstrap replicates (seed 0); NaN for fewer than two finite values."""
    from ..metrics import bootstrap_mean_ci

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    return bootstrap_mean_ci(values, replicates=BOOTSTRAP, seed=0, level=1 - alpha)


def utility_tests(scores, alpha=ALPHA):
    """AUPRC of each method against the average mask and the localization networks (mixed model,
    one per scored model); PASS = significantly better, whichever the baseline."""
    rows = []
    if scores.empty:
        return rows
    auprc = scores[scores.metric == "auprc"]
    keys = _keys(auprc, "model")
    for values, d in auprc.groupby(keys, sort=True):
        ids = _ids(keys, values)
        for baseline in ("baseline:avg", *HIGH):
            if baseline not in set(d.method):
                continue
            question = "utility vs average mask" if baseline == "baseline:avg" else "utility vs localization network"
            for r in mixed_model(d, reference=baseline, alpha=alpha):
                rows.append(_row(ids, question, ids.get("model", ""), r["level"], baseline, r["estimate"], r["ci_low"],
                                 r["ci_high"], r["p_value"], "mixedlm", better_than(r["estimate"], r["p_value"], alpha),
                                 finding(r["estimate"], r["p_value"], alpha)))
    return rows


def _final_step(rand):
    """SSIM rows of each randomization folder's fully randomized step (models of one group)."""
    ssim = rand[rand.metric == "ssim"]
    if "check" not in ssim.columns:
        ssim = ssim.assign(check=A_CHECK)
    keys = _keys(ssim)
    if not keys:
        return ssim[ssim.step == ssim.step.max()]
    last = ssim.groupby(keys + ["model"])["step"].transform("max")
    return ssim[ssim.step == last]


def _check_question(check):
    """The tests.csv question of a randomization check: [A]'s is Table 2's "trained vs randomized"."""
    return "trained vs randomized" if check == A_CHECK else check


def _threshold_test(ids, question, model, method, values, thr, alpha):
    mean = float(np.mean(values))
    decision, found = vs_threshold(mean, thr)
    lo, hi = _t_interval(values, alpha)
    return _row(ids, question, model, method, "threshold", mean - thr, lo - thr, hi - thr, one_sample(values, thr),
                "t-test (two-sided)", decision, found)


def randomization_tests(rand, thresholds, alpha=ALPHA):
    """Fully randomized mean SSIM against each method's degradation threshold (its own rule);
    the t-test's p-value (two-sided) is shown, the decision does not use it. Each folder's check
    (MPRT or sMPRT in one order) is its own question; an MPRT folder also gives eMPRT's test
    (complexity rise, `emprt_table`) of the same maps."""
    from ..metrics import emprt_table

    rows = []
    if rand.empty:
        return rows
    if "check" not in rand.columns:
        rand = rand.assign(check=A_CHECK)
    last = _final_step(rand)
    keys = _keys(last, "check")
    for values, d in last.groupby(keys + ["method"], sort=True):
        ids, method = _ids(keys, values[:-1]), values[-1]
        th = thresholds[thresholds.method == method]
        for k, v in ids.items():
            th = th[th[k] == v] if k in th.columns else th
        thr = float(th.threshold.mean()) if len(th) else float("nan")
        check = ids.pop("check")
        rows.append(_threshold_test(ids, _check_question(check), ", ".join(sorted(map(str, d.model.unique()))),
                                    method, d.value, thr, alpha))
    complexity = rand[rand.metric == "complexity"]
    for values, d in (complexity.groupby(keys, sort=True) if len(complexity) else ()):
        ids = _ids(keys, values)
        check = ids.pop("check")
        if not check.startswith("MPRT"):
            continue       # eMPRT is defined on the plain maps
        models = ", ".join(sorted(map(str, d.model.unique())))
        for r in emprt_table(d, alpha).itertuples():
            rows.append(_row(ids, "e" + check, models, r.method, "trained model's complexity", r.rise - 1,
                             float("nan"), float("nan"), r.p_value, "Wilcoxon signed-rank (one-sided)", r.result,
                             "complexity rose" if r.result == "PASS" else
                             ("n/a" if r.result == "n/a" else "complexity did not rise")))
    return rows


def data_randomization_tests(compare, thresholds, alpha=ALPHA):
    """The data randomization test: mean SSIM between the true and the label-permuted model's
    maps against the degradation threshold of the true model's maps (PASS below it)."""
    rows = []
    keys = _keys(compare)
    for values, d in (compare.groupby(keys + ["method"], sort=True) if len(compare) else ()):
        ids, method = _ids(keys, values[:-1]), values[-1]
        if str(method).startswith("baseline:"):
            continue
        th = thresholds[thresholds.method == method] if len(thresholds) else thresholds
        for k, v in ids.items():
            th = th[th[k] == v] if k in th.columns else th
        thr = float(th.threshold.mean()) if len(th) else float("nan")
        pair = f"{d.model_a.iloc[0]} vs {d.model_b.iloc[0]}" if {"model_a", "model_b"} <= set(d.columns) else ""
        rows.append(_threshold_test(ids, "data randomization", pair, method, d.value, thr, alpha))
    return rows


def compare_tests(compare, kind, alpha=ALPHA):
    """SSIM between two models' maps against 0.5 (one-sample t-test, two-sided) and against the
    localization networks' SSIM (mixed model); PASS = significantly better."""
    rows = []
    if compare.empty:
        return rows
    keys = _keys(compare)
    groups = compare.groupby(keys, sort=True) if keys else [((), compare)]
    for values, d in groups:
        ids = _ids(keys, values)
        saliency = d[~d.method.astype(str).str.startswith("baseline:")]
        pair = (f"{saliency.model_a.iloc[0]} vs {saliency.model_b.iloc[0]}"
                if len(saliency) and {"model_a", "model_b"} <= set(d.columns) else "")
        for method, m in saliency.groupby("method"):
            est = float(m.value.mean()) - LOW_BASELINE
            p = one_sample(m.value, LOW_BASELINE)
            lo, hi = _t_interval(m.value, alpha)
            rows.append(_row(ids, f"{kind} vs 0.5", pair, method, "0.5", est, lo - LOW_BASELINE, hi - LOW_BASELINE,
                             p, "t-test (two-sided)", better_than(est, p, alpha), finding(est, p, alpha)))
        if LOCALIZATION in set(d.method):
            for r in mixed_model(d, reference=LOCALIZATION, alpha=alpha):
                rows.append(_row(ids, f"{kind} vs localization network", pair, r["level"], LOCALIZATION,
                                 r["estimate"], r["ci_low"], r["ci_high"], r["p_value"], "mixedlm",
                                 better_than(r["estimate"], r["p_value"], alpha),
                                 finding(r["estimate"], r["p_value"], alpha)))
    return rows


def _split_group(group):
    return group.split("/", 1)[-1] if isinstance(group, str) else UNKNOWN


def sanity_table(tests):
    """PASS/FAIL per group and method of every sanity check present (`SANITY_COLUMNS`; [A]'s
    top-down MPRT is Table 2's "trained vs randomized"), columns without any result left out."""
    if tests.empty:
        return table2(tests, columns=())
    tests = tests.assign(question=tests.question.replace({"trained vs randomized": A_CHECK}))
    present = tuple(c for c in SANITY_COLUMNS if c in set(tests.question))
    return table2(tests, columns=present)


def table2(tests, columns=TABLE2_COLUMNS):
    """PASS/FAIL per data set x model group, method and criterion; a cell without data says so.

    A cell PASSes when every test behind it (e.g. several scored runs of one architecture)
    PASSes, FAILs when any FAILs, else "n/a" (no p-value). Columns: dataset, model, method,
    then `TABLE2_COLUMNS`; one block of rows per group, methods in [A]'s order.
    """
    import pandas as pd

    criteria = tuple(columns)
    columns = ["dataset", "model", "method", *criteria]
    if tests.empty:
        return pd.DataFrame(columns=columns)
    tests = tests.copy()
    if "group" not in tests.columns:
        tests["group"] = group_name(UNKNOWN, UNKNOWN)
    if "dataset" not in tests.columns:
        tests["dataset"] = UNKNOWN
    rows = []
    for (dataset, group), g in sorted(tests.groupby(["dataset", "group"]), key=lambda kv: kv[0]):
        for m in ordered([m for m in set(g.method) if m in METHODS]):
            row = {"dataset": dataset, "model": _split_group(group), "method": m}
            for q in criteria:
                d = g[(g.method == m) & (g.question == q)]
                if d.empty:
                    row[q] = NO_DATA
                else:
                    decisions = set(d.decision)
                    row[q] = "PASS" if decisions == {"PASS"} else ("FAIL" if "FAIL" in decisions else "n/a")
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def posthoc_tests(sets, procedure="mixedlm", alpha=ALPHA):
    """Pairwise comparisons between methods within each (group, question) set, by `procedure`
    ("mixedlm": contrasts from the fitted mixed model, paired by image; "tukey": Tukey HSD)."""
    import pandas as pd

    fn = POSTHOC.get(procedure)
    tables = []
    for ids, question, model, d in sets:
        t = fn(d, alpha=alpha)
        where = dict(dataset=ids.get("dataset", UNKNOWN), group=ids.get("group", UNKNOWN), question=question,
                     model=model, source=ids.get("source", ""))
        for k, (name, value) in enumerate(where.items()):
            t.insert(k, name, value)
        if len(t):
            tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _utility_sets(scores):
    sets = []
    if not scores.empty:
        auprc = scores[scores.metric == "auprc"]
        keys = _keys(auprc, "model")
        for values, d in auprc.groupby(keys, sort=True):
            ids = _ids(keys, values)
            sets.append(({k: v for k, v in ids.items() if k != "model"}, "utility", ids.get("model", ""), d))
    return sets


def _randomization_sets(rand):
    sets = []
    if not rand.empty:
        last = _final_step(rand)
        keys = _keys(last, "check")
        for values, d in last.groupby(keys, sort=True):
            ids = _ids(keys, values)
            check = ids.pop("check")
            sets.append((ids, _check_question(check), ", ".join(sorted(map(str, d.model.unique()))), d))
    return sets


def _compare_sets(compare):
    sets = []
    if not compare.empty:
        keys = _keys(compare)
        for values, d in compare.groupby(keys, sort=True):
            saliency = d[~d.method.astype(str).str.startswith("baseline:")]
            pair = f"{saliency.model_a.iloc[0]} vs {saliency.model_b.iloc[0]}" if len(saliency) else ""
            sets.append((_ids(keys, values), str(d.question_kind.iloc[0]), pair, d))
    return sets


# ---------------------------------------------------------------- the registered result kinds

@register_result
class ScoreResult(ResultKind):
    """`cxrsal score`: utility per image and method, pointwise detection per method."""
    name, marker, order = "score", "score.json", 0
    tables = {"scores": "scores.csv", "pointwise": "pointwise.csv"}
    columns = {"scores": ("image_id", "model", "method", "step", "metric", "value"),
               "pointwise": ("model", "method", "step", "n", "pointwise_ap")}
    command = "`cxrsal score`"
    sections = ("saliency", "score", "pointwise")
    figures = ("fig2_utility", "overlays", "pr_curve")

    def tests(self, tables, alpha):
        return utility_tests(tables["scores"], alpha)

    def posthoc_sets(self, tables):
        return _utility_sets(tables["scores"])

    def extra_files(self, folder):
        store = Path(_read_json(Path(folder) / self.marker, self.command).get("maps", "")) / "store.json"
        return [store] if store.is_file() else []


@register_result
class RandomizationResult(ResultKind):
    """`cxrsal randomize`: SSIM per step, image and method; degradation thresholds."""
    name, marker, order = "randomization", "randomization.json", 1
    tables = {"rand": "randomization.csv", "thresholds": "thresholds.csv"}
    columns = {"rand": ("image_id", "model", "method", "step", "metric", "value"),
               "thresholds": ("model", "method", "threshold")}
    command = "`cxrsal randomize`"
    sections = ("saliency", "randomization", "similarity")
    figures = ("fig3a_randomization", "emprt")

    def prepare(self, info, frame):
        # which check the folder made (MPRT/sMPRT and order); older folders: [A]'s
        frame["check"] = info.get("check") or A_CHECK
        return frame

    def group_of_rows(self, info, first):
        # rows name their model by the tag f"{k:02d}-{dir name}" of the k-th model
        tags = {f"{k:02d}-{m['name']}": group_name(info["dataset"], m["key"]) for k, m in enumerate(info["models"])}
        return lambda f: f["model"].astype(str).map(lambda t: tags.get(t, first))

    def tests(self, tables, alpha):
        return randomization_tests(tables["rand"], tables["thresholds"], alpha)

    def posthoc_sets(self, tables):
        return _randomization_sets(tables["rand"])


@register_result
class CompareResult(ResultKind):
    """`cxrsal compare`: SSIM per image between two models' maps (and two localization networks')."""
    name, marker, order = "compare", "compare.json", 2
    tables = {"compare": "compare.csv", "compare_thresholds": "thresholds.csv"}
    columns = {"compare": ("image_id", "model_a", "model_b", "method", "metric", "value"),
               "compare_thresholds": ("method", "threshold")}
    command = "`cxrsal compare`"
    sections = ("saliency", "compare", "similarity")
    first_model_only = True     # two architectures: the result belongs to model A's group

    def prepare(self, info, frame):
        frame["question_kind"] = _compare_kind(info)
        return frame

    def tests(self, tables, alpha):
        rows = []
        compare = tables["compare"]
        if not compare.empty:
            for kind, d in compare.groupby("question_kind", sort=True):
                if kind == "data randomization":
                    rows += data_randomization_tests(d, tables["compare_thresholds"], alpha)
                else:
                    rows += compare_tests(d, kind, alpha)
        return rows

    def posthoc_sets(self, tables):
        return _compare_sets(tables["compare"])


@register_result
class RunCard(ResultKind):
    """`cxrsal train` / `train-baseline`: the run card (Table 1)."""
    name, marker, order = "runs", CARD_FILE, 3
    command = "`cxrsal train`"
    sections = ("model", "train", "pipeline", "baseline")


# ---------------------------------------------------------------- Table 1 ([B])

def _natural(text):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text))]


def _metric(card, name):
    v = (card.get("metrics") or {}).get(name)
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else None


def chosen_runs(runs):
    """Per data set x backbone x head the run Table 1 reports: classifiers by best validation AUC
    (`metrics.best_val_auc`; never test), RetinaNets by lowest validation loss (`best_val_loss`).
    Models trained on permuted labels (the data randomization test) are never chosen.

    Returns
    -------
    list of dict
        dataset, backbone, head, run (directory name), selected by, val score, card.
    """
    cards = []
    for r in runs:
        card = read_card(r)
        if card is not None:
            cards.append(dict(card=card, run=Path(r).name, task=card.get("task", "classification"),
                              dataset=((card.get("data") or {}).get("manifest_sha256") or UNKNOWN)[:12],
                              backbone=card.get("arch", UNKNOWN), head=card.get("head", "classification")))
    # (card metric, label, sign): a higher sign * score is better
    rules = {"classification": ("best_val_auc", "best val AUC", 1.0),
             "retinanet": ("best_val_loss", "lowest val loss", -1.0)}
    chosen = {}
    for c in cards:
        if c["task"] not in rules:       # U-Nets and other localization networks: not Table 1 rows
            continue
        if c["card"].get("label_permuted"):   # the data randomization test's twin, not a candidate
            continue
        metric, label, sign = rules[c["task"]]
        head = c["head"] if c["task"] == "classification" else "retinanet"
        key = (c["dataset"], c["backbone"], head)
        score = _metric(c["card"], metric)
        prev = chosen.get(key)
        # a run without a validation score is chosen only when no run of its kind has one
        if prev is None or (score is not None and (prev["val score"] is None
                                                   or sign * score > sign * prev["val score"])):
            chosen[key] = dict(dataset=c["dataset"], backbone=c["backbone"], head=head, run=c["run"],
                               **{"selected by": label, "val score": score}, card=c["card"])
    head_order = {"classification": 0, "wildcat": 1, "retinanet": 9}
    return [chosen[k] for k in sorted(chosen, key=lambda k: (k[0], _natural(k[1]), head_order.get(k[2], 5), k[2]))]


def _trained(frame):
    if "step" in frame.columns:
        frame = frame[frame.step.astype(str) == "trained"]
    return frame


def _pointwise_cell(pointwise, run, method):
    """A run's pointwise AP: its value (distinct values joined when scored more than once), marked
    when computed over positives only (no negatives, so no false positives from them: inflated)."""
    if pointwise.empty:
        return NO_DATA
    d = _trained(pointwise)
    d = d[(d.model.astype(str) == run) & (d.method == method)].dropna(subset=["pointwise_ap"])
    if d.empty:
        return NO_DATA
    values = sorted({round(float(v), 9) for v in d.pointwise_ap})
    positives_only = "n_negative" in d.columns and bool((d.n_negative.fillna(-1) == 0).all())
    if len(values) == 1 and not positives_only:
        return values[0]
    return " / ".join(f"{v:.3f}" for v in values) + (" (positives only)" if positives_only else "")


NATIVE = {"classification": "gcam", "wildcat": "wildcat", "retinanet": "baseline:detector"}


def table1(runs, pointwise):
    """[B] Table 1, AUC part: one row per data set x backbone x head (classification, wildcat,
    and the RetinaNet per backbone) for the run chosen by validation (`chosen_runs`).

    Columns: dataset, backbone, head, run, selected by, val score, test AUC (the run card's),
    pointwise AP (of its native maps: GradCAM for a classification head, the WILDCAT class map,
    the RetinaNet's best box centre) and pointwise AP of (that method). The AUPRC part is
    `table1_utility`. Cells without data say "no data"; an AP computed over positives only says so.
    """
    import pandas as pd

    rows = []
    for c in chosen_runs(runs):
        test = _metric(c["card"], "test_auc")
        native = NATIVE.get(c["head"], "gcam")
        rows.append({"dataset": c["dataset"], "backbone": c["backbone"], "head": c["head"], "run": c["run"],
                     "selected by": c["selected by"],
                     "val score": c["val score"] if c["val score"] is not None else NO_DATA,
                     "test AUC": test if test is not None else NO_DATA,
                     "test AUC 95% CI": _interval_cell((c["card"].get("metrics") or {}).get("test_auc_ci")),
                     "pointwise AP": _pointwise_cell(pointwise, c["run"], native),
                     "pointwise AP 95% CI": _pointwise_ci_cell(pointwise, c["run"], native),
                     "pointwise AP of": native})
    return pd.DataFrame(rows, columns=["dataset", "backbone", "head", "run", "selected by", "val score", "test AUC",
                                       "test AUC 95% CI", "pointwise AP", "pointwise AP 95% CI", "pointwise AP of"])


def _interval_cell(interval):
    """[low, high] as a table cell ("no data" when missing or undefined)."""
    if not interval or len(interval) != 2 or not all(np.isfinite(float(v)) for v in interval):
        return NO_DATA
    return f"[{float(interval[0]):.3f}, {float(interval[1]):.3f}]"


def _pointwise_ci_cell(pointwise, run, method):
    if pointwise.empty or "ci_low" not in pointwise.columns:
        return NO_DATA
    d = _trained(pointwise)
    d = d[(d.model.astype(str) == run) & (d.method == method)].dropna(subset=["ci_low", "ci_high"])
    return _interval_cell([d.ci_low.iloc[0], d.ci_high.iloc[0]]) if len(d) == 1 else NO_DATA


LOCALIZATION_METRICS = {"auprc": "AUPRC", "hit": "hit rate", "iou": "mIoU"}


def localization_table(scores, replicates=BOOTSTRAP, seed=0):
    """Localization per scored model and method as clinicians read it beside AUPRC: mean AUPRC,
    hit rate (pointing game) and mIoU (threshold tuned on validation maps), each with its 95 %
    image-level bootstrap interval (paired: one set of resampled images for every method of a
    model). Positive images of the trained step; an image scored twice counts once."""
    import pandas as pd

    from ..metrics import paired_intervals

    columns = ["dataset", "group", "model", "method", "positives"]
    for name in LOCALIZATION_METRICS.values():
        columns += [name, f"{name} 95% CI"]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    d = _trained(scores[scores.metric.isin(list(LOCALIZATION_METRICS))])
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
            row[f"{name} 95% CI"] = _interval_cell([c.ci_low, c.ci_high])
    order = {m: k for k, m in enumerate(ordered([m for m in {r[3] for r in rows} if m in METHODS]))}
    out = pd.DataFrame(sorted(rows.values(), key=lambda r: (r["dataset"], r["group"], r["model"],
                                                            order.get(r["method"], len(order)), r["method"])),
                       columns=columns)
    for c in columns[5:]:
        out[c] = out[c].astype(object).where(out[c].notna(), NO_DATA)
    return out


BASELINE_COLUMNS = {"baseline:avg": "average mask", "baseline:detector": "RetinaNet heatmap"}


def utility_columns(present=()):
    """Table 1's method columns: the study's methods always, any other registered method with scores."""
    methods = ordered(set(study_methods()) | {m for m in present if m in METHODS})
    return {**{m: m for m in methods}, **BASELINE_COLUMNS}


def table1_utility(runs, scores):
    """[B] Table 1, utility part: localization-utility AUPRC (mean over positive images) of each
    classifier run chosen by `chosen_runs`, per saliency method, the WILDCAT class map, the
    average mask and the RetinaNet heatmap (both baselines as scored beside that run's maps, so
    on the same images). "no data" where that run has no such score."""
    import pandas as pd

    auprc = _trained(scores[scores.metric == "auprc"]) if not scores.empty else scores
    if len(auprc) and "label" in auprc.columns:
        auprc = auprc[auprc.label == 1]
    rows = []
    columns = utility_columns(set(auprc.method) if len(auprc) else ())
    for c in chosen_runs(runs):
        if c["head"] == "retinanet":
            continue
        d = auprc[auprc.model.astype(str) == c["run"]] if len(auprc) else auprc
        row = {"dataset": c["dataset"], "backbone": c["backbone"], "head": c["head"], "run": c["run"],
               "positives": int(d.image_id.nunique()) if len(d) else 0}
        for method, column in columns.items():
            m = d[d.method == method] if len(d) else d
            # an image scored twice counts once
            row[column] = float(m.groupby("image_id").value.mean().mean()) if len(m) else NO_DATA
        rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "backbone", "head", "run", "positives", *columns.values()])


# ---------------------------------------------------------------- choices and the tables' text

def choices_table(infos):
    """One row per result folder x group x choice: folder, kind, dataset, group, key, value."""
    import pandas as pd

    rows = []
    for info in infos:
        for group in info["groups"]:
            for key, value in sorted(info["choices"].items()):
                rows.append(dict(folder=str(info["path"]), kind=info["kind"], dataset=info["dataset"], group=group,
                                 key=key, value=str(value)))
    return pd.DataFrame(rows, columns=["folder", "kind", "dataset", "group", "key", "value"])


def rules_sentence(posthoc, alpha=ALPHA):
    """The PASS rule and the post-hoc procedure, in one sentence."""
    how = {"mixedlm": "pairwise contrasts from the fitted mixed model (paired by image, Holm-adjusted)",
           "tukey": "Tukey HSD (unpaired: ignores the pairing by image)"}.get(posthoc, posthoc)
    return (f"PASS = significantly better than the baseline, low or high (estimate > 0, two-sided p < {alpha}); "
            "FAIL = not significantly better (tests.csv's `finding` says whether worse or no different); "
            "randomization PASSES when the fully randomized mean SSIM is below the method's degradation "
            "threshold, data randomization when the SSIM between the true and the label-permuted model's maps is; "
            f"intervals: {BOOTSTRAP} image-level bootstrap replicates (mixed-model rows: the model's own); post-hoc comparisons between methods: {how} (posthoc.csv).")


def table2_sections(res):
    """One section per group: (title, lines before the table, Table 2 rows, lines after it)."""
    t2, groups, choices = res["table2"], res["groups"], res["choices"]
    sections = []
    for group, g in groups.items():
        rows = t2[(t2.dataset == g["dataset"]) & (t2.model == g["model"])].reset_index(drop=True)
        title = f"Table 2 ([A]): data set {g['dataset']}, model {g['model']}"
        before = [f"Data: {', '.join(g['data']) or UNKNOWN} (manifest sha256 {g['data_hash']}). "
                  f"Results: {', '.join(g['sources'])}. {POOLING}"]
        c = choices[choices.group == group] if len(choices) else choices
        after = ["Choices in force:"]
        for key, d in (c.groupby("key", sort=True) if len(c) else []):
            values = sorted(set(d.value))
            after.append(f"- {key}: {', '.join(values)}")
            if len(values) > 1:
                where = "; ".join(f"{v} in {', '.join(sorted(set(Path(f).name for f in d[d.value == v].folder)))}"
                                  for v in values)
                after.append(f"- WARNING: results in this group used different values of {key} ({where})")
        unrecorded = len(g["sources"]) - (c.folder.nunique() if len(c) else 0)
        if unrecorded:
            after.append(f"- {unrecorded} result folder(s) of this group record no choices (older results)")
        after.append(rules_sentence(res["posthoc_name"], res["alpha"]))
        sections.append((title, before, rows, after))
    return sections


def markdown(df):
    """A DataFrame as a Markdown table, floats to three decimals."""
    cols = list(df.columns)
    fmt = lambda v: f"{v:.3f}" if isinstance(v, (float, np.floating)) and np.isfinite(v) else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(lines)


TABLE1_TITLE = ("Table 1 ([B]): per backbone x head the run with the best validation score; its test AUC and "
                "pointwise AP")
TABLE1_UTILITY_TITLE = "Table 1 ([B]), utility: AUPRC (mean over positive images) of the chosen runs' maps"


FINDINGS_TITLE = "Which findings of the studies hold on these results"


def _number(cell):
    """A Table 1 cell as a number, or None ("no data", several values, positives only)."""
    try:
        return float(cell)
    except (TypeError, ValueError):
        return None


def findings(res):
    """The studies' headline findings checked on these results, one row each: study, finding,
    holds (yes / no / no data) and the numbers behind it.

    [B]: the WILDCAT class maps localize better than GradCAM and the average mask (pointwise AP
    and utility AUPRC), per data set and backbone. [A]: GradCAM, Guided Backprop and Guided
    GradCAM pass cascading randomization and XRAI fails it, per data set x model group.
    """
    import pandas as pd

    rows = []

    def add(study, text, values, holds):
        shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {NO_DATA}" for k, v in values.items())
        rows.append(dict(study=study, finding=text, holds=holds, evidence=shown))

    t1, t1u = res["table1"], res["table1_utility"]
    for (dataset, backbone), d in (t1.groupby(["dataset", "backbone"], sort=True) if len(t1) else ()):
        wc, clf = d[d["head"] == "wildcat"], d[d["head"] == "classification"]
        if wc.empty:
            continue
        run = wc.iloc[0]["run"]
        pw = res.get("pointwise_table", pd.DataFrame())
        avg = _pointwise_cell(pw, run, "baseline:avg") if len(pw) else NO_DATA
        values = {"WILDCAT": _number(wc.iloc[0]["pointwise AP"]),
                  "GradCAM": _number(clf.iloc[0]["pointwise AP"]) if len(clf) else None,
                  "average mask": _number(avg)}
        others = [v for k, v in values.items() if k != "WILDCAT"]
        known = values["WILDCAT"] is not None and all(v is not None for v in others)
        add("[B]", f"{backbone}: WILDCAT's pointwise AP above GradCAM's and the average mask's", values,
            ("yes" if all(values["WILDCAT"] > v for v in others) else "no") if known else NO_DATA)
        u = t1u[(t1u.dataset == dataset) & (t1u.backbone == backbone)] if len(t1u) else t1u
        uw, uc = (u[u["head"] == h] for h in ("wildcat", "classification"))
        values = {"WILDCAT": _number(uw.iloc[0]["wildcat"]) if len(uw) else None,
                  "GradCAM": _number(uc.iloc[0]["gcam"]) if len(uc) else None,
                  "average mask": _number(uw.iloc[0]["average mask"]) if len(uw) else None}
        others = [v for k, v in values.items() if k != "WILDCAT"]
        known = values["WILDCAT"] is not None and all(v is not None for v in others)
        add("[B]", f"{backbone}: WILDCAT's utility AUPRC above GradCAM's and the average mask's", values,
            ("yes" if all(values["WILDCAT"] > v for v in others) else "no") if known else NO_DATA)
    tests = res["tests"]
    rand = tests[tests.question == "trained vs randomized"] if len(tests) else tests
    for group, d in (rand.groupby("group", sort=True) if len(rand) else ()):
        decided = {m: d[d.method == m] for m in ("gcam", "gbp", "ggcam", "xrai")}
        for method, want in (("gcam", "PASS"), ("gbp", "PASS"), ("ggcam", "PASS"), ("xrai", "FAIL")):
            r = decided[method]
            values = {"randomized SSIM - threshold": float(r.iloc[0]["estimate"]) if len(r) else None}
            holds = NO_DATA if r.empty else ("yes" if set(r.decision) == {want} else "no")
            add("[A]", f"{group}: {method} {'passes' if want == 'PASS' else 'fails'} cascading randomization",
                values, holds)
    return pd.DataFrame(rows, columns=["study", "finding", "holds", "evidence"])


def tables_markdown(res, level=2):
    """tables.md: one Table 2 section per group (with its choices and rules), then Table 1."""
    h = "#" * level
    parts = []
    sections = table2_sections(res)
    if not sections:
        parts += [f"{h} Table 2 ([A])", "", NO_DATA, ""]
    for title, before, rows, after in sections:
        parts += [f"{h} {title}", "", *before, "", markdown(rows) if len(rows) else NO_DATA, "", *after, ""]
    parts += [f"{h} {TABLE1_TITLE}", "", markdown(res["table1"]) if len(res["table1"]) else NO_DATA, "",
              f"{h} {TABLE1_UTILITY_TITLE}", "",
              markdown(res["table1_utility"]) if len(res["table1_utility"]) else NO_DATA, ""]
    loc = res.get("localization")
    if loc is not None and len(loc):
        parts += [f"{h} {LOCALIZATION_TITLE}", "", markdown(loc.drop(columns=["group"])), "",
                  LOCALIZATION_NOTE, ""]
    if len(res.get("findings", ())):
        parts += [f"{h} {FINDINGS_TITLE}", "", markdown(res["findings"]), ""]
    sanity = res.get("sanity")
    if sanity is not None and len(sanity):
        parts += [f"{h} {SANITY_TITLE}", "", markdown(sanity), "", *sanity_meanings(sanity), ""]
    return "\n".join(parts)


LOCALIZATION_TITLE = "Localization as clinicians read it: AUPRC, hit rate and mIoU with 95% intervals"
LOCALIZATION_NOTE = ("Hit rate: the map's maximum inside the ground truth (pointing game); mIoU: IoU of the map "
                     "thresholded at the value tuned on the validation split's maps, never the test split's "
                     "(CheXlocalize, Saporta et al. 2022); `no data` without `cxrsal score --validation`. "
                     "Intervals: 1000 image-level bootstrap replicates, seed 0, the same images for every method.")
SANITY_TITLE = "Sanity checks: every randomization order, sMPRT, eMPRT and data randomization"


def sanity_meanings(sanity):
    """One sentence per check present: what a PASS means."""
    out = []
    for column in sanity.columns[3:]:
        test = column.split()[0] if column != "data randomization" else column
        out.append(f"- {column}: PASS = {SANITY_MEANING[test]}.")
    return out


# ---------------------------------------------------------------- the command

def run_stats(dirs, out, *, alpha=ALPHA, posthoc="mixedlm", log=print):
    """Every test, post-hoc comparison and table over the results under `dirs`, written to `out`.

    Writes tests.csv, posthoc.csv (column `test` names the procedure), table2.csv (one block per
    data set x model group), table1.csv, table1_utility.csv, choices.csv and tables.md.
    `posthoc`: "mixedlm" (default; contrasts from the mixed model) or "tukey" (unpaired Tukey HSD).
    """
    import pandas as pd

    POSTHOC.get(posthoc)   # an unknown name fails before any work
    found = discover(dirs)
    runs_by_name = {p.name: p for p in found["runs"]}
    infos = []
    for kind in kinds():
        if not kind.tables:
            continue
        for path in found[kind.name]:
            info = result_info(path, kind.name, runs_by_name)
            info["source"] = _source(path, dirs)
            keys = [m["key"] for m in info["models"]] or [UNKNOWN]
            info["groups"] = sorted({group_name(info["dataset"], k) for k in (keys[:1] if kind.first_model_only
                                                                               else keys)})
            infos.append(info)
    t = _load_results(infos)
    scores, pointwise = t["scores"], t["pointwise"]
    rows = [row for kind in kinds() for row in kind.tests(t, alpha)]
    tests = pd.DataFrame(rows, columns=list(TESTS_COLUMNS))
    tests = tests.sort_values(["dataset", "group", "question", "source", "method"], kind="stable",
                              ignore_index=True)
    post = posthoc_tests([s for kind in kinds() for s in kind.posthoc_sets(t)], posthoc, alpha)

    groups = {}
    for info in infos:
        for group in info["groups"]:
            g = groups.setdefault(group, dict(dataset=info["dataset"], data_hash=info["data_hash"],
                                              model=_split_group(group), data=[], sources=[]))
            if info["data"] and info["data"] not in g["data"]:
                g["data"].append(info["data"])
            g["sources"].append(info["source"])
    groups = {k: groups[k] for k in sorted(groups)}
    res = {"tests": tests, "posthoc": post, "table2": table2(tests), "sanity": sanity_table(tests),
           "table1": table1(found["runs"], pointwise), "localization": localization_table(scores),
           "table1_utility": table1_utility(found["runs"], scores), "choices": choices_table(infos),
           "groups": groups, "found": found, "posthoc_name": posthoc, "alpha": alpha, "pointwise_table": pointwise}
    res["findings"] = findings(res)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)
    for name, key in (("tests.csv", "tests"), ("posthoc.csv", "posthoc"), ("table2.csv", "table2"),
                      ("table1.csv", "table1"), ("table1_utility.csv", "table1_utility"),
                      ("choices.csv", "choices"), ("findings.csv", "findings"), ("sanity.csv", "sanity"),
                      ("localization.csv", "localization")):
        write_frame(out / name, res[key])
    with atomic_path(out / "tables.md") as tmp:
        tmp.write_text(tables_markdown(res))
    t2 = res["table2"]
    missing = int((t2[list(TABLE2_COLUMNS)] == NO_DATA).to_numpy().sum()) if len(t2) else 0
    log(f"{len(groups)} group(s) of data set x model, never pooled: {', '.join(groups) or 'none'}")
    log(f"{len(tests)} tests; Table 2 {len(t2)} rows, Table 1 {len(res['table1'])} rows; "
        f"{missing} Table 2 cells lack data")
    return res
