"""`cxrsal report`: one self-contained HTML page (figures embedded) plus Markdown, made of the
statistics (`cxrsal stats`), every result kind's figures and the provenance of every number.

`figures` collects and writes the kinds' figures, `page` lays out report.html, `text` writes
report.md and gathers the provenance, `published` sets the papers' figures beside the run's.
"""

from pathlib import Path

from ..files import atomic_write_text, remove_stale_tmp
from ..metrics.defined import MIN_IMAGES
from . import figures as _figures
from .page import report_html
from .published import beside
from .text import provenance, report_markdown


def build_report(dirs, out, *, log=print, posthoc="multcomp", published=None, min_images=MIN_IMAGES,
                 test="satterthwaite", alpha=0.05):
    """Stats, tables, figures and provenance into OUT/report.html and OUT/report.md.

    `posthoc` (a `cxrsal.stats.POSTHOC` name), `min_images` and `test` (`stats.min_images`, `stats.test`) are
    passed to `run_stats`. `published`: the roles of each
    data set (`report.published`), whose papers' figures are set beside this run's.
    """
    from ..stats.study import run_stats

    out = Path(out)
    remove_stale_tmp(out, recursive=True)
    res = run_stats(dirs, out / "stats", posthoc=posthoc, min_images=min_images, test=test, alpha=alpha, log=log)
    res["beside"] = beside(published, res) if published else []
    figures = _figures.collect(res["found"], res)
    _figures.write(figures, out / "figures")
    prov = provenance(res["found"])
    atomic_write_text(out / "report.md", report_markdown(res, figures, prov))
    atomic_write_text(out / "report.html", report_html(res, figures, prov))
    log(f"report: {out / 'report.html'} ({len(figures)} figures)")
    return out / "report.html"
