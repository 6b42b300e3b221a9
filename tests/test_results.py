"""Result kinds: a new experiment registered once (its kind file) is discovered, loaded, tested,
tabulated and drawn by `cxrsal stats` and `cxrsal report` with no other change."""

import json

import pandas as pd
import pytest

from cxrsal.stats import study
from cxrsal.stats.questions import sanity_columns, table2_columns
from cxrsal.stats.results import RESULTS, Figure, Output, ResultKind, kinds, register_result

HASH = "c" * 64
PNG = bytes.fromhex("89504e470d0a1a0a")     # the PNG signature: the page embeds whatever bytes it gets


@pytest.fixture
def toy_kind():
    @register_result
    class Toy(ResultKind):
        """A made-up experiment: one value per image and method, judged against 0.25."""
        name, marker, order = "toy", "toy.json", 9
        tables = {"toy": "toy.csv"}
        command = "`toy`"
        sections = ("similarity",)
        questions = ("toy vs 0.25",)
        sanity = {"toy check": "the toy values exceed 0.25"}
        sanity_names = {"toy vs 0.25": "toy check"}

        def tests(self, tables, alpha):
            t = tables["toy"]
            rows = []
            for (dataset, group, source, method), d in t.groupby(["dataset", "group", "source", "method"]):
                est = float(d.value.mean()) - 0.25
                rows.append(dict(dataset=dataset, group=group, source=source, question="toy vs 0.25", model="m",
                                 method=method, comparison="0.25", estimate=est, ci_low=est, ci_high=est,
                                 p_value=0.0, test="mean", finding="better" if est > 0 else "worse",
                                 decision="PASS" if est > 0 else "FAIL"))
            return rows

        def outputs(self, tables, res):
            t = tables["toy"]
            means = t.groupby("method", as_index=False).value.mean() if len(t) else pd.DataFrame()
            return [Output("toy_means", "Toy means per method", means, "mean over images")]

        def figures(self, folders, res):
            return [Figure("toy_figure", f"Toy figure of {len(folders)} folder(s)", PNG)]
    yield Toy
    del RESULTS._items["toy"]


def _toy_results(tmp_path):
    folder = tmp_path / "results" / "toy-run"
    folder.mkdir(parents=True)
    pd.DataFrame({"image_id": ["a", "b", "a", "b"], "method": ["grad", "grad", "gcam", "gcam"],
                  "value": [0.5, 0.3, 0.1, 0.2]}).to_csv(folder / "toy.csv", index=False)
    (folder / "toy.json").write_text(json.dumps({"models": ["/x/r18"], "data_hash": HASH, "arch": "resnet18",
                                                 "head": "classification"}))
    (folder / "config.yaml").write_text("train:\n  lr: 0.5\nsimilarity:\n  data_range: 1.0\n")
    return tmp_path / "results"


def test_a_registered_kind_reaches_the_tests_table(toy_kind, tmp_path):
    results = _toy_results(tmp_path)
    # after the study's kinds, whatever other kinds are registered (its order, 9, is the last)
    names = [k.name for k in kinds()]
    assert names[:4] == ["score", "randomization", "compare", "runs"] and names[-1] == "toy"
    res = study.run_stats([results], tmp_path / "stats", log=lambda *_: None)
    tests = res["tests"].set_index("method")
    # grad: mean 0.4 > 0.25; gcam: 0.15 < 0.25; the rows carry the folder's data set and group
    assert tests.loc["grad", "decision"] == "PASS" and tests.loc["gcam", "decision"] == "FAIL"
    assert tests.loc["grad", "estimate"] == pytest.approx(0.15)
    assert set(tests.group) == {f"{HASH[:12]}/resnet18"} and set(tests.dataset) == {HASH[:12]}
    # its question is a Table 2 column and its check a sanity column, each after the study's own
    assert table2_columns()[-1] == "toy vs 0.25" and sanity_columns()[-1] == "toy check"
    t2 = pd.read_csv(tmp_path / "stats" / "table2.csv").set_index("method")
    assert t2.loc["grad", "toy vs 0.25"] == "PASS" and t2.loc["gcam", "toy vs 0.25"] == "FAIL"
    assert t2.loc["grad", "utility vs average mask"] == "no data"
    sanity = pd.read_csv(tmp_path / "stats" / "sanity.csv").set_index("method")
    assert list(sanity.columns) == ["dataset", "model", "toy check"] and sanity.loc["gcam", "toy check"] == "FAIL"
    # its own table: a CSV beside the others, and a section of tables.md with its note
    means = pd.read_csv(tmp_path / "stats" / "toy_means.csv").set_index("method").value
    assert means.to_dict() == pytest.approx({"gcam": 0.15, "grad": 0.4})
    md = (tmp_path / "stats" / "tables.md").read_text()
    assert "## Toy means per method" in md and "mean over images" in md
    assert "- toy check: PASS = the toy values exceed 0.25." in md


def test_a_registered_kind_reaches_the_report(toy_kind, tmp_path):
    from cxrsal.report import build_report

    build_report([_toy_results(tmp_path)], tmp_path / "report", log=lambda *_: None)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Toy means per method" in page and "toy check" in page and "Toy figure of 1 folder(s)" in page
    assert (tmp_path / "report" / "figures" / "toy_figure.png").read_bytes() == PNG
    # its provenance: the marker, and its config's sections of its settings only
    assert "toy-run/toy.json" in page and "toy-run/config.yaml" in page
    assert "data_range: 1.0" in page and "lr: 0.5" not in page


def test_the_studys_kinds_name_their_files():
    # the names every experiment writes (docs/files.md): marker last, tables beside it
    study = {"score": ("score.json", {"scores": "scores.csv", "pointwise": "pointwise.csv"}),
             "randomization": ("randomization.json", {"rand": "randomization.csv", "thresholds": "thresholds.csv"}),
             "compare": ("compare.json", {"compare": "compare.csv", "compare_thresholds": "thresholds.csv"}),
             "runs": ("run.json", {})}
    assert {name: (RESULTS.get(name).marker, dict(RESULTS.get(name).tables)) for name in study} == study
    # a kind added beside them marks its folders with a file of its own
    markers = [k.marker for k in kinds()]
    assert len(set(markers)) == len(markers)
