"""`cxrsal stats`: every question of [A] over whatever results exist, one Table 2 per data set x
model group (never pooled), Table 1 ([B]), each result kind's own tables, the sanity checks, and
the choices in force, saying which cells lack data.

The work is split by job: `sources` finds and loads the result folders, each kind under `kinds/`
tests its questions (`questions` holds what they share and builds Table 2), `tables` makes
Table 1 and the choices table, `findings` checks the papers' headlines, `text` writes the prose.
"""

from pathlib import Path

from ..files import atomic_path, remove_stale_tmp, write_frame
from ..metrics.defined import MIN_IMAGES, UNDEFINED
from . import ALPHA, POSTHOC, Rules
from .controls import controls_table
from .findings import findings
from .questions import (posthoc_tests, run_tests, sanity_renames, sanity_table, table2, table2_columns,
                        undefined_cells)
from .results import RESULTS, kinds
from .sources import NO_DATA, described, discover, groups_of, load_results
from .tables import choices_table, table1, table1_utility
from .text import tables_markdown
from .undefined import constant_cells, constant_table

WRITTEN = (("tests.csv", "tests"), ("posthoc.csv", "posthoc"), ("table2.csv", "table2"), ("table1.csv", "table1"),
           ("table1_utility.csv", "table1_utility"), ("choices.csv", "choices"), ("findings.csv", "findings"),
           ("sanity.csv", "sanity"), ("constant.csv", "constant"), ("undefined.csv", "undefined"),
           ("controls.csv", "controls"))


def run_stats(dirs, out, *, alpha=ALPHA, posthoc="multcomp", min_images=MIN_IMAGES, test="satterthwaite", log=print):
    """Every test, post-hoc comparison and table over the results under `dirs`, written to `out`.

    Writes tests.csv, posthoc.csv (column `test` names the procedure), table2.csv (one block per
    data set x model group), table1.csv, table1_utility.csv, choices.csv, findings.csv,
    sanity.csv, constant.csv (constant maps per method), undefined.csv (why each undefined cell
    of Table 2 and the sanity table is), controls.csv (the control maps' verdicts, expected and
    observed: can each check fail?), each kind's own tables (localization.csv) and tables.md.
    `posthoc`: "multcomp" (default; single-step over the mixed model's contrasts, as [A]), "holm"
    or "tukey-hsd-unpaired" (`cxrsal.stats.POSTHOC`).
    `min_images`: below it a question is "undefined" (`stats.min_images`); `test`: "satterthwaite"
    (lmerTest's t) or "wald" (z), how a mixed model is tested (`stats.test`).
    """
    POSTHOC.get(posthoc)   # an unknown name fails before any work
    rules = Rules(alpha=alpha, min_images=min_images, test=test)
    found = discover(dirs)
    infos = described(found, dirs)
    t = load_results(infos)
    tests = run_tests(t, rules)
    post = posthoc_tests([s for kind in kinds() for s in kind.posthoc_sets(t)], posthoc, rules)
    groups = groups_of(infos)
    constant = constant_table(t)
    res = {"tests": tests, "posthoc": post, "table2": constant_cells(table2(tests), constant),
           "sanity": constant_cells(sanity_table(tests), constant),
           "table1": table1(found["runs"], t["pointwise"], t["scores"]), "table1_utility": table1_utility(found["runs"], t["scores"]),
           "choices": choices_table(infos), "groups": groups, "found": found, "posthoc_name": posthoc, "alpha": alpha,
           "min_images": min_images, "test": test, "pointwise_table": t["pointwise"], "constant": constant}
    import pandas as pd

    res["controls"] = controls_table(tests)
    res["undefined"] = pd.concat([undefined_cells(tests).assign(table="Table 2"),
                                  undefined_cells(tests, sanity_columns_of(res["sanity"]), sanity_renames())
                                  .assign(table="sanity")], ignore_index=True)
    res["sanity_choices"] = [f"- {info['source']}: {line}" for info in infos
                             for line in [RESULTS.get(info["kind"]).sanity_choices(info)] if line]
    res["outputs"] = [o for kind in kinds() for o in kind.outputs(t, res)]
    res.update({o.name: o.frame for o in res["outputs"]})
    res["findings"] = findings(res)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)
    for name, key in WRITTEN:
        write_frame(out / name, res[key])
    for o in res["outputs"]:
        write_frame(out / f"{o.name}.csv", o.frame)
    with atomic_path(out / "tables.md") as tmp:
        tmp.write_text(tables_markdown(res))
    t2 = res["table2"]
    cells = t2[list(table2_columns())].to_numpy() if len(t2) else None
    missing = int((cells == NO_DATA).sum()) if cells is not None else 0
    undefined = int((cells == UNDEFINED).sum()) if cells is not None else 0
    log(f"{len(groups)} group(s) of data set x model, never pooled: {', '.join(groups) or 'none'}")
    log(f"{len(tests)} tests; Table 2 {len(t2)} rows, Table 1 {len(res['table1'])} rows; "
        f"{missing} Table 2 cells lack data, {undefined} are undefined (undefined.csv says why)")
    return res


def sanity_columns_of(sanity):
    """The check columns of a sanity table (after dataset, model, method; before the constant maps)."""
    return [c for c in sanity.columns[3:] if c != "constant maps"]
