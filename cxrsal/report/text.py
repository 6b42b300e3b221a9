"""report.md, and what the report shows for provenance: the resolved configs and versions behind
every number."""

from pathlib import Path

from ..stats.results import kinds
from ..stats.text import markdown, tables_markdown


def provenance(found):
    """(file name, text) of every file that records how a result folder's numbers were made (its
    kind's `provenance_files`), run cards first."""
    items = []
    for kind in sorted(kinds(), key=lambda k: k.name != "runs"):
        for folder in found[kind.name]:
            items += [(str(p), Path(p).read_text()) for p in kind.provenance_files(Path(folder)) if Path(p).exists()]
    return items


def report_markdown(res, figures, prov):
    """report.md: the tables, the sanity figures beside them, the tests, the other figures, the
    provenance."""
    tests = res["tests"]
    md = ["# cxrsal report", "", tables_markdown(res)]
    for key, f in figures.items():
        if f.sanity:
            md += [f"### {f.caption}", "", f"![{key}](figures/{key}.png)", ""]
    md += ["## Statistical tests", "",
           markdown(tests.round(4)) if len(tests) else "no tests (no results with baselines)", ""]
    for key, f in figures.items():
        if not f.sanity:
            md += [f"## {f.caption}", "", f"![{key}](figures/{key}.png)", ""]
    md += ["## Configs and versions", ""]
    for name, text in prov:
        md += [f"### {name}", "", "```", text.strip(), "```", ""]
    return "\n".join(md)
