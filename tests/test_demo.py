"""`cxrsal demo` at its smallest size, end to end, and the report it ends with."""

import re
from html.parser import HTMLParser

import pandas as pd
from click.testing import CliRunner

from cxrsal.cli.main import cli
from cxrsal.stats.questions import table2_columns
from helpers import assert_same_map_files, assert_same_weights, kill_specs, no_temporary_files


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


def without_data_hash(frame):
    """A stats table without the data set's name: its manifest's hash, and the manifest names the
    files' folder, which differs between two runs in two folders."""
    frame = frame.drop(columns=["dataset", "group"], errors="ignore")
    if "study" in frame.columns:     # findings.csv names the group in its text
        frame = frame.assign(finding=frame.finding.str.replace(r"^[0-9a-f]{12}/", "", regex=True))
    # the tables list the data sets in the order of their hashes, which differ between the two
    # runs: rows in an order of their own content (floats rounded below the comparison's tolerance)
    key = frame.round(6).apply(lambda r: "|".join(map(str, r)), axis=1)
    return frame.iloc[key.argsort(kind="stable")].reset_index(drop=True)


def test_demo_tiny_end_to_end(tmp_path):
    r = CliRunner().invoke(cli, ["demo", "--size", "tiny", "--out", str(tmp_path / "demo"), "--quiet", "--jobs", "2"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[-1] == f"report: {tmp_path / 'demo' / 'report' / 'report.html'}"
    assert any(l.startswith("study finished in") for l in lines)
    # the stage table at the end, the stages overlapping on the workers
    table = lines[lines.index("stage times (the stages overlap on the workers):") + 1:]
    timed = {l.rsplit(None, 2)[0].strip() for l in table if l.endswith(" s") and l.startswith("  ")}
    assert {"rsna: prepare", "rsna: train resnet18-a", "rsna: train retinanet-seed1 (localization network)",
            "statistics and report"} <= timed
    page = Collect()
    page.feed((tmp_path / "demo" / "report" / "report.html").read_text())
    # one degradation curve and one eMPRT figure per data set's MPRT, RSNA's sMPRT
    figures = page.figures
    assert len(figures) == len(set(figures)) and page.images == len(figures) and page.tables >= 3
    assert {"fig2_utility", "overlays", "pr_curve", "randomization_smprt_bottom_up"} <= set(figures)
    assert sum(f.startswith("fig3a_randomization") for f in figures) == 2
    assert sum(f.startswith("emprt_mprt_top_down") for f in figures) == 2
    assert "Configs and versions" in page.h2
    # both data sets' papers' figures beside the run's, matched by role, labelled as real-data figures
    assert {"The papers beside this run: rsna (rsna)", "The papers beside this run: siim (siim)"} <= set(page.h2)
    md = (tmp_path / "demo" / "report" / "report.md").read_text()
    assert "not expectations for synthetic data" in md
    beside = md.split("## The papers beside this run: rsna (rsna)")[1].split("\n## ")[0]
    # [A]'s XRAI utility AUPRC on RSNA (Results: Localization utility): 0.519 ± 0.22
    assert re.search(r"\| \[A\] \| utility AUPRC \| xrai \| inceptionv3 \| 0\.519 ± 0\.22 \| resnet18 \(resnet18-[ab]\) \| "
                     r"0\.\d{3} \|", beside), beside[:2000]
    # [B]'s resnet18 rows match the run's resnet18 classification and WILDCAT runs
    assert "| [B] | test AUC |" in beside and "resnet18 wildcat (resnet18-wildcat)" in beside
    # Table 2's verdicts side by side, a mark where they differ
    verdicts = [l for l in beside.splitlines() if "| utility vs average mask |" in l]
    cells = [[c.strip() for c in l.split("|")] for l in verdicts]
    assert verdicts and all(c[8] == ("" if c[5] == c[7] else "undefined here" if c[7] == "undefined" else "differs")
                            for c in cells), verdicts
    t2 = pd.read_csv(tmp_path / "demo" / "report" / "stats" / "table2.csv", keep_default_na=False)
    # one Table 2 per data set and model (never pooled): the classifier's with every question, the WILDCAT's
    assert set(t2.model) == {"resnet18", "resnet18-wildcat"} and t2.dataset.nunique() == 2
    for dataset, main in t2[t2.model == "resnet18"].groupby("dataset"):
        # the eight methods, and the control maps in rows of their own (controls.csv: can each check fail?)
        assert set(main.method) == {"grad", "sg", "ig", "sig", "gcam", "xrai", "gbp", "ggcam", "edge", "random",
                                    "oracle"}, dataset
        for question in table2_columns():
            assert set(main.loc[main.method == "gcam", question]) <= {"PASS", "FAIL", "undefined"}, question
    main = t2[t2.model == "resnet18"]
    assert "wildcat" in set(t2[t2.model == "resnet18-wildcat"].method)
    # the controls' verdicts beside the ones they must get, and faithfulness against the random control
    controls = pd.read_csv(tmp_path / "demo" / "report" / "stats" / "controls.csv", keep_default_na=False)
    assert set(controls.control) == {"edge", "random", "oracle"} and set(controls.behaves) <= {"yes", "no", "not shown"}
    assert "## Can these checks fail?" in md and "faithfulness vs random" in t2.columns
    assert sum(f.startswith("faithfulness_curves") for f in figures) == 4      # two models mapped per data set
    # every question has an answer, the localization-network ones from the two RetinaNets (RSNA)
    # and U-Nets (SIIM); an undefined one (tiny constant GradCAM maps, too few images) says why
    undefined = pd.read_csv(tmp_path / "demo" / "report" / "stats" / "undefined.csv", keep_default_na=False)
    cells = {(r.model, r.method, q) for r in t2.itertuples() for q, v in zip(t2.columns[3:], r[4:]) if v == "undefined"}
    assert cells == {(m.split("/")[-1], r.method, r.question) for r, m in
                     zip(undefined[undefined.table == "Table 2"].itertuples(),
                         undefined[undefined.table == "Table 2"].group)}
    assert all(undefined.reason != "")
    # the summary counts the verdicts of tests.csv, and names a mostly constant method with a cause
    tests = pd.read_csv(tmp_path / "demo" / "report" / "stats" / "tests.csv", keep_default_na=False)
    counts = tests.decision.value_counts()
    tables_md = (tmp_path / "demo" / "report" / "stats" / "tables.md").read_text()
    assert (f"{len(tests)} tests: {counts.get('PASS', 0)} PASS, {counts.get('FAIL', 0)} FAIL, "
            f"{counts.get('undefined', 0)} undefined") in tables_md
    constant = pd.read_csv(tmp_path / "demo" / "report" / "stats" / "constant.csv", keep_default_na=False)
    for r in constant[constant.share > 0.5].itertuples():
        assert f"- {r.method} ({r.dataset}, {r.model}): {r.constant} of {r.maps} maps constant; likely cause" in \
            tables_md
    # every question of the classifier ran (none says "no data"): decided, or undefined for one of
    # the rule's reasons (the tiny demo has few positive images, its RetinaNets' heatmaps may be flat)
    # (the random control's faithfulness cell says "reference": every method is compared with it)
    asked = main[list(table2_columns())]
    assert set(asked.to_numpy().ravel()) - {"reference"} <= {"PASS", "FAIL", "undefined"}
    assert set(main[asked.eq("reference").any(axis=1)].method) == {"random"}
    assert set(main.loc[main.method == "random", "faithfulness vs random"]) == {"reference"}
    assert all(re.search(r"n = \d+ < 5 images|constant|all zero", r) for r in undefined.reason), set(undefined.reason)
    assert (tmp_path / "demo" / "rsna" / "baselines" / "retinanet-seed1" / "predictions" / "test" / "detections.csv").exists()
    t1 = pd.read_csv(tmp_path / "demo" / "report" / "stats" / "table1.csv", dtype={"dataset": str})
    assert set(zip(t1.backbone, t1["head"])) == {("resnet18", "classification"), ("resnet18", "wildcat"),
                                                 ("resnet34", "classification"), ("resnet10", "retinanet")}
    # pointwise AP over every test image, negatives included (not marked "positives only")
    assert not t1["pointwise AP"].astype(str).str.contains("positives only").any()
    choices = pd.read_csv(tmp_path / "demo" / "report" / "stats" / "choices.csv")
    assert {"similarity.maps", "saliency.input_channels", "pointwise.centres"} <= set(choices.key)
    assert (tmp_path / "demo" / "report" / "report.md").read_text().count("![") == len(figures)
    # the sanity checks of every order, sMPRT, eMPRT and data randomization, with a verdict per
    # method; mIoU tuned on the validation maps beside AUPRC and the hit rate, with intervals
    sanity = pd.read_csv(tmp_path / "demo" / "report" / "stats" / "sanity.csv", keep_default_na=False)
    assert list(sanity.columns[3:]) == ["MPRT top-down", "eMPRT top-down", "sMPRT bottom-up", "data randomization",
                                        "constant maps"]
    # the choices beside the table: the sample count the demo's minutes allow, and eMPRT's complexity
    assert ("sMPRT bottom-up: Spearman decides; SSIM alongside; every map the mean over 1 copy of the input "
            "(the authors': 50)") in md
    assert "eMPRT top-down: entropy of the histogram of the raw map's values, 100 bins (the authors' default)" in md
    s18 = sanity[sanity.model == "resnet18"]
    decided = ["MPRT top-down", "eMPRT top-down", "data randomization"]
    assert set(s18[decided].to_numpy().ravel()) <= {"PASS", "FAIL", "undefined"}
    # sMPRT runs on RSNA only (what the demo's minutes allow)
    assert [set(d["sMPRT bottom-up"]) <= {"PASS", "FAIL", "undefined"} for _, d in s18.groupby("dataset")].count(True) == 1
    loc = pd.read_csv(tmp_path / "demo" / "report" / "stats" / "localization.csv", keep_default_na=False,
                      dtype={"dataset": str})
    # the maps are of the replicate Table 1 reports (best validation AUC), on each data set
    chosen = t1[(t1.backbone == "resnet18") & (t1["head"] == "classification")]
    assert len(chosen) == 2
    for dataset, run in zip(chosen.dataset, chosen.run):
        gcam = loc[(loc.dataset == dataset) & (loc.model == run) & (loc.method == "gcam")].iloc[0]
        assert 0 <= float(gcam["mIoU"]) <= 1 and 0 <= float(gcam["hit rate"]) <= 1      # tiny maps validation too
        assert gcam["mIoU 95% CI"].startswith("[") and gcam["AUPRC 95% CI"].startswith("[")
    assert "resnet18-permuted" not in set(t1.run)          # the permuted twin is no Table 1 candidate

    # the same demo as a real process elsewhere, on one worker instead of the CPUs' count, SIGKILLed
    # inside two stages (each kill in a rerun of the last), then run to the end: the same tables,
    # weights and maps (every worker runs TensorFlow on one thread, whatever their number)
    again = tmp_path / "again"
    kills = kill_specs(["demo", "--size", "tiny", "--out", again, "--quiet", "--jobs", "1"], DEMO_KILLS)
    assert len(kills) == len(DEMO_KILLS) and "Traceback" not in kills.final_stderr
    no_temporary_files(again)
    for name in ("tests.csv", "table2.csv", "table1.csv", "posthoc.csv", "findings.csv", "sanity.csv",
                 "localization.csv"):
        a, b = (without_data_hash(pd.read_csv(d / "report" / "stats" / name)) for d in (tmp_path / "demo", again))
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=name)
    for model in ("resnet18-a", "resnet18-wildcat"):
        assert_same_weights(tmp_path / "demo" / "rsna" / "models" / model, again / "rsna" / "models" / model)
    assert_same_weights(tmp_path / "demo" / "rsna" / "baselines" / "retinanet-seed0",
                        again / "rsna" / "baselines" / "retinanet-seed0", ("best",))
    assert_same_map_files(tmp_path / "demo" / "rsna" / "maps", again / "rsna" / "maps")
    assert_same_map_files(tmp_path / "demo" / "rsna" / "results" / "randomization",
                          again / "rsna" / "results" / "randomization")


# kills inside the two stages no command's own test kills ("N:PHASE:TEXT", cxrsal.files: the first
# write point of that phase on a path holding TEXT); train, saliency, score, randomize, compare,
# stats and report are killed as commands of their own in tests/test_kill_resume.py
DEMO_KILLS = [
    "1:written:/prepared/cache/",                            # prepare: a decoding worker, and the job with it
    "1:open:/baselines/retinanet-seed0/predictions/",        # the localization network predicting
]


def test_demo_without_its_config_says_so(tmp_path, monkeypatch):
    import cxrsal.demo as demo

    monkeypatch.setattr(demo, "STUDY", tmp_path / "missing.yaml")
    r = CliRunner().invoke(cli, ["demo", "--size", "tiny", "--out", str(tmp_path / "d"), "--quiet"])
    assert r.exit_code == 2 and "missing.yaml not found" in r.output and "pip install -e ." in r.output
