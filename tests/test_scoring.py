"""`cxrsal score` end to end: table values against the metrics, baselines, pointwise AP, CLI."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import average_precision_score

from cxrsal.cli.main import cli
from cxrsal.config import load_config
from cxrsal.data.pipeline import PreparedSplit
from cxrsal.errors import CxrsalError
from cxrsal.experiments.scoring import parse_baselines, read_detections, score_store
from cxrsal.saliency.runner import run_saliency
from cxrsal.saliency.store import MapStore


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
