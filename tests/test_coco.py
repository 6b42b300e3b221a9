"""`prepare --dataset coco` (cxrsal.data.coco): a COCO annotation file's segmentations (RLE and
polygons) and categories, the same manifest, arrays and skipped rules as the other data sets; bad
input in one line. References: a COCO RLE encoder written here, pycocotools, boxes_to_mask."""

import json

import numpy as np
import pandas as pd
import pytest

from cxrsal.data.manifest import read_manifest
from cxrsal.data.masks import boxes_to_mask
from cxrsal.data.prepare import annotation_of, check_prepared
from cxrsal.resizing import resize_mask
from helpers import KINDS, H, W, cxrsal


def coco_rle(mask):
    """COCO's uncompressed RLE of a binary mask, written here: run lengths of the column-major
    (Fortran-order) pixels, starting with a run of zeros."""
    flat = mask.ravel(order="F").astype(np.uint8)
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


@pytest.fixture(scope="module")
def coco(image_folder, tmp_path_factory):
    """The image folder's PNG images with a COCO file: odd images have an 'opacity' annotation whose
    segmentation is an RLE of an irregular mask (img01: a polygon instead), img02 a 'device'."""
    root = tmp_path_factory.mktemp("coco")
    lesion = np.zeros((H, W), bool)
    lesion[15:35, 20:50] = True
    lesion[30:45, 20:28] = True
    images, annotations = [], []
    for i in range(20):
        kind = KINDS[i % 5]
        if kind in ("jpg", "dcm"):
            continue
        images.append({"id": i, "file_name": f"images/{kind}/img{i:02d}.png", "width": W, "height": H})
        if i % 2:
            seg = [[20, 15, 50, 15, 50, 35, 20, 35]] if i == 1 else coco_rle(lesion)
            annotations.append({"id": 100 + i, "image_id": i, "category_id": 1, "bbox": [20, 15, 30, 30],
                                "segmentation": seg, "iscrowd": 0})
    annotations.append({"id": 200, "image_id": 2, "category_id": 2, "bbox": [1, 1, 5, 5], "segmentation": []})
    annotations.append({"id": 300, "image_id": 777, "category_id": 1, "bbox": [1, 1, 5, 5]})
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": 1, "name": "opacity"}, {"id": 2, "name": "device"}]}
    (root / "ann.json").write_text(json.dumps(doc))
    (root / "images").symlink_to(image_folder / "images")
    return root, lesion


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
