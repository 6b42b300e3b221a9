"""The install lists every package (setup.cfg names them explicitly to map ./cli to cxrsal.cli)."""

import configparser
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_subpackage_is_installed():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "cxrsal").rglob("__init__.py")}
    assert found | {"cxrsal.cli"} == listed
    assert (ROOT / "cli" / "__init__.py").exists() and "cxrsal.cli = cli" in cfg["options"]["package_dir"]


def test_the_papers_figures_ship_with_the_package():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    shipped = cfg["options.package_data"]["cxrsal.report"].split()
    assert shipped == ["published.csv"] and (ROOT / "cxrsal" / "report" / "published.csv").is_file()
