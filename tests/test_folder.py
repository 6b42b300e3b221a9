"""`prepare --dataset folder` (cxrsal.data.folder): any annotated folder, PNG/JPEG/DICOM, 8 or 16
bit, grey or colour; the same manifest, arrays and skipped rules as RSNA and SIIM. References:
OpenCV/NumPy written here, boxes_to_mask. COCO files: tests/test_coco.py."""

import cv2
import numpy as np
import pandas as pd
import pytest

from cxrsal.config import load_config
from cxrsal.data.images import read_any
from cxrsal.data.manifest import read_manifest
from cxrsal.data.masks import boxes_to_mask
from cxrsal.data.prepare import annotation_of, check_prepared, prepare
from cxrsal.errors import DataError, ImageReadError
from cxrsal.resizing import resize_mask
from helpers import BOX, KINDS, H, W, cxrsal, quiet, radiograph, write_image


def test_every_encoding_reads_as_the_same_grey_image(tmp_path):
    img = radiograph(3)
    for kind in KINDS:
        write_image(tmp_path / kind, img, kind)
    want = img / 255.0
    for kind in ("png8", "png16", "rgb"):
        np.testing.assert_allclose(read_any(tmp_path / f"{kind}.png"), want, atol=1e-6, err_msg=kind)
    np.testing.assert_allclose(read_any(tmp_path / "dcm.dcm"), want, atol=1e-6)
    assert np.abs(read_any(tmp_path / "jpg.jpg") - want).max() < 0.05        # JPEG is lossy
    # colour: BT.601 luma of the channels (OpenCV stores blue, green, red)
    colour = np.dstack([np.full((4, 4), 10), np.full((4, 4), 100), np.full((4, 4), 200)]).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "c.png"), colour)
    np.testing.assert_allclose(read_any(tmp_path / "c.png"), (0.114 * 10 + 0.587 * 100 + 0.299 * 200) / 255, atol=1e-6)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ImageReadError, match="bad.png: not a readable PNG image"):
        read_any(tmp_path / "bad.png")


def test_folder_with_boxes_prepares_like_rsna(image_folder, tmp_path):
    rc, out, err = cxrsal("prepare", "--dataset", "folder", "--root", image_folder, "--size", 32, "--out", tmp_path / "run",
                          "--workers", 1, "--quiet")
    assert rc == 0, err
    summary = check_prepared(tmp_path / "run")
    assert summary["images"] == 20 and summary["skipped"] == 0 and annotation_of(summary) == "boxes"
    rows = read_manifest(tmp_path / "run")
    for r in rows:
        i = int(r["image_id"][3:])
        assert r["label"] == i % 2 and (r["height"], r["width"]) == (H, W)
        assert r["boxes"] == (" ".join(map(str, BOX)) if i % 2 else "")
    for split in ("train", "val", "test"):
        images = np.load(tmp_path / "run" / "arrays" / f"{split}_images.npy")
        masks = np.load(tmp_path / "run" / "arrays" / f"{split}_masks.npy")
        for r in (r for r in rows if r["split"] == split):
            i = int(r["image_id"][3:])
            small = cv2.resize(radiograph(i).astype(np.float32) / 255, (32, 32), interpolation=cv2.INTER_AREA)
            tol = 0.05 if KINDS[i % 5] == "jpg" else 1e-4
            assert np.abs(images[r["index"]] / 65535 - small).max() < tol, r["image_id"]
            want = boxes_to_mask([BOX], 32, (H, W)) if i % 2 else np.zeros((32, 32), bool)
            np.testing.assert_array_equal(masks[r["index"]] > 0, want)


def test_folder_with_masks_and_bad_rows(image_folder, tmp_path):
    root = tmp_path / "masked"
    root.mkdir()
    (root / "images").symlink_to(image_folder / "images")
    (root / "labels.csv").write_text((image_folder / "labels.csv").read_text()
                                     + "ghost,0\nimg00,1\nimg02,maybe\n")
    lesion = np.zeros((H, W), np.uint8)
    lesion[10:30, 5:40] = 255
    (root / "masks").mkdir()
    for i in range(1, 20, 2):
        cv2.imwrite(str(root / "masks" / f"img{i:02d}.png"), lesion if i != 5 else lesion[:30])   # 5: wrong size
    rc, out, err = cxrsal("prepare", "--dataset", "folder", "--root", root, "--size", 32, "--out", tmp_path / "run",
                          "--workers", 1, "--split", "all=test", "--quiet")
    assert rc == 0, err
    skipped = pd.read_csv(tmp_path / "run" / "skipped.csv").set_index("image_id")
    assert "image file missing" in skipped.loc["ghost", "reason"]
    assert skipped.loc["img00", "reason"].startswith("label 1 contradicts line")
    assert skipped.loc["img02", "reason"] == "label 'maybe' is not 0 or 1"
    assert "masks must have their image's size" in skipped.loc["img05", "reason"]
    assert skipped.loc["img05", "source"] == "labels.csv line 7"
    summary = check_prepared(tmp_path / "run")
    assert annotation_of(summary) == "masks" and summary["counts"]["train"] == {"negative": 0, "positive": 0}
    masks = np.load(tmp_path / "run" / "arrays" / "test_masks.npy")
    want = resize_mask(lesion > 0, 32)
    for r in read_manifest(tmp_path / "run"):
        np.testing.assert_array_equal(masks[r["index"]] > 0, want if r["label"] else np.zeros_like(want))
    # boxes.csv and masks/ together: which to use is the user's call, in one line
    (root / "boxes.csv").write_text("image_id,x,y,width,height\n")
    rc, _, err = cxrsal("prepare", "--dataset", "folder", "--root", root, "--out", tmp_path / "both", "--quiet")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "holds both boxes.csv and masks/" in err


def test_a_folder_run_scores_its_boxes_as_rsna_does(image_folder, tmp_path):
    """The ground truth of scoring follows the run's annotation kind, not the dataset's name."""
    from cxrsal.data.pipeline import PreparedSplit
    from cxrsal.experiments.score_sheet import truth_masks

    cfg = load_config(options={"data.dataset": "folder", "data.root": str(image_folder), "data.size": 32,
                               "data.workers": 1, "data.split": [0.0, 0.0, 1.0]})
    prepare(cfg, tmp_path / "run", progress=False, log=quiet)
    rows = [r for r in read_manifest(tmp_path / "run") if r["split"] == "test"]
    truth = truth_masks(tmp_path / "run", PreparedSplit(tmp_path / "run", "test"), rows, 64)
    for r in rows:
        want = boxes_to_mask([BOX], 64, (H, W)) if r["label"] else np.zeros((64, 64), bool)
        np.testing.assert_array_equal(truth[r["image_id"]], want)
    with pytest.raises(DataError, match="no usable labelled images"):
        empty = tmp_path / "empty"
        empty.mkdir()
        (empty / "labels.csv").write_text("image_id,label\n")
        prepare(load_config(options={"data.dataset": "folder", "data.root": str(empty)}), tmp_path / "e",
                progress=False, log=quiet)
