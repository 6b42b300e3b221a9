"""The walkthrough notebook runs top to bottom on the synthetic data (CI executes it)."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "walkthrough.ipynb"


def test_walkthrough_runs(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # the last cell shows the degradation figure
    assert any("image/png" in o.get("data", {}) for o in nb.cells[-1].outputs)
