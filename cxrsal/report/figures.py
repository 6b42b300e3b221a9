"""The report's figures: every result kind draws its own (`ResultKind.figures`); here they are
collected, written to OUT/figures/ and the figures of an earlier report removed."""

from ..files import atomic_path
from ..stats.results import kinds


def collect(found, res):
    """Every kind's figures of the folders found of it, in the kinds' order ({key: Figure})."""
    figures = {}
    for kind in kinds():
        if found.get(kind.name):
            figures.update({f.key: f for f in kind.figures(found[kind.name], res)})
    return figures


def write(figures, folder):
    """The PNG of each figure into `folder`; a PNG of an earlier report that is not among them goes
    (the report is drawn anew each time, maybe from other results)."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, figure in figures.items():
        with atomic_path(folder / f"{key}.png") as tmp:
            tmp.write_bytes(figure.png)
    for stale in set(folder.glob("*.png")) - {folder / f"{key}.png" for key in figures}:
        stale.unlink(missing_ok=True)
