"""tf.data pipeline over a prepared run: shapes, dtypes, order, balance, flips, resizing."""

import numpy as np
import pytest

from cxrsal.config import load_config
from cxrsal.data.pipeline import PreparedSplit, epoch_order, make_dataset
from cxrsal.data.prepare import SCALE, prepare
from cxrsal.errors import CxrsalError


@pytest.fixture(scope="module")
def run(rsna_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = load_config(options={"data.dataset": "rsna", "data.root": str(rsna_root), "data.size": 32,
                               "data.workers": 1, "data.split": [0.5, 0.25, 0.25]})
    prepare(cfg, out, progress=False, log=lambda *_: None)
    return out


def collect(ds):
    parts = list(zip(*[tuple(t.numpy() for t in batch) for batch in ds]))
    return [np.concatenate(p) for p in parts]


def test_in_order_values_shapes_dtypes(run):
    raw = np.load(run / "arrays" / "train_images.npy")
    masks = np.load(run / "arrays" / "train_masks.npy")
    labels = np.load(run / "arrays" / "train_labels.npy")
    ds = make_dataset(run, "train", batch_size=4, shuffle=False)
    first = next(iter(ds))
    assert [t.dtype.name for t in first] == ["float32", "float32", "float32"]
    assert first[0].shape == (4, 32, 32, 1) and first[1].shape == (4,) and first[2].shape == (4, 32, 32, 1)
    x, y, m = collect(ds)
    np.testing.assert_allclose(x[..., 0], raw / SCALE, rtol=1e-6)
    np.testing.assert_array_equal(m[..., 0], masks)
    np.testing.assert_array_equal(y, labels)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_shuffle_by_seed_and_epoch(run):
    labels = np.load(run / "arrays" / "train_labels.npy")
    a = epoch_order(labels, epoch=0, seed=3, shuffle=True, balanced=False)
    b = epoch_order(labels, epoch=1, seed=3, shuffle=True, balanced=False)
    assert sorted(a) == list(range(len(labels))) and not np.array_equal(a, b)
    ds = make_dataset(run, "train", batch_size=5, seed=3, repeat=False)
    e0, e1 = collect(ds), collect(ds)           # each pass is the next epoch
    images = PreparedSplit(run, "train").arrays()[0]
    np.testing.assert_allclose(e0[0], images[a], rtol=1e-6)
    np.testing.assert_allclose(e1[0], images[b], rtol=1e-6)
    # an interrupted training run continues the same sequence
    resumed = collect(make_dataset(run, "train", batch_size=5, seed=3, start_epoch=1))
    np.testing.assert_array_equal(resumed[0], e1[0])


def test_balanced_sampling(run):
    labels = np.load(run / "arrays" / "train_labels.npy")
    order = epoch_order(labels, epoch=0, seed=0, shuffle=True, balanced=True)
    assert len(order) == len(labels) and labels[order].sum() == len(labels) // 2
    _, y, _ = collect(make_dataset(run, "train", batch_size=8, balanced=True))
    assert y.sum() == len(labels) // 2


def test_flip_mirrors_image_and_mask_together(run):
    plain = collect(make_dataset(run, "train", batch_size=6, seed=4))
    flipped = collect(make_dataset(run, "train", batch_size=6, seed=4, flip=True))
    again = collect(make_dataset(run, "train", batch_size=6, seed=4, flip=True))
    np.testing.assert_array_equal(flipped[0], again[0])
    n_flipped = 0
    for i in range(len(plain[0])):
        if np.array_equal(flipped[0][i], plain[0][i]):
            np.testing.assert_array_equal(flipped[2][i], plain[2][i])
        else:
            n_flipped += 1
            np.testing.assert_array_equal(flipped[0][i], plain[0][i][:, ::-1])
            np.testing.assert_array_equal(flipped[2][i], plain[2][i][:, ::-1])
    assert 0 < n_flipped < len(plain[0])


def test_resize_to_model_size(run):
    x, y, m = collect(make_dataset(run, "val", batch_size=3, image_size=16, shuffle=False))
    raw = np.load(run / "arrays" / "val_images.npy") / SCALE
    small = raw.reshape(-1, 16, 2, 16, 2).mean(axis=(2, 4))   # area resize by 2 = 2x2 block mean
    np.testing.assert_allclose(x[..., 0], small, atol=1e-5)
    masks = np.load(run / "arrays" / "val_masks.npy").reshape(-1, 16, 2, 16, 2).max(axis=(2, 4))
    np.testing.assert_array_equal(m[..., 0], masks)
    x2, _ = collect(make_dataset(run, "val", batch_size=3, image_size=48, with_masks=False))
    assert x2.shape[1:] == (48, 48, 1)


def test_drop_remainder_and_errors(run, tmp_path):
    n = len(PreparedSplit(run, "train"))
    x, _, _ = collect(make_dataset(run, "train", batch_size=4, drop_remainder=True))
    assert len(x) == n - n % 4
    with pytest.raises(CxrsalError, match="unknown split 'dev'"):
        make_dataset(run, "dev")
    with pytest.raises(CxrsalError, match="not a finished `cxrsal prepare` run"):
        make_dataset(tmp_path, "train")
