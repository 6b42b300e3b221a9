"""The architecture is a contract: `lint-imports` checks setup.cfg's layers and that no package
sits in an import cycle with a sibling."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_layers_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--config", str(ROOT / "setup.cfg")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "3 kept, 0 broken" in out.stdout


def test_a_violation_is_caught(tmp_path):
    # the checker is live: a module of a low layer importing a high one breaks the contract
    bad = ROOT / "cxrsal" / "metrics" / "_contract_probe.py"
    bad.write_text("from cxrsal.stats import study  # noqa: F401\n")
    try:
        lint = Path(sys.executable).with_name("lint-imports")
        out = subprocess.run([str(lint), "--config", str(ROOT / "setup.cfg")], cwd=ROOT, capture_output=True,
                             text=True)
    finally:
        bad.unlink()
    assert out.returncode == 1 and "cxrsal.metrics._contract_probe -> cxrsal.stats.study" in out.stdout
