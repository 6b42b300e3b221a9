"""DICOM reading on pydicom's bundled files and on generated JPEG / MONOCHROME1 / 12-bit files."""

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from cxrsal.data.dicom import read_image
from cxrsal.data.dicom import write_dicom
from cxrsal.errors import DicomReadError

# bundled with pydicom (no download): signed 16-bit CT with a rescale, MR, JPEG-LS, JPEG 2000,
# and an 8-bit JPEG Baseline (RGB) file
BUNDLED = ["CT_small.dcm", "MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm", "JPEG2000.dcm",
           "SC_jpeg_no_color_transform.dcm"]


def reference(path):
    """Independent reference: pydicom's modality LUT, range of the stored bits, MONOCHROME1 inverted."""
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    if ds.SamplesPerPixel > 1:
        arr = arr.mean(-1)
    values = apply_modality_lut(arr, ds).astype(np.float64)
    bits = ds.BitsStored
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if ds.PixelRepresentation else (0, 2**bits - 1)
    slope, intercept = float(getattr(ds, "RescaleSlope", 1)), float(getattr(ds, "RescaleIntercept", 0))
    lo, hi = lo * slope + intercept, hi * slope + intercept
    out = (values - lo) / (hi - lo)
    return 1 - out if ds.PhotometricInterpretation == "MONOCHROME1" else out


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_files(name):
    path = get_testdata_file(name)
    image = read_image(path)
    assert image.dtype == np.float32 and image.ndim == 2
    assert 0.0 <= image.min() and image.max() <= 1.0
    np.testing.assert_allclose(image, reference(path), atol=1e-6)


def test_ct_rescale_is_applied():
    # CT_small: signed 16-bit with RescaleSlope 1, Intercept -1024 (pydicom's test data)
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    assert ds.RescaleIntercept == -1024 and ds.PixelRepresentation == 1
    raw = ds.pixel_array.astype(np.float64)
    expected = (raw - 1024 - (-32768 - 1024)) / 65535.0
    np.testing.assert_allclose(read_image(path), expected, atol=1e-6)


def gradient(h=64, w=48, dtype=np.uint8, top=255):
    y, x = np.mgrid[0:h, 0:w]
    return ((x + 2 * y) * top / (w - 1 + 2 * (h - 1))).astype(dtype)


def test_uncompressed_8bit_exact(tmp_path):
    px = gradient()
    write_dicom(tmp_path / "a.dcm", px)
    np.testing.assert_allclose(read_image(tmp_path / "a.dcm"), px / 255.0, atol=1e-7)


def test_jpeg_baseline_decodes(tmp_path):
    px = gradient()
    write_dicom(tmp_path / "j.dcm", px, jpeg=True)
    ds = pydicom.dcmread(tmp_path / "j.dcm")
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    image = read_image(tmp_path / "j.dcm")
    # lossy at quality 95: a smooth gradient comes back within a few grey levels
    assert np.abs(image - px / 255.0).max() < 4 / 255


def test_monochrome1_is_inverted(tmp_path):
    px = gradient()
    write_dicom(tmp_path / "m1.dcm", 255 - px, photometric="MONOCHROME1")
    write_dicom(tmp_path / "m2.dcm", px)
    np.testing.assert_allclose(read_image(tmp_path / "m1.dcm"), read_image(tmp_path / "m2.dcm"), atol=1e-7)


def test_monochrome1_jpeg(tmp_path):
    px = gradient()
    write_dicom(tmp_path / "m1j.dcm", 255 - px, photometric="MONOCHROME1", jpeg=True)
    assert np.abs(read_image(tmp_path / "m1j.dcm") - px / 255.0).max() < 4 / 255


def test_12bit_with_rescale(tmp_path):
    px = gradient(dtype=np.uint16, top=4095)
    write_dicom(tmp_path / "r.dcm", px, bits_stored=12, rescale=(2.0, -100.0))
    # values v*2-100 over the range [-100, 4095*2-100]: the rescale cancels out
    np.testing.assert_allclose(read_image(tmp_path / "r.dcm"), px / 4095.0, atol=1e-6)


def test_non_square_any_size(tmp_path):
    px = gradient(h=37, w=91)
    write_dicom(tmp_path / "ns.dcm", px)
    assert read_image(tmp_path / "ns.dcm").shape == (37, 91)


def test_bad_files(tmp_path):
    with pytest.raises(DicomReadError, match="file not found"):
        read_image(tmp_path / "missing.dcm")
    (tmp_path / "text.dcm").write_text("this is not a DICOM file\n" * 20)
    with pytest.raises(DicomReadError, match="not a DICOM file") as err:
        read_image(tmp_path / "text.dcm")
    assert str(tmp_path / "text.dcm") in str(err.value)
    write_dicom(tmp_path / "full.dcm", gradient(128, 128))
    data = (tmp_path / "full.dcm").read_bytes()
    (tmp_path / "trunc.dcm").write_bytes(data[: len(data) - 5000])
    with pytest.raises(DicomReadError, match="trunc.dcm"):
        read_image(tmp_path / "trunc.dcm")
    (tmp_path / "head.dcm").write_bytes(data[:200])
    with pytest.raises(DicomReadError, match="head.dcm"):
        read_image(tmp_path / "head.dcm")
