"""`prepare --dataset coco` (cxrsal.data.coco): a COCO annotation file's segmentations (RLE and
polygons) and categories, the same manifest, arrays and skipped rules as the other data sets; bad
input in one line. References: a COCO RLE encoder written here, pycocotools, boxes_to_mask."""


import numpy as np
import pandas as pd
import pytest

from cxrsal.data.manifest import read_manifest
from cxrsal.data.masks import boxes_to_mask
from cxrsal.data.prepare import annotation_of, check_prepared
from cxrsal.resizing import resize_mask
from helpers import H, W, cxrsal


def test_coco_segmentations_and_categories(coco, tmp_path):
    root, lesion = coco
    rc, out, err = cxrsal("prepare", "--dataset", "coco", "--root", root, "--annotations", root / "ann.json",
                          "--positive", "opacity", "--size", 32, "--out", tmp_path / "run", "--workers", 1,
                          "--split", "all=test", "--quiet")
    assert rc == 0, err
    summary = check_prepared(tmp_path / "run")
    assert summary["images"] == 12 and annotation_of(summary) == "masks"
    skipped = pd.read_csv(tmp_path / "run" / "skipped.csv")
    assert list(skipped.reason) == ["image_id 777 is not in the file's images"]
    assert skipped.source.item() == "ann.json annotations[7]"   # 6 lesions, the device, then it
    rows = {r["image_id"]: r for r in read_manifest(tmp_path / "run")}
    assert rows["2"]["label"] == 0                        # a device is not a lesion
    masks = np.load(tmp_path / "run" / "arrays" / "test_masks.npy")
    # the RLE written by the test, decoded by pycocotools: the same pixels as the mask it encodes
    np.testing.assert_array_equal(masks[rows["5"]["index"]] > 0, resize_mask(lesion, 32))
    # the polygon of a 30 x 20 rectangle: pycocotools fills it with at most a pixel's doubt at its edges
    poly = masks[rows["1"]["index"]] > 0
    box = boxes_to_mask([(20, 15, 30, 20)], 32, (H, W))
    assert (poly & ~box).sum() == 0 and poly.sum() >= 0.7 * box.sum()
    # every annotation counts without --positive: the device makes image 2 positive
    rc, _, err = cxrsal("prepare", "--dataset", "coco", "--root", root, "--annotations", root / "ann.json",
                        "--size", 32, "--out", tmp_path / "any", "--workers", 1, "--split", "all=test", "--quiet")
    assert rc == 0, err
    assert {r["image_id"]: r for r in read_manifest(tmp_path / "any")}["2"]["label"] == 1


@pytest.mark.parametrize("args, message", [
    (["--annotations", "{root}/ann.json", "--positive", "nodule"], "--positive nodule: no such category in"),
    (["--annotations", "{root}/labels.txt"], "labels.txt: not a JSON file"),
    ([], "--annotations FILE.json is required for --dataset coco"),
    (["--annotations", "{root}/ann.json", "--split", "all=tst"], "all= takes one of train, val, test"),
    (["--annotations", "{root}/ann.json", "--split", "0.5:0.5"], "give TRAIN:VAL:TEST fractions"),
])
def test_coco_bad_input_is_one_line(coco, tmp_path, args, message):
    root, _ = coco
    (root / "labels.txt").write_text("image_id,label\n")
    rc, _, err = cxrsal("prepare", "--dataset", "coco", "--root", root, "--out", tmp_path / "o", "--quiet",
                        *(a.format(root=root) for a in args))
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and message in lines[0], err
