"""Where the verdicts stand on nothing: the constant maps behind each method's tests (counted per
data set x model group, with the likely cause where most are constant) and the count of
undefined verdicts with their reasons (cxrsal.metrics.defined holds the rule itself)."""

from ..metrics.defined import UNDEFINED, texts
from ..saliency.base import METHODS, ordered
from .results import kinds
from .sources import NO_DATA, group_model

CONSTANT_TITLE = "Constant maps per method (maps without structure: no similarity, no complexity)"
CONSTANT_COLUMNS = ("dataset", "group", "model", "method", "maps", "constant", "share", "likely cause")
MOSTLY = 0.5       # a method is named when more than this share of its maps are constant


def _feature_map_method(method):
    """A map drawn from a feature map (GradCAM and its kin, WILDCAT): one value per cell, upsampled."""
    m = METHODS.get(method) if method in METHODS.names() else None
    return bool(m is not None and not m.channels and (m.needs_layers or m.needs_wildcat))


def likely_cause(method, dead):
    """Why a method's maps are mostly constant, the likeliest first: every method of the model too
    (`dead`, two methods at least): the model; a feature-map method: its feature map; a gradient
    method: its gradients."""
    if dead:
        return ("a dead model: every method's maps are mostly constant, so the output does not depend on the input "
                "(weights collapsed, or not trained)")
    if _feature_map_method(method):
        return ("a feature map too coarse for the image (a few cells, one value upsampled) or no positive evidence "
                "left after the ReLU of the class map")
    return "gradients that vanish at the input (saturated or dead units)"


def constant_table(tables):
    """Per data set x group x method: the trained models' maps behind its tests (every kind's
    `constant_maps`: each model's maps of each image once), how many were constant, their share,
    and the likely cause where more than half were."""
    import pandas as pd

    parts = [k.constant_maps(tables) for k in kinds()]
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        return pd.DataFrame(columns=list(CONSTANT_COLUMNS))
    t = pd.concat(parts, ignore_index=True)
    t = t.groupby(["dataset", "group", "method"], as_index=False)[["maps", "constant"]].sum()
    t[["maps", "constant"]] = t[["maps", "constant"]].astype(int)      # counts (a part may hold them as floats)
    t["share"] = t.constant / t.maps.where(t.maps > 0)
    mostly = t.share > MOSTLY
    # a dead model: every method of it (two at least) mostly constant
    group = t.assign(m=mostly).groupby(["dataset", "group"]).m
    dead = group.transform("all") & (group.transform("size") >= 2)
    t["likely cause"] = [likely_cause(m, d) if k else "" for m, d, k in zip(t.method, dead, mostly)]
    t.insert(2, "model", t.group.map(group_model))
    order = {m: k for k, m in enumerate(ordered([m for m in set(t.method) if m in METHODS.names()]))}
    t = t.sort_values(["dataset", "group", "method"], key=lambda c: c.map(order) if c.name == "method" else c)
    return t[list(CONSTANT_COLUMNS)].reset_index(drop=True)


def constant_cells(table2, constant):
    """Table 2 (or the sanity table) with a "constant maps" column: "c of n" per method and group
    (none when no result records its constant maps)."""
    if not len(table2) or not len(constant):
        return table2
    counts = {(r.dataset, r.model, r.method): f"{int(r.constant)} of {int(r.maps)}" for r in constant.itertuples()}
    return table2.assign(**{"constant maps": [counts.get((d, m, x), NO_DATA) for d, m, x in
                                              zip(table2.dataset, table2.model, table2.method)]})


def verdict_counts(tests):
    """{decision: count} of tests.csv and {reason: count} of its undefined rows."""
    if tests.empty:
        return {}, {}
    decisions = tests.decision.value_counts().to_dict()
    und = tests[tests.decision == UNDEFINED]
    reasons = {}
    for r in texts(und, "reason"):
        for part in (str(r).split("; ") if r else ["no p-value"]):
            reasons[part] = reasons.get(part, 0) + 1
    return decisions, reasons


def summary_lines(res):
    """The report's summary: verdicts PASS / FAIL / undefined (each undefined reason counted), and
    the methods whose maps are mostly constant, with the likely cause."""
    decisions, reasons = verdict_counts(res["tests"])
    total = sum(decisions.values())
    lines = [f"{total} tests: " + ", ".join(f"{decisions.get(d, 0)} {d}" for d in ("PASS", "FAIL", UNDEFINED))
             + (" (a verdict is undefined when a statistic it rests on is: never PASS or FAIL)" if
                decisions.get(UNDEFINED) else "")]
    for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"- undefined: {reason} ({n} test{'s' if n > 1 else ''})")
    constant = res.get("constant")
    if constant is not None and len(constant):
        named = constant[constant["likely cause"] != ""]
        for _, r in named.iterrows():
            lines.append(f"- {r.method} ({r.dataset}, {r.model}): {int(r.constant)} of {int(r.maps)} maps constant; "
                         f"likely cause: {r['likely cause']}")
    return lines
