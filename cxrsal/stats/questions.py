"""The questions of [A]'s Table 2 and the sanity checks: the rows of tests.csv every kind's tests
write, the post-hoc comparisons between methods, and the PASS/FAIL tables made of them.

Each result kind (`cxrsal/stats/kinds/`) declares the questions it answers and computes their
tests with the helpers here; Table 2's columns are the kinds' questions in the kinds' order.
"""

import numpy as np

from ..saliency.base import METHODS, ordered
from ..metrics.defined import UNDEFINED, joined, texts, too_few
from . import POSTHOC, Rules, better_than, decided, finding, mixed_model, one_sample, undefined_values, vs_threshold
from .controls import apart, without_controls
from .power import detectable_difference
from .results import kinds
from .sources import NO_DATA, UNKNOWN, group_model, group_name

TESTS_COLUMNS = ("dataset", "group", "question", "model", "method", "comparison", "estimate", "ci_low", "ci_high",
                 "p_value", "df", "test", "n", "finding", "decision", "detectable", "reason", "left_out", "source")
BOOTSTRAP = 1000    # image-level replicates of every interval of a mean
REFERENCE = "reference"     # Table 2's cell of the method a question compares the others with (the random control)


def table2_columns():
    """Table 2's questions: every kind's `questions`, in the kinds' order."""
    return tuple(q for kind in kinds() for q in kind.questions)


def sanity_columns():
    """The sanity table's columns: every kind's sanity checks, in the kinds' order."""
    return tuple(c for kind in kinds() for c in kind.sanity)


def sanity_meaning(column):
    """What a PASS of a sanity-table column means."""
    return next(kind.sanity[column] for kind in kinds() if column in kind.sanity)


def keys_of(frame, *extra):
    """The columns of `frame` that identify where a row comes from (data set, group, source) and `extra`."""
    return [c for c in ("dataset", "group", "source", *extra) if c in frame.columns]


def ids_of(keys, values):
    values = values if isinstance(values, tuple) else (values,)
    return dict(zip(keys, values))


def tests_row(ids, question, model, method, comparison, estimate, ci_low, ci_high, p, test, decision, found, *,
              n=None, reason="", left_out="", df=None):
    """One row of tests.csv, under the one rule (`decided`): with a `reason` (why a statistic it
    rests on is undefined) the decision is "undefined". `n`: the images it rests on; `left_out`:
    the undefined values left out of it, counted; `df`: the t-test's degrees of freedom."""
    return decided(dict(ids, question=question, model=model, method=method, comparison=comparison,
                        estimate=estimate, ci_low=ci_low, ci_high=ci_high, p_value=p, df=df, test=test, n=n,
                        finding=found,
                        decision=decision, reason=reason, left_out=left_out))


def mean_interval(values, alpha):
    """The (1 - alpha) interval of a mean over images: percentile interval of `BOOTSTRAP`
    image-level bootstrap replicates (seed 0); NaN for fewer than two finite values."""
    from ..metrics import bootstrap_mean_ci

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    return bootstrap_mean_ci(values, replicates=BOOTSTRAP, seed=0, level=1 - alpha)


def threshold_of(thresholds, method, ids):
    """(threshold, reason) of a method among `thresholds` rows matching `ids`: the mean when
    several; the reasons the rows give why one is undefined ("no threshold" when none is there)."""
    th = thresholds[thresholds.method == method] if len(thresholds) else thresholds
    for k, v in ids.items():
        th = th[th[k] == v] if k in th.columns else th
    if not len(th) or th.threshold.isna().all():
        return float("nan"), joined(*sorted(set(texts(th, "reason")))) or "no threshold"
    why = sorted(set(texts(th, "reason")))
    return float(th.threshold.mean()), joined(*why)


def versus_rows(ids, question, model, frame, reference, rules):
    """tests.csv rows of every method of `frame` against `reference` (a baseline or a control) by
    the mixed model, paired by image (`mixed_model`): the methods in one fit, each other control in
    a fit of its own (`controls.apart`); PASS = significantly better, with the three-way finding."""
    rows = []
    for part in apart(frame, reference):
        for r in mixed_model(part, reference=reference, alpha=rules.alpha, min_images=rules.min_images,
                             test=rules.test):
            rows.append(tests_row(ids, question, model, r["level"], reference, r["estimate"], r["ci_low"],
                                  r["ci_high"], r["p_value"], r["test"],
                                  better_than(r["estimate"], r["p_value"], rules.alpha),
                                  finding(r["estimate"], r["p_value"], rules.alpha), n=r["n"],
                                  reason=joined(r["reason"], r["left_out"]) if r["reason"] else "",
                                  left_out=r["left_out"], df=r["df"]))
    return rows


def sets_per_model(frame, question):
    """Post-hoc sets (ids, question, model, rows) of a per-image table, one per scored model."""
    sets = []
    if frame.empty:
        return sets
    keys = keys_of(frame, "model")
    for values, d in frame.groupby(keys, sort=True):
        ids = ids_of(keys, values)
        sets.append(({k: v for k, v in ids.items() if k != "model"}, question, ids.get("model", ""), d))
    return sets


def threshold_test(ids, question, model, method, d, threshold, rules):
    """Mean SSIM of rows `d` against a degradation threshold ((value, reason), `threshold_of`):
    PASS below it, "undefined" when the threshold is or fewer than `rules.min_images` values are
    defined. The two-sided t-test's p-value is shown; the decision does not use it."""
    thr, why = threshold
    values = d.value.to_numpy(float)
    ok = values[np.isfinite(values)]
    mean = float(ok.mean()) if len(ok) else float("nan")
    decision, found = vs_threshold(mean, thr)
    lo, hi = mean_interval(ok, rules.alpha)
    gone = undefined_values(d)
    images = d[np.isfinite(values)].image_id.nunique()      # replicates share their images
    few = too_few(images, rules.min_images)
    return tests_row(ids, question, model, method, "threshold", mean - thr, lo - thr, hi - thr,
                     one_sample(ok, thr), "t-test (two-sided)", decision, found, n=images, df=len(ok) - 1,
                     reason=joined(why, joined(few, gone) if few else ""), left_out=gone)


def run_tests(tables, rules=Rules()):
    """Every kind's tests over the pooled tables, as tests.csv orders them."""
    import pandas as pd

    rows = [decided(dict(row)) for kind in kinds() for row in kind.tests(tables, rules)]
    for row in rows:      # "no difference": the smallest difference the test could have found (80 % power)
        row["detectable"] = (detectable_difference(row["ci_low"], row["ci_high"], row.get("df"), rules.alpha)
                             if row.get("finding") == "no difference" else float("nan"))
    tests = pd.DataFrame(rows, columns=list(TESTS_COLUMNS))
    return tests.sort_values(["dataset", "group", "question", "source", "method"], kind="stable", ignore_index=True)


def posthoc_tests(sets, procedure="multcomp", rules=Rules()):
    """Pairwise comparisons between methods (controls left out) within each (group, question) set, by `procedure`
    ("multcomp": the mixed model's contrasts, single-step adjusted as R's multcomp; "holm": the
    same contrasts' t-tests, Holm-adjusted; "tukey-hsd-unpaired": Tukey HSD ignoring the images)."""
    import pandas as pd

    fn = POSTHOC.get(procedure)
    tables = []
    for ids, question, model, d in sets:
        d = without_controls(d)        # the controls are judged apart, never compared with the methods
        t = fn(d, alpha=rules.alpha, min_images=rules.min_images,
               **({"stat": rules.test} if procedure == "holm" else {}))
        where = dict(dataset=ids.get("dataset", UNKNOWN), group=ids.get("group", UNKNOWN), question=question,
                     model=model, source=ids.get("source", ""))
        for k, (name, value) in enumerate(where.items()):
            t.insert(k, name, value)
        if len(t):
            tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def table2(tests, columns=None):
    """PASS/FAIL per data set x model group, method and criterion; a cell without data says so.

    A cell PASSes when every test behind it (e.g. several scored runs of one architecture)
    PASSes, FAILs when any FAILs, else is "undefined" (a statistic it rests on is: tests.csv's
    `reason`, `undefined_cells`). Columns: dataset, model, method,
    then the questions (`table2_columns()` by default); one block of rows per group, methods in
    [A]'s order.
    """
    import pandas as pd

    criteria = table2_columns() if columns is None else tuple(columns)
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
            row = {"dataset": dataset, "model": group_model(group), "method": m}
            for q in criteria:
                d = g[(g.method == m) & (g.question == q)]
                if d.empty:      # the control every method of the question is compared with, or no result
                    asked = g[g.question == q]
                    row[q] = REFERENCE if "comparison" in g.columns and m in set(asked.comparison) else NO_DATA
                else:
                    decisions = set(d.decision)
                    row[q] = "PASS" if decisions == {"PASS"} else ("FAIL" if "FAIL" in decisions else UNDEFINED)
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def undefined_cells(tests, columns=None, renamed=None):
    """Why each undefined cell of Table 2 (or of the sanity table, `renamed` its questions) is:
    rows dataset, group, method, question, reason (the tests' reasons, joined), in table order."""
    import pandas as pd

    out = pd.DataFrame(columns=["dataset", "group", "method", "question", "reason"])
    if tests.empty or "reason" not in tests.columns:
        return out
    t = tests.assign(question=tests.question.replace(renamed or {}))
    t = t[t.method.isin(list(METHODS.names()))]         # the table's rows: saliency methods only
    criteria = set(table2_columns() if columns is None else columns)
    rows = []
    for (dataset, group, method, question), d in t[t.question.isin(criteria)].groupby(
            ["dataset", "group", "method", "question"], sort=True):
        decisions = set(d.decision)
        if "FAIL" in decisions or decisions == {"PASS"}:
            continue
        reasons = sorted({r for r in texts(d, "reason") if r})
        rows.append(dict(dataset=dataset, group=group, method=method, question=question,
                         reason="; ".join(reasons) or "no p-value"))
    return pd.DataFrame(rows, columns=list(out.columns)) if rows else out


def sanity_renames():
    """A Table 2 question that is also a sanity check -> its sanity-table column."""
    return {q: c for kind in kinds() for q, c in kind.sanity_names.items()}


def sanity_table(tests):
    """PASS/FAIL per group and method of every sanity check present (`sanity_columns()`; a Table 2
    question that is also a sanity check, such as [A]'s top-down MPRT, under its sanity name),
    columns without any result left out."""
    if tests.empty:
        return table2(tests, columns=())
    tests = tests.assign(question=tests.question.replace(sanity_renames()))
    present = tuple(c for c in sanity_columns() if c in set(tests.question))
    return table2(tests, columns=present)
