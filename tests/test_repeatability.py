"""Repeatability (`cxrsal compare`, cxrsal.experiments.repeatability): the SSIM between the maps of
two models, recomputed with scikit-image from the stored files (across input sizes too); models
with the same gradients agree exactly; the high baseline of two localization networks."""

import json

import numpy as np
import pytest

from cxrsal.config import load_config
from cxrsal.experiments.repeatability import run_compare
from cxrsal.saliency.store import MapStore
from helpers import quiet, sk_ssim, stored_map


def block_mean(m, k):
    """Shrink by an integer factor: the mean of each k x k block (what INTER_AREA does then)."""
    h, w = m.shape
    return m.reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def test_compare_shrinks_to_the_smaller_map_and_matches_skimage(trained_classifier, trained_wildcat, tmp_path):
    """Reproducibility across input sizes (32 and 64 px): the larger map is brought to the smaller
    size, then per-image SSIM; recomputed here from the stored files with scikit-image."""
    cfg = load_config(overrides=["saliency.split=val", "compare.n_images=3", "saliency.batch_size=8"])
    table, _ = run_compare([trained_classifier, trained_wildcat], tmp_path / "c", cfg, "grad,gcam", progress=False,
                           log=quiet)
    small = tmp_path / "c" / "maps" / f"0-{trained_classifier.name}"
    large = tmp_path / "c" / "maps" / f"1-{trained_wildcat.name}"
    assert len(table) == 6
    for row in table.itertuples():
        a, _ = stored_map(small / row.method / f"{row.image_id}.npz")
        b, _ = stored_map(large / row.method / f"{row.image_id}.npz")
        assert a.shape == (32, 32) and b.shape == (64, 64)
        assert row.value == pytest.approx(sk_ssim(a, block_mean(b, 2)), abs=1e-5), row


def test_compare_of_models_with_the_same_gradients_is_one(trained_classifier, classifier_twin, tmp_path):
    cfg = load_config(overrides=["saliency.split=val", "saliency.samples=2", "compare.n_images=4"])
    table, summary = run_compare([trained_classifier, classifier_twin], tmp_path / "c", cfg, "grad,gcam",
                                 progress=False, log=quiet)
    # identical maps: SSIM exactly 1, unless neither has structure (both constant: undefined)
    for row in table.itertuples():
        a, _ = stored_map(tmp_path / "c" / "maps" / f"0-{trained_classifier.name}" / row.method / f"{row.image_id}.npz")
        if a.max() == a.min():
            assert np.isnan(row.value) and row.undefined == "both maps constant"
        else:
            assert row.value == 1.0 and row.undefined == ""
    assert (summary["count"] == table.groupby("method").value.count().reindex(summary.method).to_numpy()).all()


def test_compare_high_baseline_from_two_localization_networks(trained_classifier, classifier_twin, tmp_path):
    cfg = load_config(overrides=["saliency.split=val", "compare.n_images=3"])
    run_compare([trained_classifier, classifier_twin], tmp_path / "c0", cfg, "grad", progress=False, log=quiet)
    ids = MapStore(tmp_path / "c0" / "maps" / f"0-{trained_classifier.name}").meta["image_ids"]
    a, b = tmp_path / "unet_a", tmp_path / "unet_b"
    a.mkdir(), b.mkdir()
    rng = np.random.default_rng(0)
    for i in ids:
        m = rng.random((16, 16)).astype(np.float32)
        np.save(a / f"{i}.npy", m)
        np.save(b / f"{i}.npy", m)          # two identical networks: high baseline SSIM 1
    table, summary = run_compare([trained_classifier, classifier_twin], tmp_path / "c", cfg, "grad",
                                 baseline_maps=(a, b), progress=False, log=quiet)
    high = summary.set_index("method").loc["baseline:localization"]
    assert high["mean"] == pytest.approx(1.0) and high["count"] == 3
    meta = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert meta["low_baseline"] == 0.5 and meta["archs"] == ["resnet18", "resnet18"]
    assert meta["choices"]["similarity.maps"] == "processed" and meta["data_hash"] == json.loads(
        (trained_classifier / "data.json").read_text())["manifest_sha256"]
