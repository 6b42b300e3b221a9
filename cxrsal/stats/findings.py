"""Which headline findings of the two studies hold on these results: [B]'s WILDCAT maps against
GradCAM and the average mask, [A]'s verdicts of cascading randomization."""

from ..metrics.defined import UNDEFINED
from .sources import NO_DATA
from .tables import pointwise_cell

FINDINGS_TITLE = "Which findings of the studies hold on these results"


def _number(cell):
    """A Table 1 cell as a number, or None ("no data", several values, positives only)."""
    try:
        return float(cell)
    except (TypeError, ValueError):
        return None


def findings(res):
    """The studies' headline findings checked on these results, one row each: study, finding,
    holds (yes / no / undefined / no data) and the numbers behind it.

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
        avg = pointwise_cell(pw, run, "baseline:avg", dataset) if len(pw) else NO_DATA
        values = {"WILDCAT": _number(wc.iloc[0]["pointwise AP"]),
                  "GradCAM": _number(clf.iloc[0]["pointwise AP"]) if len(clf) else None,
                  "average mask": _number(avg)}
        others = [v for k, v in values.items() if k != "WILDCAT"]
        known = values["WILDCAT"] is not None and all(v is not None for v in others)
        add("[B]", f"{dataset}/{backbone}: WILDCAT's pointwise AP above GradCAM's and the average mask's", values,
            ("yes" if all(values["WILDCAT"] > v for v in others) else "no") if known else NO_DATA)
        u = t1u[(t1u.dataset == dataset) & (t1u.backbone == backbone)] if len(t1u) else t1u
        uw, uc = (u[u["head"] == h] for h in ("wildcat", "classification"))
        values = {"WILDCAT": _number(uw.iloc[0]["wildcat"]) if len(uw) else None,
                  "GradCAM": _number(uc.iloc[0]["gcam"]) if len(uc) else None,
                  "average mask": _number(uw.iloc[0]["average mask"]) if len(uw) else None}
        others = [v for k, v in values.items() if k != "WILDCAT"]
        known = values["WILDCAT"] is not None and all(v is not None for v in others)
        add("[B]", f"{dataset}/{backbone}: WILDCAT's utility AUPRC above GradCAM's and the average mask's", values,
            ("yes" if all(values["WILDCAT"] > v for v in others) else "no") if known else NO_DATA)
    tests = res["tests"]
    rand = tests[tests.question == "trained vs randomized"] if len(tests) else tests
    for group, d in (rand.groupby("group", sort=True) if len(rand) else ()):
        decided = {m: d[d.method == m] for m in ("gcam", "gbp", "ggcam", "xrai")}
        for method, want in (("gcam", "PASS"), ("gbp", "PASS"), ("ggcam", "PASS"), ("xrai", "FAIL")):
            r = decided[method]
            values = {"randomized SSIM - threshold": float(r.iloc[0]["estimate"]) if len(r) else None}
            decisions = set(r.decision)
            # an undefined verdict neither supports nor contradicts the finding
            holds = NO_DATA if r.empty else ("yes" if decisions == {want} else
                                             UNDEFINED if decisions <= {want, UNDEFINED} else "no")
            add("[A]", f"{group}: {method} {'passes' if want == 'PASS' else 'fails'} cascading randomization",
                values, holds)
    return pd.DataFrame(rows, columns=["study", "finding", "holds", "evidence"])
