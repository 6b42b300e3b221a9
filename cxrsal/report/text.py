"""report.md, and what the report shows for provenance: the resolved configs and versions behind
every number."""

from pathlib import Path

from ..stats.results import kinds
from ..stats.text import markdown, tables_markdown


def shown_text(kind, path):
    """A provenance file's text; of a config.yaml, the sections of the kind's settings (`sections`),
    said so in its first line (the file itself holds every section, most of them defaults that
    shaped nothing here)."""
    import yaml

    text = Path(path).read_text()
    if Path(path).name != "config.yaml" or not kind.sections:
        return text
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if not isinstance(cfg, dict):
        return text
    kept = {s: cfg[s] for s in kind.sections if s in cfg}
    return (f"# the settings of {kind.command} (sections {', '.join(kind.sections)}; the file holds every section)\n"
            + yaml.safe_dump(kept, sort_keys=False))


def provenance(found):
    """(file name, text) of every file that records how a result folder's numbers were made (its
    kind's `provenance_files`), run cards first."""
    items = []
    for kind in sorted(kinds(), key=lambda k: k.name != "runs"):
        for folder in found[kind.name]:
            items += [(str(p), shown_text(kind, p)) for p in kind.provenance_files(Path(folder)) if Path(p).exists()]
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
    for title, notes, table in res.get("beside", []):
        md += [f"## {title}", "", *[n + "\n" for n in notes], markdown(table), ""]
    for key, f in figures.items():
        if not f.sanity:
            md += [f"## {f.caption}", "", f"![{key}](figures/{key}.png)", ""]
    md += ["## Configs and versions", ""]
    for name, text in prov:
        md += [f"### {name}", "", "```", text.strip(), "```", ""]
    return "\n".join(md)
