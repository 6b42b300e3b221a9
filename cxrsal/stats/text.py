"""The words around the tables: titles, the PASS rule, the choices in force, what each sanity
check means, and tables.md, which `cxrsal stats` writes and `cxrsal report` embeds."""

from pathlib import Path

import numpy as np

from ..metrics.defined import MIN_IMAGES
from ..saliency.base import is_control
from . import ALPHA, POSTHOC
from .controls import (CONTROLS_CAPTION, CONTROLS_NOTE, CONTROLS_TITLE, marked, split_controls,
                       uninformative_checks)
from .findings import FINDINGS_TITLE
from .questions import BOOTSTRAP, sanity_meaning, sanity_renames
from .sources import NO_DATA, UNKNOWN, group_model
from .undefined import CONSTANT_TITLE, summary_lines

POOLING = "Results of different data sets or architectures are never pooled: each Table 2 holds one group."
TABLE1_TITLE = ("Table 1 ([B]): per backbone x head the run with the best validation score; its test AUC and "
                "pointwise AP")
TABLE1_UTILITY_TITLE = "Table 1 ([B]), utility: AUPRC (mean over positive images) of the chosen runs' maps"
SANITY_TITLE = "Sanity checks: every randomization order, sMPRT, eMPRT and data randomization"
SUMMARY_TITLE = "Summary"
CONSTANT_NOTE = ("Maps: the trained models' maps behind the tests, each model's map of each image once (the trained "
                 "step of a randomization, both models' maps of a comparison, the scored maps; a randomized model's "
                 "maps are not counted). A constant map has no structure: a similarity with it is undefined where "
                 "it is the reference, and so is a rise from its complexity (its histogram entropy is 0, the "
                 "spatial one of an all-zero map has no value; tests.csv's `left_out`). "
                 "Likely cause: where more than half are constant.")


def rules_sentence(posthoc, alpha=ALPHA, min_images=MIN_IMAGES):
    """The PASS rule and the post-hoc procedure, in one sentence."""
    how = POSTHOC.get(posthoc).meaning
    return (f"PASS = significantly better than the baseline, low or high (estimate > 0, two-sided p < {alpha}); "
            "FAIL = not significantly better (tests.csv's `finding` says whether worse or no different); "
            "randomization PASSES when the fully randomized mean SSIM is below the method's degradation "
            "threshold, data randomization when the SSIM between the true and the label-permuted model's maps is; "
            f"mixed models: t-tests with Satterthwaite degrees of freedom as lmerTest's (stats.test); "
            f"intervals: {BOOTSTRAP} image-level bootstrap replicates (mixed-model rows: the model's own); post-hoc "
            f"comparisons between methods: {how} (posthoc.csv). A verdict is undefined, never PASS or FAIL, "
            "when a statistic it rests on is: a degradation threshold of constant maps, a similarity with a constant "
            f"map, fewer than {min_images} images with a defined value (stats.min_images); a mixed model that did "
            "not converge falls back to a paired t-test (tests.csv's `test`).")


def table2_sections(res):
    """One section per group: (title, lines before the table, Table 2 rows, lines after it)."""
    t2, groups, choices = res["table2"], res["groups"], res["choices"]
    sections = []
    for group, g in groups.items():
        rows = t2[(t2.dataset == g["dataset"]) & (t2.model == g["model"])].reset_index(drop=True)
        rows = marked(with_detectable(rows, res["tests"], group), res.get("controls"), g["dataset"], group)
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
        after += undefined_lines(res, group, "Table 2")
        after += [f"- {line}" for (d, grp, _), line in uninformative_checks(res.get("controls")).items()
                  if d == g["dataset"] and grp == group]
        after.append(rules_sentence(res["posthoc_name"], res["alpha"], res.get("min_images", MIN_IMAGES)))
        after.append(DETECTABLE_NOTE)
        sections.append((title, before, rows, after))
    return sections


DETECTABLE_NOTE = ("A FAIL that found no difference shows, in brackets, the smallest difference its test could have "
                   "detected with 80 % power on these images (from the test's standard error; tests.csv's "
                   "`detectable`): when that is large, the images were too few to tell, not the method no better.")


def with_detectable(rows, tests, group):
    """Table 2 rows of one group as shown: a FAIL whose tests all found "no difference" gets the
    smallest difference they could have detected at 80 % power (the largest over its tests)."""
    if not len(rows) or tests is None or not len(tests) or "detectable" not in tests.columns:
        return rows
    rows = rows.copy()
    g = tests[tests.group == group]
    for q in [c for c in rows.columns if c not in ("dataset", "model", "method", "constant maps")]:
        for i, method in enumerate(rows.method):
            d = g[(g.method == method) & (g.question == q)]
            if rows.at[i, q] == "FAIL" and len(d) and (d.finding == "no difference").all() \
                    and np.isfinite(d.detectable.astype(float)).all():
                rows.at[i, q] = f"FAIL (no difference; detectable {d.detectable.astype(float).max():.3f})"
    return rows


def undefined_lines(res, group, table):
    """"Undefined cells:" and one line per undefined cell of `table` ("Table 2", "sanity") with its
    reason: of one group, or of every group (`group` None, each line naming its group)."""
    u = res.get("undefined")
    if u is None or not len(u):
        return []
    u = u[u.table == table]
    if group is not None:
        u = u[u.group == group]
    if not len(u):
        return []
    return ["Undefined cells:"] + [f"- {'' if group is not None else r.group + ': '}{r.method}, {r.question}: "
                                   f"{r.reason}" for r in u.itertuples()]


# the summary's areas: Table 2's questions a method must PASS, every one present, to be named
FOUND_AREAS = (("Localization utility", ("utility vs average mask", "utility vs localization network")),
               ("Model and data randomization", ("trained vs randomized", "data randomization")),
               ("Repeatability and reproducibility", ("repeatability vs 0.5", "repeatability vs localization network",
                                                      "reproducibility vs 0.5",
                                                      "reproducibility vs localization network")))


def found_lines(res):
    """Five lines of what the run found: per area of Table 2 the methods that PASS all its
    questions with data (per group), the power of the FAILs that found no difference, and how many
    of the papers' headline findings hold."""
    t2, tests = res["table2"], res["tests"]
    lines = []
    for area, questions in FOUND_AREAS:
        parts = []
        for (dataset, model), g in (t2.groupby(["dataset", "model"], sort=True) if len(t2) else ()):
            present = [q for q in questions if q in g.columns and (g[q] != NO_DATA).any()]
            if not present:
                continue
            passed = [m for m, r in zip(g.method, g[present].itertuples(index=False))
                      if set(r) == {"PASS"} and not is_control(m)]
            parts.append(f"{', '.join(passed) or 'none'} ({dataset}/{model})")
        lines.append(f"- {area}, the methods that PASS every question with data: "
                     + ("; ".join(parts) if parts else NO_DATA))
    if len(tests) and "detectable" in tests.columns:
        nd = tests[(tests.decision == "FAIL") & (tests.finding == "no difference")]
        fails = int((tests.decision == "FAIL").sum())
        mdd = nd.detectable.astype(float).dropna()
        lines.append(f"- Power: {len(nd)} of {fails} FAILs found no difference"
                     + (f"; the smallest differences they could have detected (80 % power): median {mdd.median():.3f}"
                        f" (range {mdd.min():.3f} to {mdd.max():.3f}), on a median of "
                        f"{int(nd.n.astype(float).median())} images" if len(mdd) else ""))
    else:
        lines.append(f"- Power: {NO_DATA}")
    f = res.get("findings")
    if f is not None and len(f):
        lines.append(f"- The papers' headline findings: {int((f.holds == 'yes').sum())} of {len(f)} hold here "
                     "(findings.csv)")
    else:
        lines.append(f"- The papers' headline findings: {NO_DATA}")
    return lines


def summary(res):
    """The summary's lines: what the run found (`found_lines`), then the verdicts and constant
    maps (`undefined.summary_lines`)."""
    return ["What this run found:", *found_lines(res), "", *summary_lines(res)]


def shown(output):
    """An output table as the report shows it (the group column is the data set and model already
    in its rows)."""
    frame = output.frame
    return frame.drop(columns=["group"]) if len(frame) and "group" in frame.columns else frame


def later_tables(res):
    """(title, table, note, always) of every table after Table 2: Table 1 and its utility part
    (`always`: tables.md shows them without rows too, saying "no data"), each kind's own tables,
    the findings."""
    parts = [(TABLE1_TITLE, res["table1"], "", True), (TABLE1_UTILITY_TITLE, res["table1_utility"], "", True)]
    parts += [(o.title, shown(o), o.note, False) for o in res["outputs"]]
    constant = res.get("constant")
    if constant is not None and len(constant):
        parts.append((CONSTANT_TITLE, constant.drop(columns=["group"]), CONSTANT_NOTE, False))
    controls = res.get("controls")
    if controls is not None and len(controls):
        said = [f"{d}/{group_model(grp)}: {line}" for (d, grp, _), line in uninformative_checks(controls).items()]
        parts.append((CONTROLS_TITLE, controls.drop(columns=["group"]), " ".join([CONTROLS_NOTE, *said]), False))
    return parts + [(FINDINGS_TITLE, res["findings"], "", False)]


def sanity_meanings(sanity, res=None):
    """One sentence per check present: what a PASS means; then, with `res`, the choices each
    result folder's checks made (similarity, smoothing, eMPRT's complexity)."""
    lines = [f"- {column}: PASS = {sanity_meaning(column)}." for column in sanity.columns[3:]
             if column != "constant maps"]
    choices = (res or {}).get("sanity_choices") or []
    return lines + (["", "Choices of the checks, per result folder:", *choices] if choices else [])


def markdown(df):
    """A DataFrame as a Markdown table, floats to three decimals; the control maps' rows in a
    table of their own below the methods'."""
    methods, controls = split_controls(df)
    if controls is not None:
        return "\n\n".join([_markdown(methods) if len(methods) else NO_DATA, CONTROLS_CAPTION, _markdown(controls)])
    return _markdown(df)


def _markdown(df):
    cols = list(df.columns)
    fmt = lambda v: f"{v:.3f}" if isinstance(v, (float, np.floating)) and np.isfinite(v) else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(lines)


def tables_markdown(res, level=2):
    """tables.md: one Table 2 section per group (with its choices and rules), Table 1, each kind's
    own tables, the findings and the sanity checks (sections without rows left out, except the
    Table 1 ones, which say "no data")."""
    h = "#" * level
    parts = [f"{h} {SUMMARY_TITLE}", "", *summary(res), ""]
    sections = table2_sections(res)
    if not sections:
        parts += [f"{h} Table 2 ([A])", "", NO_DATA, ""]
    for title, before, rows, after in sections:
        parts += [f"{h} {title}", "", *before, "", markdown(rows) if len(rows) else NO_DATA, "", *after, ""]
    for title, table, note, always in later_tables(res):
        if always or len(table):
            parts += [f"{h} {title}", "", markdown(table) if len(table) else NO_DATA, ""]
            parts += [note, ""] if note and len(table) else []
    sanity = res.get("sanity")
    if sanity is not None and len(sanity):
        parts += [f"{h} {SANITY_TITLE}", "", markdown(sanity_marked(sanity, res)), "", *sanity_meanings(sanity, res),
                  *undefined_lines(res, None, "sanity"), ""]
    return "\n".join(parts)


def sanity_marked(sanity, res):
    """The sanity table with each check uninformative in some group marked "[uninformative]"
    (the section's lines say where and why)."""
    bad = {check for (_, _, check) in uninformative_checks(res.get("controls"))}
    renames = sanity_renames()
    return sanity.rename(columns={renames.get(q, q): f"{renames.get(q, q)} [uninformative]" for q in bad})
