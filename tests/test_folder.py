"""`prepare --dataset folder` and `--dataset coco`: any annotated set, PNG/JPEG/DICOM, 8 or 16
bit, grey or colour; the same manifest, arrays and skipped rules as RSNA and SIIM (issue 15
point 2). References: OpenCV/NumPy written here, a COCO RLE encoder written here, boxes_to_mask."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from cxrsal.config import load_config
from cxrsal.data.dicom import write_dicom
from cxrsal.data.images import read_any
from cxrsal.data.manifest import read_manifest
from cxrsal.data.masks import boxes_to_mask
from cxrsal.data.prepare import annotation_of, check_prepared, prepare
from cxrsal.errors import DataError, ImageReadError
from cxrsal.resizing import resize_mask


def quiet(*_):
    pass


def cxrsal(*args):
    out = subprocess.run([sys.executable, "-m", "cxrsal.cli", *map(str, args)], capture_output=True, text=True)
    return out.returncode, out.stdout, out.stderr


H, W = 60, 80
BOX = (30, 12, 24, 18)       # x, y, width, height in original pixels


def radiograph(i):
    """A grey test image (values 0-200 of 255) with a bright lesion in BOX on odd i."""
    img = (np.random.default_rng(i).random((H, W)) * 200).astype(np.uint8)
    if i % 2:
        x, y, w, h = BOX
        img[y:y + h, x:x + w] = 255
    return img


def write_image(path, img, kind):
    """One of five encodings of the same 8-bit picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "png8":
        cv2.imwrite(str(path.with_suffix(".png")), img)
    elif kind == "png16":
        cv2.imwrite(str(path.with_suffix(".png")), img.astype(np.uint16) * 257)     # the same values / 65535
    elif kind == "rgb":
        cv2.imwrite(str(path.with_suffix(".png")), np.dstack([img] * 3))
    elif kind == "jpg":
        cv2.imwrite(str(path.with_suffix(".jpg")), img, [cv2.IMWRITE_JPEG_QUALITY, 100])
    elif kind == "dcm":
        write_dicom(path.with_suffix(".dcm"), img)


KINDS = ("png8", "png16", "rgb", "jpg", "dcm")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """20 images in five encodings under nested folders, labels.csv and boxes.csv."""
    root = tmp_path_factory.mktemp("folder")
    labels, boxes = ["image_id,label"], ["image_id,x,y,width,height"]
    for i in range(20):
        write_image(root / "images" / KINDS[i % 5] / f"img{i:02d}", radiograph(i), KINDS[i % 5])
        labels.append(f"img{i:02d},{i % 2}")
        if i % 2:
            boxes.append(f"img{i:02d},{','.join(map(str, BOX))}")
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    (root / "boxes.csv").write_text("\n".join(boxes) + "\n")
    return root


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


def test_folder_with_boxes_prepares_like_rsna(folder, tmp_path):
    rc, out, err = cxrsal("prepare", "--dataset", "folder", "--root", folder, "--size", 32, "--out", tmp_path / "run",
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


def test_folder_with_masks_and_bad_rows(folder, tmp_path):
    root = tmp_path / "masked"
    root.mkdir()
    (root / "images").symlink_to(folder / "images")
    (root / "labels.csv").write_text((folder / "labels.csv").read_text()
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
def coco(folder, tmp_path_factory):
    """The folder's PNG images with a COCO file: odd images have an 'opacity' annotation whose
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
    (root / "images").symlink_to(folder / "images")
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


def test_a_folder_run_scores_its_boxes_as_rsna_does(folder, tmp_path):
    """The ground truth of scoring follows the run's annotation kind, not the dataset's name."""
    from cxrsal.data.pipeline import PreparedSplit
    from cxrsal.experiments.scoring import truth_masks

    cfg = load_config(options={"data.dataset": "folder", "data.root": str(folder), "data.size": 32,
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
