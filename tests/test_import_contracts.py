"""The architecture is a contract: `lint-imports` checks setup.cfg's layers and that no package
sits in an import cycle with a sibling."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path("cxrsal") / "metrics" / "_contract_probe.py"


def lint_imports(folder, env=None):
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--config", "setup.cfg", "--no-cache"], cwd=folder, env=env,
                          capture_output=True, text=True)


def test_layers_hold():
    out = lint_imports(ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "3 kept, 0 broken" in out.stdout


def test_a_violation_is_caught(tmp_path):
    # the checker is live: a module of a low layer (metrics) importing a high one (report) breaks
    # the contract. The probe goes into a copy of the packages, never into the checkout; the copy
    # comes first on the path (the editable install's finder comes after the path), so the copy is
    # what is analysed: only there does the probe exist.
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("cxrsal", "cli"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / "setup.cfg", tmp_path / "setup.cfg")
    (tmp_path / PROBE).write_text("import cxrsal.report  # noqa: F401\n")
    out = lint_imports(tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert not (ROOT / PROBE).exists()
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    assert "cxrsal.metrics._contract_probe -> cxrsal.report" in out.stdout, out.stdout[-3000:]
