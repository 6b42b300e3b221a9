"""report.html: one self-contained page (figures embedded as PNG data) whose figures and wide
tables fit the page width."""

import base64
import html

from ..stats.controls import CONTROLS_CAPTION, split_controls
from ..stats.results import kinds
from ..stats.sources import NO_DATA
from ..stats.text import (SANITY_TITLE, SUMMARY_TITLE, later_tables, sanity_marked, sanity_meanings, summary,
                          table2_sections, undefined_lines)

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
         "table.t{border-collapse:collapse}div.wide{max-width:100%;overflow-x:auto}"
         "table.t td,table.t th{border:1px solid #ccc;padding:3px 6px;font-size:12px}"
         "figure{margin:0}img{max-width:100%;height:auto}"
         "pre{background:#f6f6f6;padding:6px;font-size:11px;overflow:auto}")


def lines_html(lines):
    """Text lines of a table section: "- " lines become a list, the others paragraphs."""
    parts, items = [], []
    for line in lines + [""]:
        if line.startswith("- "):
            items.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if items:
            parts.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if line:
            parts.append(f"<p>{html.escape(line)}</p>")
    return "".join(parts)


def table_html(df):
    """A table in a box that scrolls when it is wider than the page; the control maps' rows in a
    table of their own below the methods'."""
    methods, controls = split_controls(df)
    if controls is not None:
        return "".join([_table_html(methods) if len(methods) else f"<p>{NO_DATA}</p>",
                        f"<p>{html.escape(CONTROLS_CAPTION)}</p>", _table_html(controls)])
    return _table_html(df)


def _table_html(df):
    return ("<div class='wide'>" + df.to_html(index=False, border=0, classes="t", na_rep="",
                                              float_format=lambda v: f"{v:.3f}") + "</div>")


def figure_html(figure, level=2):
    return (f"<h{level}>{html.escape(figure.caption)}</h{level}><figure id='{figure.key}'><img alt='{figure.key}' "
            f"src='data:image/png;base64,{base64.b64encode(figure.png).decode()}'/></figure>")


def report_html(res, figures, prov):
    """The whole page: Table 2 per group, the later tables, the sanity checks with their figures,
    the tests, the other figures, the provenance."""
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'><title>cxrsal report</title>"
             f"<style>{STYLE}</style></head><body>", "<h1>cxrsal report</h1>",
             f"<h2 id='summary'>{SUMMARY_TITLE}</h2>", lines_html(summary(res))]
    sections = table2_sections(res)
    if not sections:
        parts.append(f"<h2>Table 2 ([A])</h2><p>{NO_DATA}</p>")
    for title, before, rows, after in sections:
        parts += [f"<h2>{html.escape(title)}</h2>", lines_html(before),
                  table_html(rows) if len(rows) else f"<p>{NO_DATA}</p>", lines_html(after)]
    for title, table, note, _ in later_tables(res):
        parts += [f"<h2>{html.escape(title)}</h2>", table_html(table) if len(table) else f"<p>{NO_DATA}</p>"]
        if note and len(table):
            parts.append(f"<p>{html.escape(note)}</p>")
    sanity = res["sanity"]
    parts.append(f"<h2 id='sanity'>{html.escape(SANITY_TITLE)}</h2>")
    if len(sanity):
        parts += [table_html(sanity_marked(sanity, res)), lines_html(sanity_meanings(sanity, res) + undefined_lines(res, None, "sanity"))]
    else:
        hints = " or ".join(k.absent for k in kinds() if k.sanity and k.absent)
        parts.append(f"<p>{NO_DATA}: {html.escape(hints)}</p>")
    parts += [figure_html(f, level=3) for f in figures.values() if f.sanity]
    tests = res["tests"]
    parts += ["<h2>Statistical tests</h2>", table_html(tests) if len(tests) else "<p>no tests</p>"]
    for title, notes, table in res.get("beside", []):
        parts += [f"<h2>{html.escape(title)}</h2>", lines_html(notes), table_html(table)]
    parts += [figure_html(f) for f in figures.values() if not f.sanity]
    parts.append("<h2>Configs and versions</h2>")
    for name, text in prov:
        parts.append(f"<h3>{html.escape(name)}</h3><pre>{html.escape(text)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
