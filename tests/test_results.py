"""Result kinds: a new experiment registered once is discovered, loaded, tested and tabulated by
`cxrsal stats` with no other change."""

import json

import pandas as pd
import pytest

from cxrsal.stats import study
from cxrsal.stats.results import RESULTS, ResultKind, kinds, register_result

HASH = "c" * 64


@pytest.fixture
def toy_kind():
    @register_result
    class Toy(ResultKind):
        """A made-up experiment: one value per image and method, judged against 0.25."""
        name, marker, order = "toy", "toy.json", 9
        tables = {"toy": "toy.csv"}

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
    yield Toy
    del RESULTS._items["toy"]


def test_a_registered_kind_reaches_the_tests_table(toy_kind, tmp_path):
    folder = tmp_path / "results" / "toy-run"
    folder.mkdir(parents=True)
    pd.DataFrame({"image_id": ["a", "b", "a", "b"], "method": ["grad", "grad", "gcam", "gcam"],
                  "value": [0.5, 0.3, 0.1, 0.2]}).to_csv(folder / "toy.csv", index=False)
    (folder / "toy.json").write_text(json.dumps({"models": ["/x/r18"], "data_hash": HASH, "arch": "resnet18",
                                                 "head": "classification"}))
    assert [k.name for k in kinds()] == ["score", "randomization", "compare", "runs", "toy"]
    res = study.run_stats([tmp_path / "results"], tmp_path / "stats", log=lambda *_: None)
    tests = res["tests"].set_index("method")
    # grad: mean 0.4 > 0.25; gcam: 0.15 < 0.25; the rows carry the folder's data set and group
    assert tests.loc["grad", "decision"] == "PASS" and tests.loc["gcam", "decision"] == "FAIL"
    assert tests.loc["grad", "estimate"] == pytest.approx(0.15)
    assert set(tests.group) == {f"{HASH[:12]}/resnet18"} and set(tests.dataset) == {HASH[:12]}


def test_the_studys_kinds_name_their_files():
    # the names every experiment writes (SPEC section 7): marker last, tables beside it
    assert {k.name: (k.marker, dict(k.tables)) for k in kinds()} == {
        "score": ("score.json", {"scores": "scores.csv", "pointwise": "pointwise.csv"}),
        "randomization": ("randomization.json", {"rand": "randomization.csv", "thresholds": "thresholds.csv"}),
        "compare": ("compare.json", {"compare": "compare.csv", "compare_thresholds": "thresholds.csv"}),
        "runs": ("run.json", {})}
