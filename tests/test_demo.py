"""`cxrsal demo` at its smallest size, end to end, and the report it ends with."""

from html.parser import HTMLParser

import pandas as pd
from click.testing import CliRunner

from cxrsal.cli.main import cli


class Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.figures, self.images, self.tables, self.h2 = [], 0, 0, []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "figure":
            self.figures.append(a.get("id"))
        if tag == "img" and a.get("src", "").startswith("data:image/png;base64,") and len(a["src"]) > 2000:
            self.images += 1
        if tag == "table":
            self.tables += 1
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)
            self._in_h2 = False


def test_demo_tiny_end_to_end(tmp_path):
    r = CliRunner().invoke(cli, ["demo", "--size", "tiny", "--out", str(tmp_path / "demo"), "--quiet"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[-1] == f"report: {tmp_path / 'demo' / 'report' / 'report.html'}"
    assert any(l.startswith("demo finished in") for l in lines)
    page = Collect()
    page.feed((tmp_path / "demo" / "report" / "report.html").read_text())
    assert set(page.figures) == {"fig2_utility", "fig3a_randomization", "overlays", "pr_curve"}
    assert page.images == 4 and page.tables >= 3
    assert "Configs and versions" in page.h2
    t2 = pd.read_csv(tmp_path / "demo" / "report" / "stats" / "table2.csv", keep_default_na=False)
    assert set(t2.method) == {"grad", "sg", "ig", "sig", "gcam", "xrai", "gbp", "ggcam", "wildcat"}
    # every question has an answer, the localization-network ones from the two RetinaNets ("n/a":
    # a test without variance, as identical tiny GradCAM maps give)
    for question in t2.columns[1:]:
        assert set(t2.loc[t2.method == "gcam", question]) <= {"PASS", "FAIL", "n/a"}, question
    assert {"PASS", "FAIL"} & set(t2["utility vs localization network"])
    assert {"PASS", "FAIL"} & set(t2["repeatability vs localization network"])
    assert (tmp_path / "demo" / "baselines" / "retinanet-seed1" / "predictions" / "test" / "detections.csv").exists()
    t1 = pd.read_csv(tmp_path / "demo" / "report" / "stats" / "table1.csv")
    assert set(t1.backbone) == {"resnet18", "resnet34"}
    assert (tmp_path / "demo" / "report" / "report.md").read_text().count("![") == 4

    # a second run with the same seed, from scratch elsewhere, gives the same tables
    r2 = CliRunner().invoke(cli, ["demo", "--size", "tiny", "--out", str(tmp_path / "again"), "--quiet"])
    assert r2.exit_code == 0, r2.output
    for name in ("tests.csv", "table2.csv", "table1.csv", "tukey.csv"):
        a = pd.read_csv(tmp_path / "demo" / "report" / "stats" / name)
        b = pd.read_csv(tmp_path / "again" / "report" / "stats" / name)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=name)


def test_demo_without_its_config_says_so(tmp_path, monkeypatch):
    import cxrsal.experiments.demo as demo

    monkeypatch.setattr(demo, "CONFIG", tmp_path / "missing.yaml")
    r = CliRunner().invoke(cli, ["demo", "--size", "tiny", "--out", str(tmp_path / "d"), "--quiet"])
    assert r.exit_code == 2 and "missing.yaml not found" in r.output and "pip install -e ." in r.output
