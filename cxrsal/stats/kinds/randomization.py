"""`cxrsal randomize`: model parameter randomization. [A]'s check is cascading randomization
top-down (MPRT, Table 2's "trained vs randomized" and Fig 3a); the same command makes it in the
other orders, as sMPRT, and gives eMPRT from the same maps (Hedstroem et al. 2023)."""

from pathlib import Path

from ...config import ORDERS
from .. import Rules
from ..plotting import drawn, slug
from ..questions import ids_of, keys_of, threshold_of, threshold_test, tests_row
from ..results import Figure, ResultKind, register_result
from ..sources import group_name, read_result_json, read_result_table

# [A]'s one sanity check (cascading randomization, top-down) is Table 2's "trained vs randomized"
A_CHECK = "MPRT top-down"
MEANING = {
    "MPRT": "the maps of the fully randomized model are less similar (SSIM) to the trained model's than two "
            "different images' maps are: the method depends on what the model learnt",
    "sMPRT": "as MPRT, every map first averaged over noisy copies of the input, so that noise in the maps cannot "
             "make them look changed, the similarity the Spearman rank correlation of the absolute maps "
             "(Hedstroem et al. 2023)",
    "eMPRT": "the maps' complexity (the choices below say which) rises significantly from the trained to the "
             "fully randomized model (paired one-sided Wilcoxon), no similarity measure needed "
             "(Hedstroem et al. 2023)",
}
# what each check's verdict compares: randomized similarity vs its threshold (older folders: SSIM)
DECIDING = "decides"
CURVES_COLUMNS = ("method", "step", "step_name", "metric", "mean")


def final_step(rand):
    """The deciding similarity's rows (SSIM; sMPRT's Spearman) of each randomization folder's fully
    randomized step (models of one group)."""
    decides = rand[DECIDING] if DECIDING in rand.columns else "ssim"
    ssim = rand[rand.metric == decides]
    if "check" not in ssim.columns:
        ssim = ssim.assign(check=A_CHECK)
    keys = keys_of(ssim)
    if not keys:
        return ssim[ssim.step == ssim.step.max()]
    last = ssim.groupby(keys + ["model"])["step"].transform("max")
    return ssim[ssim.step == last]


def check_question(check):
    """The tests.csv question of a randomization check: [A]'s is Table 2's "trained vs randomized"."""
    return "trained vs randomized" if check == A_CHECK else check


def randomization_tests(rand, thresholds, rules=Rules()):
    """Fully randomized mean SSIM (sMPRT: Spearman) against each method's degradation threshold of
    the same similarity (its own rule);
    the t-test's p-value (two-sided) is shown, the decision does not use it. Each folder's check
    (MPRT or sMPRT in one order) is its own question; an MPRT folder also gives eMPRT's test
    (complexity rise, `emprt_table`) of the same maps."""
    from ...metrics import emprt_table

    rows = []
    if rand.empty:
        return rows
    if "check" not in rand.columns:
        rand = rand.assign(check=A_CHECK)
    last = final_step(rand)
    keys = keys_of(last, "check")
    for values, d in last.groupby(keys + ["method"], sort=True):
        ids, method = ids_of(keys, values[:-1]), values[-1]
        metric = d[DECIDING].iloc[0] if DECIDING in d.columns else "ssim"
        thr = threshold_of(thresholds[thresholds.metric == metric] if "metric" in thresholds.columns else thresholds,
                           method, ids)
        check = ids.pop("check")
        rows.append(threshold_test(ids, check_question(check), ", ".join(sorted(map(str, d.model.unique()))),
                                   method, d, thr, rules))
    complexity = rand[rand.metric == "complexity"]
    for values, d in (complexity.groupby(keys, sort=True) if len(complexity) else ()):
        ids = ids_of(keys, values)
        check = ids.pop("check")
        if not check.startswith("MPRT"):
            continue       # eMPRT is defined on the plain maps
        models = ", ".join(sorted(map(str, d.model.unique())))
        for r in emprt_table(d, rules.alpha, rules.min_images).itertuples():
            rows.append(tests_row(ids, "e" + check, models, r.method, "trained model's complexity", r.rise,
                                  float("nan"), float("nan"), r.p_value, "Wilcoxon signed-rank (one-sided)", r.result,
                                  "complexity rose" if r.result == "PASS" else "complexity did not rise", n=r.n,
                                  reason=r.reason, left_out=r.left_out))
    return rows


def check_of(rand_dir):
    """The sanity check of a randomization folder ("MPRT top-down" for folders before checks)."""
    return _meta(rand_dir).get("check") or A_CHECK


def _curves(rand_dir):
    return read_result_table(Path(rand_dir) / "curves.csv", CURVES_COLUMNS, RandomizationResult.command)


def _meta(rand_dir):
    return read_result_json(Path(rand_dir) / RandomizationResult.marker, RandomizationResult.command)


def fig_randomization(rand_dir, title=""):
    from ...experiments.randomization_figures import plot_curves

    thresholds = read_result_table(Path(rand_dir) / "thresholds.csv", ("method", "threshold"),
                                   RandomizationResult.command)
    return drawn(plot_curves, _curves(rand_dir), thresholds, title=title,
                 metric=_meta(rand_dir).get("similarity") or "ssim")


def complexity_of_folder(meta):
    """The complexity a folder's eMPRT used (folders before the choice: the spatial entropy)."""
    return (meta.get("emprt") or {}).get("complexity") or "spatial"


def fig_complexity(rand_dir, title=""):
    from ...experiments.randomization_figures import plot_complexity

    curves = _curves(rand_dir)
    if not (curves.metric == "complexity").any():
        return None
    return drawn(plot_complexity, curves, title=title, complexity=complexity_of_folder(_meta(rand_dir)))


@register_result
class RandomizationResult(ResultKind):
    """`cxrsal randomize`: SSIM per step, image and method; degradation thresholds."""
    name, marker, order = "randomization", "randomization.json", 1
    tables = {"rand": "randomization.csv", "thresholds": "thresholds.csv"}
    columns = {"rand": ("image_id", "model", "method", "step", "metric", "value"),
               "thresholds": ("model", "method", "threshold")}
    command = "`cxrsal randomize`"
    sections = ("saliency", "ggcam", "randomization", "similarity")
    questions = ("trained vs randomized",)
    sanity = {f"{test} {order}": MEANING[test] for order in ORDERS for test in ("MPRT", "sMPRT", "eMPRT")}
    sanity_names = {"trained vs randomized": A_CHECK}
    absent = "run `cxrsal randomize` (any --order, --check)"

    def prepare(self, info, frame):
        # which check the folder made (MPRT/sMPRT and order; older folders: [A]'s) and the similarity
        # that decides it (older folders: SSIM); thresholds of older folders are SSIM's
        frame["check"] = info.get("check") or A_CHECK
        frame[DECIDING] = info.get("similarity") or "ssim"
        if "threshold" in frame.columns and "metric" not in frame.columns:
            frame["metric"] = "ssim"
        return frame

    def sanity_choices(self, info):
        """The folder's choices in words (its check, similarities, smoothing, eMPRT's complexity);
        older folders: what they used."""
        words = info.get("choices_in_words")
        if words:
            return words
        check = info.get("check") or A_CHECK
        return f"{check}: SSIM decides" + ("" if check.startswith("sMPRT") else
                                           f"; e{check}: spatial entropy of the normalized |map| (older result)")

    def group_of_rows(self, info, first):
        # rows name their model by the tag f"{k:02d}-{dir name}" of the k-th model
        tags = {f"{k:02d}-{m['name']}": group_name(info["dataset"], m["key"]) for k, m in enumerate(info["models"])}
        return lambda f: f["model"].astype(str).map(lambda t: tags.get(t, first))

    def tests(self, tables, rules):
        return randomization_tests(tables["rand"], tables["thresholds"], rules)

    def constant_maps(self, tables):
        """The trained model's maps of every image (its step 0; a randomized model's maps may well
        be constant, as a ReLU's of random weights), constant ones flagged."""
        from .score import flagged

        rand = tables["rand"]
        if rand.empty:
            return None
        trained = rand[(rand.metric == "ssim") & (rand.step == 0)]
        return flagged(trained, ["dataset", "group", "model", "image_id", "method"])

    def posthoc_sets(self, tables):
        sets, rand = [], tables["rand"]
        if not rand.empty:
            last = final_step(rand)
            keys = keys_of(last, "check")
            for values, d in last.groupby(keys, sort=True):
                ids = ids_of(keys, values)
                check = ids.pop("check")
                sets.append((ids, check_question(check), ", ".join(sorted(map(str, d.model.unique()))), d))
        return sets

    def figures(self, folders, res):
        """A degradation-curve figure per folder (check and order; [A]'s, MPRT top-down, keeps the
        name fig3a_randomization), then an eMPRT figure per MPRT folder; a second folder of one
        check (another data set's) gets a numbered key."""
        seen = set()

        def unique(key):
            key = key if key not in seen else f"{key}_{len(seen)}"
            seen.add(key)
            return key

        curves = []
        for d in folders:
            check = check_of(d)
            key = unique("fig3a_randomization" if check == A_CHECK else f"randomization_{slug(check)}")
            what = "Cascading randomization ([A] Fig 3a)" if check == A_CHECK else f"{check} randomization"
            metric = {"spearman": "Spearman"}.get(_meta(d).get("similarity"), "SSIM")
            curves.append(Figure(key, f"{what}: {metric} with the trained maps per step, error bars: 95% bootstrap "
                                      f"interval; dotted: degradation thresholds ({folder_label(d)})",
                                 fig_randomization(d, title=check), sanity=True))
        complexity = []
        for d in folders:
            check = check_of(d)
            if not check.startswith("MPRT"):
                continue
            image = fig_complexity(d, title="e" + check)
            if image is not None:
                words = {"histogram": "entropy of the value histogram", "spatial": "spatial entropy of |map|"}
                complexity.append(Figure(unique(f"emprt_{slug(check)}"), f"e{check}: explanation complexity "
                                         f"({words.get(complexity_of_folder(_meta(d)), 'entropy')}) per step "
                                         f"({folder_label(d)})", image, sanity=True))
        return curves + complexity


def folder_label(d):
    """A result folder as a caption names it: a study's `D/results/NAME` as D/NAME."""
    d = Path(d)
    return f"{d.parent.parent.name}/{d.name}" if d.parent.name == "results" else d.name
