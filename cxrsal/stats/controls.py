"""Can these checks fail? The control maps' verdicts (`cxrsal.saliency.controls`) against the ones
they must get by construction, per check and group: controls.csv and the report's section.

A check whose controls do not get their verdicts is uninformative on that data: a map known to be
useless (or known to be right) would be judged wrongly by it, so its verdict on a method says
little. Controls are kept out of the methods' fits and comparisons (`apart`, `without_controls`);
the tables show them apart (`split_controls`).
"""

from ..saliency.base import METHODS, control_methods, is_control
from .sources import NO_DATA

CONTROLS_TITLE = "Can these checks fail? The control maps' verdicts, expected by construction and observed"
CONTROLS_CAPTION = ("Controls (maps of known answer: `edge` no model, `random` noise, `oracle` the ground truth; "
                    "each judged in its own fit against the baseline, never in the methods' comparisons):")
CONTROLS_NOTE = ("A check is uninformative on this data when a control does not get the verdict it must: a map known "
                 "to be useless (or right) would be judged wrongly by it. `undefined` and `no data` verdicts show "
                 "nothing either way.")
COLUMNS = ["dataset", "group", "check", "control", "expected", "observed", "behaves", "why"]
UNINFORMATIVE = "uninformative"


def check_name(question):
    """A tests.csv question -> the check a control's `expected` names it by: [A]'s "trained vs
    randomized" and every "MPRT <order>" are MPRT, "sMPRT <order>" sMPRT, "eMPRT <order>" eMPRT;
    the other questions are their own names."""
    if question == "trained vs randomized":
        return "MPRT"
    head = str(question).split(" ")[0]
    return head if head in ("MPRT", "sMPRT", "eMPRT") else str(question)


def without_controls(frame):
    """`frame`'s rows other than the controls' (the methods' fits and post-hoc comparisons)."""
    if frame is None or not len(frame) or "method" not in frame.columns:
        return frame
    return frame[~frame.method.astype(str).map(is_control)]


def apart(frame, reference):
    """The frames of a question's mixed-model fits against `reference` (a baseline, or a control
    such as `random`): the methods' (the other controls left out), then one per other control
    present, with the reference alone: a control never moves the methods' estimates."""
    names = frame.method.astype(str)
    yield frame[~names.map(is_control) | (names == reference)]
    present = set(names) if len(frame) else set()
    for c in control_methods():
        if c in present and c != reference:
            yield frame[names.isin([c, reference])]


def split_controls(frame):
    """(the methods' rows, the controls' rows) of a table with a `method` column; (frame, None)
    without control rows."""
    if frame is None or not len(frame) or "method" not in frame.columns:
        return frame, None
    mask = frame.method.astype(str).map(is_control)
    if not mask.any():
        return frame, None
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def _observed(d):
    decisions = set(d.decision.astype(str))
    return "PASS" if decisions == {"PASS"} else ("FAIL" if "FAIL" in decisions else "undefined")


def controls_table(tests):
    """controls.csv: per data set, group, check (Table 2 question or sanity check) present in
    `tests` and control with a verdict expected for it: expected, observed (PASS, FAIL, undefined,
    no data), whether it behaves (yes, no, or "not shown" when undefined or without data) and why
    it must get that verdict."""
    import pandas as pd

    rows = []
    if tests is None or not len(tests):
        return pd.DataFrame(columns=COLUMNS)
    for (dataset, group, question), g in tests.groupby(["dataset", "group", "question"], sort=True):
        check = check_name(question)
        for c in control_methods():
            expected = getattr(METHODS.get(c), "expected", {}).get(check)
            if expected is None:
                continue
            d = g[g.method.astype(str) == c]
            observed = _observed(d) if len(d) else NO_DATA
            behaves = ("yes" if observed == expected[0] else
                       "not shown" if observed in ("undefined", NO_DATA) else "no")
            rows.append(dict(dataset=dataset, group=group, check=question, control=c, expected=expected[0],
                             observed=observed, behaves=behaves, why=expected[1]))
    return pd.DataFrame(rows, columns=COLUMNS)


def uninformative_checks(controls):
    """{(dataset, group, check): the sentence saying why it is uninformative on this data}: the
    checks a control did not behave in."""
    out = {}
    if controls is None or not len(controls):
        return out
    for r in controls[controls.behaves == "no"].itertuples():
        key = (r.dataset, r.group, r.check)
        said = f"the `{r.control}` control got {r.observed} where it must get {r.expected} ({r.why})"
        out[key] = f"{out[key]}; {said}" if key in out else said
    return {k: f"{k[2]}: uninformative on this data: {v}, so its verdict on a method shows little here."
            for k, v in out.items()}


def marked(rows, controls, dataset, group, renamed=None):
    """Table rows of one group whose uninformative check columns are renamed "<check> [uninformative]";
    `renamed`: a check's column name in this table when it differs (the sanity table's)."""
    bad = [k[2] for k in uninformative_checks(controls) if k[0] == dataset and k[1] == group]
    names = {(renamed or {}).get(q, q): f"{(renamed or {}).get(q, q)} [{UNINFORMATIVE}]" for q in bad}
    return rows.rename(columns={c: n for c, n in names.items() if c in rows.columns})
