"""Synthetic RSNA / SIIM writers: Kaggle layouts byte for byte, readable DICOM, exact labels."""

import json
import re
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from cxrsal.data import rle
from cxrsal.data import rsna as rsna_files
from cxrsal.data import siim as siim_files
from cxrsal.data import synth as S
from cxrsal.data.drawing import chest_image
from cxrsal.data.dicom import CR_IMAGE_STORAGE, write_dicom
from cxrsal.errors import CxrsalError

SIZE = 128
N = 16
FRACTION = 0.5
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
ANON_UID = re.compile(r"^1\.2\.276\.0\.7230010\.3\.1\.[234]\.8323329\.\d+\.\d+\.\d+$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def slow_rle_decode(text, h, w):
    """Reference decoder: pairs (start, length), later starts relative to the previous run's
    end, pixels numbered down the first column, then the next."""
    mask = np.zeros((h, w), bool)
    text = text.strip()
    if text == "-1":
        return mask
    nums = [int(t) for t in text.split()]
    pos = 0
    for i in range(0, len(nums), 2):
        pos += nums[i]
        for k in range(pos, pos + nums[i + 1]):
            mask[k % h, k // h] = True
        pos += nums[i + 1]
    return mask


def as_density(ds):
    """Decoded pixels as float in [0, 1], bright = dense."""
    a = ds.pixel_array.astype(np.float64) / (2 ** ds.BitsStored - 1)
    return 1.0 - a if ds.PhotometricInterpretation == "MONOCHROME1" else a


def first_pixels(root):
    return pydicom.dcmread(sorted(Path(root).rglob("*.dcm"))[0]).pixel_array


def files_under(root):
    return {p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def rsna(tmp_path_factory):
    out = tmp_path_factory.mktemp("rsna")
    summary = S.synth_rsna(out, N, seed=7, image_size=SIZE, positive_fraction=FRACTION)
    cases = {c.image_id: c for c in S._plan("rsna", N, 7, FRACTION)}
    return out, summary, cases


@pytest.fixture(scope="module")
def siim(tmp_path_factory):
    out = tmp_path_factory.mktemp("siim")
    summary = S.synth_siim(out, N, seed=7, image_size=SIZE, positive_fraction=FRACTION)
    cases = {c.image_id: c for c in S._plan("siim", N, 7, FRACTION)}
    return out, summary, cases


# ----------------------------------------------------------------------------- RLE


def test_rle_encode_literal():
    # column-major numbering of a 3x3 mask: column 1 holds pixels 3, 4; column 2 holds pixel 7.
    # runs (3, 2) and (7, 1); the second start is 7 - (3 + 2) = 2 after the first run's end.
    mask = np.array([[0, 1, 0], [0, 1, 1], [0, 0, 0]], bool)
    assert rle.encode(mask) == "3 2 2 1"
    assert rle.encode(np.zeros((4, 5), bool)) == "-1"
    assert rle.encode(np.ones((2, 2), bool)) == "0 4"


def test_rle_encode_roundtrip_against_slow_decoder():
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (5, 7), (16, 9), (32, 32)]:
        for p in (0.1, 0.5, 0.9):
            mask = rng.random((h, w)) < p
            assert np.array_equal(slow_rle_decode(rle.encode(mask), h, w), mask)


# ----------------------------------------------------------------------------- write_dicom


def test_write_dicom_uncompressed_roundtrip(tmp_path):
    pixels = (np.arange(64 * 48) % 256).astype(np.uint8).reshape(64, 48)  # not square
    path = write_dicom(tmp_path / "a.dcm", pixels, patient_id="p1")
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM"
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.file_meta.MediaStorageSOPClassUID == CR_IMAGE_STORAGE == ds.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert (ds.Rows, ds.Columns, ds.SamplesPerPixel) == (64, 48, 1)
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (8, 8, 7, 0)
    assert (ds.Modality, ds.BodyPartExamined, ds.PatientID) == ("CR", "CHEST", "p1")
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert "RescaleSlope" not in ds
    assert np.array_equal(ds.pixel_array, pixels)
    # UIDs left unset are derived from the content: rewriting gives the same file
    write_dicom(tmp_path / "b.dcm", pixels, patient_id="p1")
    assert (tmp_path / "b.dcm").read_bytes() == raw
    assert not list(tmp_path.glob(".tmp-*"))


def test_write_dicom_12_bit_with_rescale_and_header(tmp_path):
    pixels = (np.arange(32 * 32, dtype=np.uint16) * 4).reshape(32, 32)  # 0 .. 4092
    write_dicom(tmp_path / "a.dcm", pixels, bits_stored=12, rescale=(2.0, -5.0),
                  photometric="MONOCHROME1", header={"ViewPosition": "AP"},
                  sop_instance_uid="1.2.3.4", study_uid="1.2.3", series_uid="1.2.3.5")
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 12, 11)
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (2.0, -5.0)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    uids = (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID)
    assert uids == ("1.2.3.4", "1.2.3", "1.2.3.5")
    assert ds.ViewPosition == "AP"
    assert np.array_equal(ds.pixel_array, pixels)  # stored values as given, never inverted


def test_write_dicom_jpeg(tmp_path):
    pixels = np.rint(chest_image(np.random.default_rng(0), 96) * 255).astype(np.uint8)
    write_dicom(tmp_path / "a.dcm", pixels, jpeg=True)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    assert ds.file_meta.TransferSyntaxUID == JPEG_BASELINE
    assert ds.LossyImageCompression == "01"
    assert ds["PixelData"].VR == "OB" and ds["PixelData"].is_undefined_length
    err = np.abs(ds.pixel_array.astype(int) - pixels)
    assert ds.pixel_array.shape == pixels.shape
    assert err.mean() < 3 and err.max() < 30  # q95 on a noisy film: about the noise level


@pytest.mark.parametrize("kw, pixels", [
    ({}, np.zeros((4, 4, 3), np.uint8)),
    ({}, np.zeros((4, 4), np.float32)),
    ({"jpeg": True}, np.zeros((4, 4), np.uint16)),
    ({"bits_stored": 12}, np.full((4, 4), 4096, np.uint16)),
    ({"photometric": "RGB"}, np.zeros((4, 4), np.uint8)),
    ({"header": {"NotAKeyword": 1}}, np.zeros((4, 4), np.uint8)),
])
def test_write_dicom_rejects(tmp_path, kw, pixels):
    with pytest.raises(CxrsalError):
        write_dicom(tmp_path / "a.dcm", pixels, **kw)
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- images


def test_chest_image():
    a = chest_image(np.random.default_rng(1), 128)
    b = chest_image(np.random.default_rng(1), 128)
    c = chest_image(np.random.default_rng(2), 128)
    assert a.shape == (128, 128) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # lungs darker than the mediastinum
    assert a[40:80, 20:50].mean() < a[40:80, 58:70].mean() - 0.1


# ----------------------------------------------------------------------------- RSNA


def read_rsna(out):
    labels = (out / rsna_files.LABELS).read_text().splitlines()
    classes = (out / rsna_files.CLASS_INFO).read_text().splitlines()
    return labels, classes


def test_rsna_layout(rsna):
    out, summary, cases = rsna
    labels, classes = read_rsna(out)
    assert (out / rsna_files.LABELS).read_bytes().startswith(b"patientId,x,y,width,height,Target\n")
    assert (out / rsna_files.CLASS_INFO).read_bytes().startswith(b"patientId,class\n")
    ids = list(dict.fromkeys(line.split(",")[0] for line in labels[1:]))
    assert len(ids) == N and all(UUID.match(i) for i in ids)
    assert files_under(out) == {rsna_files.LABELS, rsna_files.CLASS_INFO, S.INFO} | {
        f"{rsna_files.IMAGES}/{i}.dcm" for i in ids}

    boxes = defaultdict(list)
    for line in labels[1:]:
        pid, *vals, target = line.split(",")
        if target == "1":
            assert all(re.fullmatch(r"\d+\.0", v) for v in vals), line
            boxes[pid].append(tuple(int(float(v)) for v in vals))
        else:
            assert target == "0" and vals == ["", "", "", ""], line
            assert pid not in boxes
    per_class = defaultdict(list)
    for line in classes[1:]:
        pid, cls = line.split(",", 1)
        per_class[pid].append(cls)
    assert list(per_class) == ids
    for pid in ids:
        n_rows = sum(line.startswith(pid + ",") for line in labels)
        assert len(per_class[pid]) == n_rows and len(set(per_class[pid])) == 1  # repeated per box
        expected = {"Lung Opacity"} if pid in boxes else {"Normal", "No Lung Opacity / Not Normal"}
        assert per_class[pid][0] in expected

    n_pos = int(np.floor(N * FRACTION + 0.5))
    assert len(boxes) == summary["positives"] == n_pos
    assert max(len(b) for b in boxes.values()) >= 2
    assert all(1 <= len(b) <= 4 for b in boxes.values())
    assert sum(len(b) for b in boxes.values()) == summary["boxes"]
    not_normal = sum(v[0] == "No Lung Opacity / Not Normal" for v in per_class.values())
    assert not_normal == summary["not_normal"] == round((N - n_pos) / 3)
    info = json.loads((out / S.INFO).read_text())
    assert info["rsna"] == summary


def test_rsna_dicom_readback(rsna):
    out, summary, cases = rsna
    kinds = defaultdict(int)
    for path in sorted((out / rsna_files.IMAGES).iterdir()):
        ds = pydicom.dcmread(path)
        case = cases[path.stem]
        assert ds.PatientID == path.stem
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert ANON_UID.match(ds.SOPInstanceUID) and ANON_UID.match(ds.StudyInstanceUID)
        assert ds.Modality == "CR" and ds.BodyPartExamined == "CHEST"
        assert ds.ViewPosition in ("PA", "AP") and ds.PatientSex in ("M", "F")
        assert ds.pixel_array.shape == (SIZE, SIZE)
        jpeg = ds.file_meta.TransferSyntaxUID == JPEG_BASELINE
        kinds["jpeg"] += jpeg
        kinds["mono1"] += ds.PhotometricInterpretation == "MONOCHROME1"
        kinds["bits12"] += ds.BitsStored == 12
        if ds.BitsStored == 12:
            assert ds.pixel_array.dtype == np.uint16 and float(ds.RescaleSlope) == 1.0
        expected = S._quantize(S._render_rsna(case, SIZE)[0], case)
        if jpeg:
            assert np.abs(ds.pixel_array.astype(int) - expected).mean() < 3
        else:
            assert np.array_equal(ds.pixel_array, expected)
    assert kinds["jpeg"] >= 1 and kinds["mono1"] >= 1 and kinds["bits12"] >= 1
    assert (kinds["jpeg"], kinds["mono1"], kinds["bits12"]) == (
        summary["jpeg"], summary["mono1"], summary["bits12"])


def test_rsna_boxes_mark_the_opacities(rsna):
    out, summary, cases = rsna
    labels, _ = read_rsna(out)
    boxes = defaultdict(list)
    for line in labels[1:]:
        pid, *vals, target = line.split(",")
        if target == "1":
            boxes[pid].append(tuple(int(float(v)) for v in vals))
    for pid, bs in boxes.items():
        case = cases[pid]
        img, rendered = S._render_rsna(case, SIZE)
        clean, none = S._render_rsna(case, SIZE, lesions=False)
        assert rendered == bs and none == []
        diff = img.astype(np.float64) - clean
        assert diff.min() >= -1e-6  # opacities only add density
        inside = np.zeros((SIZE, SIZE), bool)
        film = as_density(pydicom.dcmread(out / rsna_files.IMAGES / f"{pid}.dcm"))
        for x, y, w, h in bs:
            assert x >= 0 and y >= 0 and w >= 3 and h >= 3 and x + w <= SIZE and y + h <= SIZE
            assert w <= 0.4 * SIZE and h <= 0.6 * SIZE
            inside[y:y + h, x:x + w] = True
            assert diff[y:y + h, x:x + w].max() > 0.12  # the blob's peak is in its box
            # and on the written film the box is clearly denser than the lesion-free rendering
            assert film[y:y + h, x:x + w].mean() > clean[y:y + h, x:x + w].mean() + 0.04
        # outside every box each opacity adds under 10% of its peak (peak <= 0.4)
        assert diff[~inside].max() <= 0.04 * len(bs) + 1e-6


# ----------------------------------------------------------------------------- SIIM


def read_siim(out):
    text = (out / siim_files.STAGE1_LABELS).read_text()
    rows = defaultdict(list)
    for line in text.splitlines()[1:]:
        image_id, sep, value = line.partition(",")
        assert sep and value.startswith(" ") and not value.startswith("  "), line
        rows[image_id].append(value[1:])
    return rows


def test_siim_layout(siim):
    out, summary, cases = siim
    assert (out / siim_files.STAGE1_LABELS).read_bytes().startswith(b"ImageId, EncodedPixels\n")
    rows = read_siim(out)
    assert len(rows) == N
    expected_files = {siim_files.STAGE1_LABELS, S.INFO}
    for image_id, values in rows.items():
        assert ANON_UID.match(image_id)
        for v in values:
            assert re.fullmatch(r"-1|\d+( \d+)*", v), v
        assert values == ["-1"] or "-1" not in values
        case = cases[image_id]
        expected_files.add(f"{siim_files.IMAGES}/{case.study_uid}/{case.series_uid}/{image_id}.dcm")
    assert files_under(out) == expected_files

    positives = [i for i, v in rows.items() if v != ["-1"]]
    assert len(positives) == summary["positives"] == int(np.floor(N * FRACTION + 0.5))
    assert sum(len(rows[i]) for i in positives) == summary["annotations"]
    assert sum(len(rows[i]) > 1 for i in positives) == summary["multi_annotation"] >= 2
    assert summary["overlapping"] >= 1


def test_siim_dicom_readback(siim):
    out, summary, cases = siim
    jpeg = mono1 = 0
    paths = sorted((out / siim_files.IMAGES).rglob("*.dcm"))
    assert len(paths) == N
    for path in paths:
        ds = pydicom.dcmread(path)
        study, series = path.parent.parent.name, path.parent.name
        uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        assert uids == (study, series, path.stem)
        assert ds.pixel_array.shape == (SIZE, SIZE) and ds.pixel_array.dtype == np.uint8
        jpeg += ds.file_meta.TransferSyntaxUID == JPEG_BASELINE
        mono1 += ds.PhotometricInterpretation == "MONOCHROME1"
        expected = S._quantize(S._render_siim(cases[path.stem], SIZE)[0], cases[path.stem])
        assert np.abs(ds.pixel_array.astype(int) - expected).mean() < 3
    assert jpeg >= 1 and mono1 >= 1
    assert (jpeg, mono1) == (summary["jpeg"], summary["mono1"])


def test_siim_masks_are_the_changed_region(siim):
    out, summary, cases = siim
    kinds = set()
    for image_id, values in read_siim(out).items():
        case = cases[image_id]
        img, masks = S._render_siim(case, SIZE)
        clean, _ = S._render_siim(case, SIZE, lesions=False)
        if values == ["-1"]:
            assert not case.positive and masks == [] and np.array_equal(img, clean)
            continue
        decoded = [slow_rle_decode(v, SIZE, SIZE) for v in values]
        assert len(decoded) == len(masks)
        for d, m in zip(decoded, masks):
            assert d.any() and np.array_equal(d, m)
        union = np.logical_or.reduce(decoded)
        assert 0.01 <= union.mean() <= 0.10
        assert np.array_equal(img != clean, union)  # exact ground truth of the changed pixels
        assert img[union].mean() < clean[union].mean() - 0.05  # air is darker than lung
        if len(decoded) > 1:
            pairs = [(a, b) for i, a in enumerate(decoded) for b in decoded[i + 1:]]
            if case.overlap:
                kinds.add("overlap")
                assert any((a & b).any() for a, b in pairs)
            else:
                kinds.add("disjoint")
                assert not any((a & b).any() for a, b in pairs)
                n_cc = cv2.connectedComponents(union.astype(np.uint8), connectivity=8)[0] - 1
                assert n_cc == len(decoded)
    assert kinds == {"overlap", "disjoint"}


# ----------------------------------------------------------------------------- API


def test_reproducible(tmp_path):
    for name, csvs in (("rsna", [rsna_files.LABELS, rsna_files.CLASS_INFO]), ("siim", [siim_files.STAGE1_LABELS])):
        a, b, c = tmp_path / f"{name}a", tmp_path / f"{name}b", tmp_path / f"{name}c"
        S.synth(name, a, 5, seed=3, image_size=64)
        S.synth(name, b, 5, seed=3, image_size=64)
        S.synth(name, c, 5, seed=4, image_size=64)
        assert files_under(a) == files_under(b)
        for rel in files_under(a):
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
        for csv in csvs:
            assert (a / csv).read_bytes() != (c / csv).read_bytes()
        assert not np.array_equal(first_pixels(a), first_pixels(c))


@pytest.mark.parametrize("name", ["rsna", "siim"])
def test_smallest_size_and_single_image(tmp_path, name):
    s = S.synth(name, tmp_path / "a", 4, image_size=64, positive_fraction=0.5)
    assert s["images"] == 4 and s["positives"] == 2 and s["jpeg"] >= 1 and s["mono1"] >= 1
    for p in (tmp_path / "a").rglob("*.dcm"):
        assert pydicom.dcmread(p).pixel_array.shape == (64, 64)
    assert S.synth(name, tmp_path / "b", 1, image_size=64)["images"] == 1


def test_both_datasets_share_a_folder(tmp_path):
    S.synth_rsna(tmp_path, 2, image_size=64)
    S.synth_siim(tmp_path, 2, image_size=64)
    assert set(json.loads((tmp_path / S.INFO).read_text())) == {"rsna", "siim"}


def test_errors(tmp_path):
    assert sorted(S.WRITERS) == ["rsna", "siim"]
    with pytest.raises(CxrsalError, match="--n must be at least 1"):
        S.synth_rsna(tmp_path, 0)
    with pytest.raises(CxrsalError, match="rsna, siim"):
        S.synth("chexpert", tmp_path, 2)
    with pytest.raises(CxrsalError, match="image-size"):
        S.synth_siim(tmp_path, 2, image_size=16)
    with pytest.raises(CxrsalError, match="positive-fraction"):
        S.synth_siim(tmp_path, 2, image_size=64, positive_fraction=1.5)
    S.synth_siim(tmp_path, 2, image_size=64)
    with pytest.raises(CxrsalError, match="empty folder"):
        S.synth_siim(tmp_path, 2, image_size=64)
