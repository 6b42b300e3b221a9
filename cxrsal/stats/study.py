"""`cxrsal stats`: every question of [A] over whatever results exist, one Table 2 per data set x
model group (never pooled), Table 1 ([B]), each result kind's own tables, the sanity checks, and
the choices in force, saying which cells lack data.

The work is split by job: `sources` finds and loads the result folders, each kind under `kinds/`
tests its questions (`questions` holds what they share and builds Table 2), `tables` makes
Table 1 and the choices table, `findings` checks the papers' headlines, `text` writes the prose.
"""

from pathlib import Path

from ..files import atomic_path, remove_stale_tmp, write_frame
from . import ALPHA, POSTHOC
from .findings import findings
from .questions import posthoc_tests, run_tests, sanity_table, table2, table2_columns
from .results import kinds
from .sources import NO_DATA, described, discover, groups_of, load_results
from .tables import choices_table, table1, table1_utility
from .text import tables_markdown

WRITTEN = (("tests.csv", "tests"), ("posthoc.csv", "posthoc"), ("table2.csv", "table2"), ("table1.csv", "table1"),
           ("table1_utility.csv", "table1_utility"), ("choices.csv", "choices"), ("findings.csv", "findings"),
           ("sanity.csv", "sanity"))


def run_stats(dirs, out, *, alpha=ALPHA, posthoc="mixedlm", log=print):
    """Every test, post-hoc comparison and table over the results under `dirs`, written to `out`.

    Writes tests.csv, posthoc.csv (column `test` names the procedure), table2.csv (one block per
    data set x model group), table1.csv, table1_utility.csv, choices.csv, findings.csv,
    sanity.csv, each kind's own tables (localization.csv) and tables.md.
    `posthoc`: "mixedlm" (default; contrasts from the mixed model) or "tukey" (unpaired Tukey HSD).
    """
    POSTHOC.get(posthoc)   # an unknown name fails before any work
    found = discover(dirs)
    infos = described(found, dirs)
    t = load_results(infos)
    tests = run_tests(t, alpha)
    post = posthoc_tests([s for kind in kinds() for s in kind.posthoc_sets(t)], posthoc, alpha)
    groups = groups_of(infos)
    res = {"tests": tests, "posthoc": post, "table2": table2(tests), "sanity": sanity_table(tests),
           "table1": table1(found["runs"], t["pointwise"]), "table1_utility": table1_utility(found["runs"], t["scores"]),
           "choices": choices_table(infos), "groups": groups, "found": found, "posthoc_name": posthoc, "alpha": alpha,
           "pointwise_table": t["pointwise"]}
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
    missing = int((t2[list(table2_columns())] == NO_DATA).to_numpy().sum()) if len(t2) else 0
    log(f"{len(groups)} group(s) of data set x model, never pooled: {', '.join(groups) or 'none'}")
    log(f"{len(tests)} tests; Table 2 {len(t2)} rows, Table 1 {len(res['table1'])} rows; "
        f"{missing} Table 2 cells lack data")
    return res
