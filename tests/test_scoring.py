"""`cxrsal score` (cxrsal.experiments.scoring) end to end: table values against the metrics,
baselines, pointwise AP, the CLI; then CheXlocalize's metrics (pointing-game hit, mIoU at a
threshold tuned on the validation split) and bootstrap intervals, on hand-made map stores of
synthetic data.

The CheXlocalize part trains no model: its stores are written with MapStore directly, with maps
whose hit and IoU are known (a map equal to its mask: hit, IoU 1; a map peaking outside the mask:
a miss), and every number is checked against a slow loop.
"""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import average_precision_score

from cxrsal.cli.main import cli
from cxrsal.config import ConfigError, load_config
from cxrsal.data.manifest import read_manifest
from cxrsal.data.pipeline import PreparedSplit
from cxrsal.data.prepare import prepare
from cxrsal.data.synth import synth
from cxrsal.errors import CxrsalError
from cxrsal.experiments.score_baselines import parse_baselines, read_detections
from cxrsal.experiments.scoring import score_store
from cxrsal.metrics import bootstrap_ap_ci, bootstrap_indices, pointwise_average_precision
from cxrsal.saliency.runner import run_saliency
from cxrsal.saliency.store import MapStore
from helpers import quiet


@pytest.fixture(scope="module")
def store(trained_wildcat, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "maps"
    cfg = load_config(options={"saliency.split": "test", "saliency.batch_size": 4})
    run_saliency(trained_wildcat, out, cfg, "grad,gcam,wildcat", progress=False, log=lambda *_: None)
    return out


def test_table_against_sklearn_and_baselines(store, tmp_path):
    meta = MapStore(store).meta
    data = PreparedSplit(meta["data"], "test")
    table = score_store(store, tmp_path / "s", baselines="avg", log=lambda *_: None)
    assert set(table.columns) >= {"image_id", "model", "method", "step", "metric", "value"}
    assert (tmp_path / "s" / "scores.parquet").exists()
    # the settings used, as a config section, beside the tables
    written = load_config(tmp_path / "s" / "config.yaml").score
    assert written.baselines == "avg" and written.parts == ("utility", "pointwise")
    pq = pd.read_parquet(tmp_path / "s" / "scores.parquet")
    assert len(pq) == len(table)
    st = MapStore(store)
    row = table[(table.method == "gcam") & (table.metric == "auprc")].iloc[0]
    d = st.load("gcam", row.image_id)
    from cxrsal.data import boxes_to_mask
    from cxrsal.data.manifest import parse_boxes, read_manifest
    r = next(r for r in read_manifest(meta["data"]) if r["image_id"] == row.image_id)
    # the truth at the maps' 64 px, drawn from the original box coordinates
    mask = boxes_to_mask(parse_boxes(r["boxes"]), meta["input_size"], (r["height"], r["width"]))
    assert row.value == pytest.approx(average_precision_score(mask.ravel(), d["processed"].ravel()), abs=1e-12)
    # utility only for positives; pointwise hits for every stored image
    assert (table[table.metric == "auprc"].label == 1).all()
    n_pos = int(sum(data.labels))
    assert (table[(table.metric == "auprc")].groupby("method").size() == n_pos).all()
    assert len(table[(table.method == "grad") & (table.metric == "pointwise_hit")]) == len(data.labels)
    summary = pd.read_csv(tmp_path / "s" / "summary.csv")
    assert {"baseline:avg", "grad", "gcam", "wildcat"} <= set(summary.method)
    pw = pd.read_csv(tmp_path / "s" / "pointwise.csv")
    assert set(pw.method) == {"grad", "gcam", "wildcat", "baseline:avg"} and pw.pointwise_ap.between(0, 1).all()
    # every test image ranked, negatives included
    assert (pw.n == len(data.labels)).all() and (pw.n_negative == len(data.labels) - n_pos).all()


def slow_pointwise_ap(labels, scores, hits):
    """Average precision over images ranked by score, one threshold per distinct score."""
    labels, scores, hits = map(np.asarray, (labels, scores, hits))
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        chosen = scores >= t
        tp = (chosen & labels.astype(bool) & hits).sum()
        recall = tp / labels.sum()
        ap += (recall - prev_recall) * tp / chosen.sum()
        prev_recall = recall
    return ap


@pytest.mark.parametrize("centres", ["receptive-field", "grid"])
def test_wildcat_pointwise_ap_by_hand(store, tmp_path, centres):
    from cxrsal.data.manifest import parse_boxes, read_manifest

    st = MapStore(store)
    meta = st.meta
    size, geo = meta["input_size"], meta["geometry"]
    assert geo["size"] == [2, 2] and geo["jump"] == [32, 32] and geo["start"] == [0.0, 0.0]   # resnet18, 64 px
    cfg = load_config(overrides=[f"pointwise.centres={centres}"])
    score_store(store, tmp_path / "s", cfg=cfg, parts=("pointwise",), log=lambda *_: None)
    pw = pd.read_csv(tmp_path / "s" / "pointwise.csv").set_index("method")
    rows = {r["image_id"]: r for r in read_manifest(meta["data"])}
    labels, scores, hits = [], [], []
    for i in st.ids("wildcat"):
        d = st.load("wildcat", i)
        y, x = np.unravel_index(np.argmax(d["native"]), d["native"].shape)
        # cell centre: receptive field (start + i * jump + 1/2) or [B]'s grid ((i + 1/2) d)
        cy, cx = ((y * 32 + 0.5, x * 32 + 0.5) if centres == "receptive-field" else ((y + 0.5) * 32, (x + 0.5) * 32))
        r = rows[i]
        s = size / r["width"]
        inside = any(bx * s <= cx <= (bx + bw) * s and by * s <= cy <= (by + bh) * s
                     for bx, by, bw, bh in parse_boxes(r["boxes"]))
        labels.append(r["label"])
        scores.append(d["logit"])
        hits.append(inside and r["label"] == 1)
    assert pw.loc["wildcat", "pointwise_ap"] == pytest.approx(slow_pointwise_ap(labels, scores, hits), abs=1e-12)
    assert pw.loc["wildcat", "centres"] == centres and pw.loc["grad", "centres"] == "grid"
    assert "auprc" not in set(pd.read_csv(tmp_path / "s" / "scores.csv").metric)      # pointwise only


def test_detector_and_segmentation_baselines(store, tmp_path):
    meta = MapStore(store).meta
    from cxrsal.data.manifest import parse_boxes, read_manifest
    rows = [r for r in read_manifest(meta["data"]) if r["split"] == "test"]
    lines = ["patientId,x,y,width,height,score"]
    seg = tmp_path / "seg"
    seg.mkdir()
    for r in rows:
        for b in parse_boxes(r["boxes"]):        # a perfect detector: the true boxes, score 0.9
            lines.append(f"{r['image_id']},{b[0]},{b[1]},{b[2]},{b[3]},0.9")
        np.save(seg / f"{r['image_id']}.npy", np.full((8, 8), 0.5, np.float32))
    (tmp_path / "det.csv").write_text("\n".join(lines) + "\n")
    table = score_store(store, tmp_path / "s", baselines=f"boxes:{tmp_path / 'det.csv'},seg:{seg}",
                        log=lambda *_: None)
    det = table[(table.method == "baseline:detector") & (table.metric == "auprc")]
    assert len(det) and (det.value == 1.0).all()        # heatmap = the mask itself
    # [B]'s RetinaNet row: best box centre per image, every test image ranked; negatives have no box
    pw = pd.read_csv(tmp_path / "s" / "pointwise.csv").set_index("method").loc["baseline:detector"]
    assert pw.pointwise_ap == 1.0 and pw.n == len(rows) and pw.model == "det" and pw.centres == "box centre"
    flat = table[(table.method == "baseline:segmentation") & (table.metric == "auroc")]
    assert (flat.value == 0.5).all()                     # a constant map ranks nothing


def test_bad_baselines_and_detections(tmp_path):
    with pytest.raises(CxrsalError, match="use avg, boxes:FILE"):
        parse_baselines("avg,unet")
    with pytest.raises(CxrsalError, match="does not exist"):
        parse_baselines(f"boxes:{tmp_path / 'none.csv'}")
    (tmp_path / "bad.csv").write_text("patientId,x,y,width,height,score\np1,1,2,x,4,0.5\n")
    with pytest.raises(CxrsalError, match="bad.csv line 2"):
        read_detections(tmp_path / "bad.csv")


def test_cli(store, tmp_path):
    r = CliRunner().invoke(cli, ["score", "--maps", str(store), "--baselines", "avg", "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert "pointwise AP" in r.output and "baseline:avg" in r.output
    r = CliRunner().invoke(cli, ["score", "--maps", str(tmp_path), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "not a map store" in r.output


# ---------------------------------------------------------------- CheXlocalize's metrics on hand-made stores

SIZE = 32                      # prepared side = the maps' side: the truth is the prepared mask
GRID = np.linspace(0, 1, 101)  # tune_threshold's default thresholds


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """40 synthetic RSNA images prepared at 32 px, split 40:30:30 (7 positives in val and in test)."""
    base = tmp_path_factory.mktemp("chexlocalize")
    synth("rsna", base / "root", 40, seed=3, image_size=64, positive_fraction=0.6)
    cfg = load_config(options={"data.root": str(base / "root"), "data.size": SIZE, "data.workers": 1,
                               "data.split": [0.4, 0.3, 0.3]})
    prepare(cfg, base / "run", progress=False, log=quiet)
    return base / "run"


def split_rows(run, split):
    """The split's manifest rows by image id (sorted, as a store lists them), each with its mask."""
    masks = np.load(Path(run) / "arrays" / f"{split}_masks.npy")
    rows = sorted((r for r in read_manifest(run) if r["split"] == split), key=lambda r: r["image_id"])
    return {r["image_id"]: dict(r, mask=masks[r["index"]] > 0) for r in rows}


def exact(mask, rng):
    return mask.astype(np.float64)


def outside(mask, rng):
    """Low noise everywhere, the maximum on the first pixel outside the mask."""
    m = rng.uniform(0, 0.5, mask.shape)
    m.flat[np.flatnonzero(~mask.ravel())[0]] = 1.0
    return m


def overlapping(mask, rng):
    """Inside the mask in [0.3, 1], outside in [0, 0.6]: the best threshold lies in (0.2, 0.7]."""
    u = rng.uniform(size=mask.shape)
    return np.where(mask, 0.3 + 0.7 * u, 0.6 * u)


def wider(mask, rng):
    """Another recipe for the test images: the validation threshold is not the test's best."""
    u = rng.uniform(size=mask.shape)
    return np.where(mask, 0.5 + 0.5 * u, 0.55 * u)


def write_store(path, run, split, makers, *, weights="digest-a", seed=0, skip=None, params=None):
    """A map store of `split` with one method per maker (maps of negatives: uniform noise).
    `skip`: {method: image ids left out}. Returns the store's logits by image id."""
    rows = split_rows(run, split)
    store = MapStore(path)
    store.init({"model": str(Path(path).parent / "model"), "checkpoint": "best", "weights": weights,
                "data": str(run), "split": split, "image_ids": list(rows), "input_size": SIZE, "input_channels": 3})
    rng = np.random.default_rng(seed)
    logits = {i: float(rng.normal()) for i in rows}
    for method, make in makers.items():
        store.init_method(method, {"method": method, "params": (params or {}).get(method, {}), "target": "positive",
                                   "seed": 0})
        for i, r in rows.items():
            if i in (skip or {}).get(method, ()):
                continue
            m = make(r["mask"], rng) if r["label"] else rng.uniform(size=(SIZE, SIZE))
            store.write(method, i, raw=m, processed=m, constant=False, logit=logits[i], label=r["label"],
                        index=r["index"])
    return logits


MAKERS = {"exact": exact, "outside": outside, "noisy": overlapping}


@pytest.fixture(scope="module")
def stores(run, tmp_path_factory):
    base = tmp_path_factory.mktemp("stores")
    write_store(base / "val", run, "val", MAKERS, seed=1)
    test_rows = split_rows(run, "test")
    # a method the validation store lacks, and that lacks two positive test images
    skip = {"only_test": [i for i, r in test_rows.items() if r["label"]][:2]}
    write_store(base / "test", run, "test", {**MAKERS, "noisy": wider, "only_test": overlapping}, seed=2, skip=skip)
    return base / "val", base / "test"


def slow_iou(mask, smap, t):
    inter = union = 0
    for inside, value in zip(mask.ravel().tolist(), smap.ravel().tolist()):
        inter += inside and value >= t
        union += inside or value >= t
    return inter / union


def slow_tuning(masks, maps):
    """(threshold, mean IoU): the lowest grid threshold with the highest mean IoU."""
    best_t, best = None, -1.0
    for t in GRID:
        miou = sum(slow_iou(m, s, t) for m, s in zip(masks, maps)) / len(masks)
        if miou > best:
            best_t, best = t, miou
    return best_t, best


def slow_hit(mask, smap):
    """The first maximum in row-major order lies inside the mask (a flat map: a miss)."""
    values = smap.ravel().tolist()
    if min(values) == max(values):
        return 0.0
    return float(mask.ravel()[values.index(max(values))])


@pytest.fixture(scope="module")
def scored(stores, run, tmp_path_factory):
    val, test = stores
    out = tmp_path_factory.mktemp("scored") / "s"
    lines = []
    cfg = load_config(options={"score.seed": 7, "score.bootstrap": 300})
    table = score_store(test, out, baselines="avg", validation=val, cfg=cfg, log=lines.append)
    return table, out, lines


def test_hit_and_iou_per_image(scored, stores, run):
    table, out, lines = scored
    val, test = MapStore(stores[0]), MapStore(stores[1])
    rows = split_rows(run, "test")
    positives = [i for i, r in rows.items() if r["label"]]
    hit = table[table.metric == "hit"].set_index(["method", "image_id"]).value
    iou = table[table.metric == "iou"].set_index(["method", "image_id"]).value
    # hit and IoU only for the positives, as AUPRC
    assert set(table[table.metric.isin(["hit", "iou"])].label) == {1}
    for i in positives:
        assert hit["exact", i] == 1.0 and iou["exact", i] == 1.0   # the map is the mask
        assert hit["outside", i] == 0.0                              # peak outside the mask
        m = test.load("noisy", i)["processed"]
        assert hit["noisy", i] == slow_hit(rows[i]["mask"], m)
    # each method's threshold, tuned on the validation positives only
    th = pd.read_csv(out / "thresholds.csv").set_index("method")
    assert list(th.columns) == ["threshold", "val_miou", "n_val"]
    assert set(th.index) == {"exact", "outside", "noisy"}
    vrows = split_rows(run, "val")
    vpos = [i for i, r in vrows.items() if r["label"]]
    assert (th.n_val == len(vpos)).all()
    t, miou = slow_tuning([vrows[i]["mask"] for i in vpos], [val.load("noisy", i)["processed"] for i in vpos])
    assert 0.2 < t <= 0.7
    assert th.loc["noisy", "threshold"] == pytest.approx(t, abs=1e-12)
    assert th.loc["noisy", "val_miou"] == pytest.approx(miou, abs=1e-12)
    assert th.loc["exact", "threshold"] == pytest.approx(0.01) and th.loc["exact", "val_miou"] == 1.0
    # the test maps are thresholded where validation said, not where the test maps are best
    for i in positives:
        m = test.load("noisy", i)["processed"]
        assert iou["noisy", i] == pytest.approx(slow_iou(rows[i]["mask"], m, t), abs=1e-12)
    assert slow_tuning([rows[i]["mask"] for i in positives],
                       [test.load("noisy", i)["processed"] for i in positives])[0] != t
    # the method the validation store lacks: hits, no IoU, and the log says why
    assert len(hit["only_test"]) == len(positives) - 2 and "only_test" not in iou.index.get_level_values(0)
    assert any(line.startswith("only_test: no maps in --validation") for line in lines)
    assert json.loads((out / "score.json").read_text())["validation"] == str(Path(stores[0]).resolve())
    assert load_config(out / "config.yaml").score.validation == str(stores[0])


def test_average_mask_baseline_gets_a_hit(scored, run):
    table, _, _ = scored
    # the average of the train and val positive masks: its first maximum, the same for every image
    avg = np.concatenate([np.load(Path(run) / "arrays" / f"{s}_masks.npy")[
        np.load(Path(run) / "arrays" / f"{s}_labels.npy") == 1] for s in ("train", "val")]).mean(axis=0)
    rows = split_rows(run, "test")
    base = table[(table.method == "baseline:avg") & (table.metric == "hit")].set_index("image_id").value
    assert len(base) == sum(r["label"] for r in rows.values())
    for i, v in base.items():
        assert v == slow_hit(rows[i]["mask"], avg.squeeze())
    assert "iou" not in set(table[table.method == "baseline:avg"].metric)   # IoU: saliency methods only


def test_summary_intervals_against_a_slow_bootstrap(scored):
    table, out, lines = scored
    summary = pd.read_csv(out / "summary.csv")
    assert {"hit", "iou", "auprc"} <= set(summary.metric)
    assert list(summary.columns[-2:]) == ["ci_low", "ci_high"]
    for metric in ("auprc", "hit", "iou"):
        part = table[table.metric == metric]
        images = sorted(set(part.image_id))               # the union over methods: paired resampling
        draws = bootstrap_indices(len(images), replicates=300, seed=7)
        for method, d in part.groupby("method"):
            values = dict(zip(d.image_id, d.value))
            means = []
            for row in draws:
                got = [values[images[k]] for k in row if images[k] in values]
                if got:
                    means.append(sum(got) / len(got))
            low, high = np.percentile(means, [2.5, 97.5])
            s = summary[(summary.method == method) & (summary.metric == metric)].iloc[0]
            assert s["mean"] == pytest.approx(np.mean(d.value), abs=1e-12) and s["count"] == len(d)
            assert (s.ci_low, s.ci_high) == pytest.approx((low, high), abs=1e-12)
            assert s.ci_low <= s["mean"] <= s.ci_high
    # the log shows every interval, AUPRC, hit rate and mIoU (with its threshold) of each method
    s = summary.set_index(["method", "metric"])
    r = s.loc[("noisy", "auprc")]
    assert any(re.match(rf"noisy +AUPRC {r['mean']:.3f} \[{r.ci_low:.3f}, {r.ci_high:.3f}\] \+/- ", x) for x in lines)
    assert any(re.match(r"noisy +hit rate .* \[.*\] .*\(n=7\)", x) for x in lines)
    assert any(re.match(r"noisy +mIoU .* \[.*\] .*threshold 0\.\d\d tuned on 7 validation positives", x) for x in lines)


def test_pointwise_intervals(scored, run):
    table, out, lines = scored
    rows = split_rows(run, "test")
    pw = pd.read_csv(out / "pointwise.csv").set_index("method")
    for method in ("exact", "noisy"):
        # a store lists its images sorted by id: the order the bootstrap draws them in
        d = table[(table.method == method) & (table.metric == "pointwise_hit")].sort_values("image_id")
        labels = [rows[i]["label"] for i in d.image_id]
        store = MapStore(json.loads((out / "score.json").read_text())["maps"])
        scores = [store.load(method, i)["logit"] for i in d.image_id]
        hits = d.value.to_numpy() > 0
        assert pw.loc[method, "pointwise_ap"] == pytest.approx(pointwise_average_precision(labels, scores, hits))
        low, high = bootstrap_ap_ci(labels, scores, hits, replicates=300, seed=7)
        assert (pw.loc[method, "ci_low"], pw.loc[method, "ci_high"]) == (low, high)
    assert any(re.match(r"exact +pointwise AP \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", x) for x in lines)


def test_without_validation_no_iou_and_why(stores, tmp_path):
    lines = []
    table = score_store(stores[1], tmp_path / "s", cfg=load_config(options={"score.bootstrap": 0}), log=lines.append)
    assert "iou" not in set(table.metric) and "hit" in set(table.metric)
    assert [x for x in lines if "mIoU" in x] == [next(x for x in lines if "--validation STORE" in x)]
    assert "never on the test" in next(x for x in lines if "--validation STORE" in x)
    assert pd.read_csv(tmp_path / "s" / "thresholds.csv").empty
    summary = pd.read_csv(tmp_path / "s" / "summary.csv")
    assert summary.ci_low.isna().all() and summary.ci_high.isna().all()      # bootstrap: 0
    assert json.loads((tmp_path / "s" / "score.json").read_text())["validation"] is None


def test_validation_of_the_test_split_is_refused(stores, tmp_path):
    test = stores[1]
    with pytest.raises(CxrsalError, match=r"^--validation .*: its maps are of the test split.*never on test"):
        score_store(test, tmp_path / "a", validation=test, log=quiet)
    r = CliRunner().invoke(cli, ["score", "--maps", str(test), "--validation", str(test), "--out", str(tmp_path / "b")])
    assert r.exit_code == 2
    msg = [x for x in r.output.splitlines() if x.strip()]
    assert len(msg) == 1 and "--validation" in msg[0] and "never on test" in msg[0]
    assert not (tmp_path / "b" / "scores.csv").exists()


@pytest.mark.parametrize("what", ["weights", "params"])
def test_validation_of_another_model_is_refused(run, stores, tmp_path, what):
    other = tmp_path / "val"
    if what == "weights":
        write_store(other, run, "val", MAKERS, weights="digest-b")
        pattern = r"another model \(weights digest\)"
    else:
        write_store(other, run, "val", MAKERS, params={"noisy": {"steps": 5}})
        pattern = r"its noisy maps were made with \{'steps': 5\}"
    with pytest.raises(CxrsalError, match=pattern):
        score_store(stores[1], tmp_path / "s", validation=other, log=quiet)


def test_config_keys_and_cli(stores, tmp_path):
    assert load_config(options={"score.bootstrap": 0}).score.bootstrap == 0
    with pytest.raises(ConfigError, match="score.bootstrap must be an integer >= 0, got -1"):
        load_config(options={"score.bootstrap": -1})
    r = CliRunner().invoke(cli, ["score", "--maps", str(stores[1]), "--validation", str(stores[0]), "--bootstrap",
                                 "50", "--set", "score.seed=3", "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert "mIoU" in r.output and "thresholds.csv" in r.output
    written = load_config(tmp_path / "s" / "config.yaml").score
    assert (written.validation, written.bootstrap, written.seed) == (str(stores[0]), 50, 3)
