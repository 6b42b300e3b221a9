"""Matplotlib without a display, and figures as PNG bytes (the report embeds them; result
folders are read, never written, by `cxrsal stats` and `cxrsal report`)."""

import io
from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig):
    """A figure's PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    pyplot().close(fig)
    return buf.getvalue()


def drawn(draw, *args, **kw):
    """The PNG bytes a plotting function that writes to a path (its argument after `args`) draws,
    through a temporary file."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figure.png"
        draw(*args, path, **kw)
        return path.read_bytes()


def slug(text):
    """`text` as a file name: letters and digits, the rest underscores."""
    return "".join(c if c.isalnum() else "_" for c in text.lower())
