"""`cxrsal compare`: SSIM per image between two models' maps. Two replicates: repeatability; two
architectures: reproducibility (both [A], against 0.5 and against two localization networks);
a model and its twin trained on permuted labels: the data randomization test (Adebayo et al.
2018)."""

import numpy as np

from ...metrics.similarity import LOW_BASELINE
from ...metrics.defined import joined, too_few
from .. import Rules, better_than, finding, one_sample, undefined_values
from ..questions import ids_of, keys_of, mean_interval, threshold_of, threshold_test, tests_row, versus_rows
from ..results import ResultKind, register_result
from ..sources import UNKNOWN

LOCALIZATION = "baseline:localization"      # the two localization networks' maps compared
DATA_RANDOMIZATION = "data randomization"
MEANING = ("the maps of a model trained on permuted labels are less similar to the true model's than two different "
           "images' maps are: the method depends on the labels the model learnt from (Adebayo et al. 2018)")


def question_kind(info):
    """The data randomization test when one model learnt permuted labels; else repeatability when
    both models share an architecture (model key), reproducibility otherwise."""
    if info.get("check") == DATA_RANDOMIZATION:
        return DATA_RANDOMIZATION
    keys = [m["key"] for m in info["models"]]
    return "repeatability" if len(set(keys)) == 1 and UNKNOWN not in keys else "reproducibility"


def _pair(d):
    return f"{d.model_a.iloc[0]} vs {d.model_b.iloc[0]}" if len(d) and {"model_a", "model_b"} <= set(d.columns) else ""


def data_randomization_tests(compare, thresholds, rules=Rules()):
    """The data randomization test: mean SSIM between the true and the label-permuted model's
    maps against the degradation threshold of the true model's maps (PASS below it)."""
    rows = []
    keys = keys_of(compare)
    for values, d in (compare.groupby(keys + ["method"], sort=True) if len(compare) else ()):
        ids, method = ids_of(keys, values[:-1]), values[-1]
        if str(method).startswith("baseline:"):
            continue
        rows.append(threshold_test(ids, DATA_RANDOMIZATION, _pair(d), method, d,
                                   threshold_of(thresholds, method, ids), rules))
    return rows


def compare_tests(compare, kind, rules=Rules()):
    """SSIM between two models' maps against 0.5 (one-sample t-test, two-sided) and against the
    localization networks' SSIM (mixed model); PASS = significantly better."""
    rows, alpha = [], rules.alpha
    if compare.empty:
        return rows
    keys = keys_of(compare)
    groups = compare.groupby(keys, sort=True) if keys else [((), compare)]
    for values, d in groups:
        ids = ids_of(keys, values)
        saliency = d[~d.method.astype(str).str.startswith("baseline:")]
        pair = _pair(saliency)
        for method, m in saliency.groupby("method"):
            values = m.value.to_numpy(float)
            ok = values[np.isfinite(values)]
            est = float(ok.mean()) - LOW_BASELINE if len(ok) else float("nan")
            p = one_sample(ok, LOW_BASELINE)
            lo, hi = mean_interval(ok, alpha)
            gone = undefined_values(m)
            few = too_few(len(ok), rules.min_images)
            rows.append(tests_row(ids, f"{kind} vs 0.5", pair, method, "0.5", est, lo - LOW_BASELINE,
                                  hi - LOW_BASELINE, p, "t-test (two-sided)", better_than(est, p, alpha),
                                  finding(est, p, alpha), n=len(ok), reason=joined(few, gone) if few else "",
                                  left_out=gone, df=len(ok) - 1))
        if LOCALIZATION in set(d.method):
            rows += versus_rows(ids, f"{kind} vs localization network", pair, d, LOCALIZATION, rules)
    return rows


@register_result
class CompareResult(ResultKind):
    """`cxrsal compare`: SSIM per image between two models' maps (and two localization networks')."""
    name, marker, order = "compare", "compare.json", 2
    tables = {"compare": "compare.csv", "compare_thresholds": "thresholds.csv"}
    columns = {"compare": ("image_id", "model_a", "model_b", "method", "metric", "value"),
               "compare_thresholds": ("method", "threshold")}
    command = "`cxrsal compare`"
    sections = ("saliency", "ggcam", "compare", "similarity")
    questions = ("repeatability vs 0.5", "repeatability vs localization network", "reproducibility vs 0.5",
                 "reproducibility vs localization network", DATA_RANDOMIZATION)
    sanity = {DATA_RANDOMIZATION: MEANING}
    absent = "run `cxrsal compare` of a model and its `--permute-labels` twin"
    first_model_only = True     # two architectures: the result belongs to model A's group

    def prepare(self, info, frame):
        frame["question_kind"] = question_kind(info)
        return frame

    def tests(self, tables, rules):
        rows = []
        compare = tables["compare"]
        if not compare.empty:
            for kind, d in compare.groupby("question_kind", sort=True):
                if kind == DATA_RANDOMIZATION:
                    rows += data_randomization_tests(d, tables["compare_thresholds"], rules)
                else:
                    rows += compare_tests(d, kind, rules)
        return rows

    def constant_maps(self, tables):
        """Both models' maps of every image compared (a row holds two), constant ones counted."""
        from .score import flagged

        compare = tables["compare"]
        return flagged(compare, ["dataset", "group", "source", "model_a", "model_b", "image_id", "method"],
                       per_row=2) if len(compare) else None

    def posthoc_sets(self, tables):
        sets, compare = [], tables["compare"]
        if not compare.empty:
            keys = keys_of(compare)
            for values, d in compare.groupby(keys, sort=True):
                saliency = d[~d.method.astype(str).str.startswith("baseline:")]
                pair = f"{saliency.model_a.iloc[0]} vs {saliency.model_b.iloc[0]}" if len(saliency) else ""
                sets.append((ids_of(keys, values), str(d.question_kind.iloc[0]), pair, d))
        return sets
