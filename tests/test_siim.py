"""SIIM-ACR label parsing (cxrsal.data.siim) with every Kaggle quirk, on hand-written CSVs."""

import numpy as np
import pytest

from cxrsal.data import rle, siim
from cxrsal.data.dicom import write_dicom
from cxrsal.errors import DataError

PX = np.full((16, 16), 100, np.uint8)


def siim_root(tmp_path, text, ids, name="train-rle.csv"):
    (tmp_path / name).write_text(text)
    for i, image_id in enumerate(ids):
        d = tmp_path / "dicom-images-train" / f"1.2.{i}" / f"1.3.{i}"
        d.mkdir(parents=True)
        write_dicom(d / f"{image_id}.dcm", PX)
    return tmp_path


def test_siim_stage1_quirks_and_union(tmp_path):
    a = np.zeros((16, 16), bool); a[2:5, 3:6] = True
    b = np.zeros((16, 16), bool); b[4:9, 5:7] = True
    text = ("ImageId, EncodedPixels\n"
            "img.neg, -1\n"
            f"img.pos, {rle.encode(a)}\n"
            f"img.pos, {rle.encode(b)}\n")
    root = siim_root(tmp_path, text, ["img.neg", "img.pos"])
    out = siim.read_labels(root)
    items = {it.image_id: it for it in out.items}
    assert items["img.neg"].label == 0 and items["img.neg"].rles == ()
    assert items["img.pos"].label == 1 and len(items["img.pos"].rles) == 2
    mask = siim.SIIM.mask(items["img.pos"], (16, 16), 16)
    np.testing.assert_array_equal(mask, a | b)                  # union, not the last row only
    assert items["img.pos"].source == "train-rle.csv lines 3,4"


def test_siim_stage2_spelling(tmp_path):
    root = siim_root(tmp_path, "ImageId,EncodedPixels\nimg.x,-1\n", ["img.x"], name="stage_2_train.csv")
    assert [it.image_id for it in siim.read_labels(root).items] == ["img.x"]


def test_siim_malformed_and_missing(tmp_path):
    text = "ImageId, EncodedPixels\nimg.bad, 1 2 3\nimg.gone, -1\nimg.ok, 0 4\n"
    root = siim_root(tmp_path, text, ["img.bad", "img.ok"])
    out = siim.read_labels(root)
    reasons = {s.image_id: (s.source, s.reason) for s in out.skipped}
    assert reasons["img.bad"][0] == "train-rle.csv line 2" and "odd number" in reasons["img.bad"][1]
    assert "img.gone.dcm not found" in reasons["img.gone"][1]
    assert [it.image_id for it in out.items] == ["img.ok"]
    # runs past the real image are found when the image size is known
    item = siim.read_labels(root).items[0]
    with pytest.raises(ValueError, match="past the image"):
        siim.SIIM.mask(item.__class__(**{**item.__dict__, "rles": ("250 10",)}), (16, 16), 8)


def test_siim_no_label_file(tmp_path):
    with pytest.raises(DataError, match="no SIIM label file"):
        siim.read_labels(tmp_path)
