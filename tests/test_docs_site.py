"""The documentation site builds: `mkdocs build --strict` (broken links, anchors or pages missing
from the nav fail it), and the command reference, generated from the Click app, names every
command."""

import html
import os
import re
import subprocess
import sys
from pathlib import Path

from cxrsal.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict_and_list_every_command(tmp_path):
    site = tmp_path / "site"
    # NO_MKDOCS_2_WARNING: mkdocs-material's banner about its successor, not a build problem
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert out.returncode == 0, out.stdout + out.stderr
    page = site / "commands" / "index.html"
    assert page.is_file(), sorted(p.name for p in site.iterdir())
    text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
    for name, command in cli.commands.items():
        # a section per command, and its usage line
        assert f"cxrsal {name}" in text, f"the command reference lacks `cxrsal {name}`"
        assert f"Usage: cxrsal {name} [OPTIONS]" in re.sub(r"\s+", " ", text), f"no usage line for {name}"
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert opt in text, f"the command reference lacks {opt} of `cxrsal {name}`"
