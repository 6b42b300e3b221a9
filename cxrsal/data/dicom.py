"""DICOM radiographs: `read_image` decodes one into a float32 array in [0, 1] where bright means
dense; `write_dicom` writes one (the synthetic data sets, the tests)."""

import hashlib
from pathlib import Path

import numpy as np

from ..errors import CxrsalError, DicomReadError
from ..files import atomic_path

CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


def _stored_range(ds):
    bits = int(getattr(ds, "BitsStored", 0) or getattr(ds, "BitsAllocated", 8))
    if int(getattr(ds, "PixelRepresentation", 0)) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def read_image(path):
    """Decode `path` to a 2-D float32 array in [0, 1].

    Rescale Slope/Intercept are applied, the values are scaled from the range the stored bit
    depth allows, and MONOCHROME1 images are inverted so that bright means dense everywhere.
    JPEG-compressed files (SIIM-ACR) decode through the pylibjpeg plugin. Multi-frame files
    give their first frame; colour images are averaged to grey.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except FileNotFoundError:
        raise DicomReadError(path, "file not found") from None
    except IsADirectoryError:
        raise DicomReadError(path, "is a directory, not a DICOM file") from None
    except InvalidDicomError as e:
        raise DicomReadError(path, f"not a DICOM file ({e})") from None
    except Exception as e:
        raise DicomReadError(path, f"unreadable DICOM ({type(e).__name__}: {e})") from None
    if "PixelData" not in ds:
        raise DicomReadError(path, "has no pixel data (truncated, or not an image)")
    try:
        pixels = ds.pixel_array
    except Exception as e:  # truncated data, missing decoder, bad encapsulation
        raise DicomReadError(path, f"cannot decode pixel data ({type(e).__name__}: {e})") from None

    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        pixels = pixels[0]
    if int(getattr(ds, "SamplesPerPixel", 1)) > 1:
        pixels = pixels.mean(axis=-1)
    if pixels.ndim != 2:
        raise DicomReadError(path, f"expected a 2-D image, got pixel array of shape {pixels.shape}")

    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    lo, hi = _stored_range(ds)
    lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
    values = pixels.astype(np.float64) * slope + intercept
    image = np.clip((values - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    if str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).strip() == "MONOCHROME1":
        image = 1.0 - image
    return image


def write_dicom(
    path,
    pixels,
    *,
    photometric="MONOCHROME2",
    jpeg=False,
    patient_id="anon",
    sop_instance_uid=None,
    study_uid=None,
    series_uid=None,
    rescale=None,
    bits_stored=None,
    header=None,
):
    """Write a single-frame CR DICOM file atomically.

    Parameters
    ----------
    path : str or Path
    pixels : ndarray, 2-D uint8 or uint16
        Stored values, written as given (for MONOCHROME1 pass values already inverted).
    photometric : {"MONOCHROME2", "MONOCHROME1"}
    jpeg : bool
        JPEG Baseline (1.2.840.10008.1.2.4.50), 8-bit pixels only; otherwise Explicit VR
        Little Endian, uncompressed.
    patient_id, sop_instance_uid, study_uid, series_uid : str
        UIDs left as None are derived from the patient id and the pixels (reproducible).
    rescale : (slope, intercept) or None
        Written as RescaleSlope / RescaleIntercept.
    bits_stored : int or None
        None: 8 for uint8, 16 for uint16.
    header : dict or None
        Further attributes by DICOM keyword (e.g. ``{"ViewPosition": "AP"}``), applied last.

    Examples
    --------
    >>> write_dicom("a.dcm", np.zeros((4, 4), np.uint8))  # doctest: +SKIP
    """
    import cv2
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.dtype not in (np.uint8, np.uint16):
        raise CxrsalError(
            f"{path}: pixels must be a 2-D uint8 or uint16 array, "
            f"got {pixels.dtype} {pixels.shape}"
        )
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise CxrsalError(
            f"{path}: photometric must be MONOCHROME1 or MONOCHROME2, got {photometric!r}"
        )
    allocated = pixels.dtype.itemsize * 8
    if bits_stored is None:
        bits_stored = allocated
    if not allocated // 2 < bits_stored <= allocated:
        raise CxrsalError(f"{path}: bits_stored {bits_stored} does not fit {pixels.dtype} pixels")
    if pixels.size and int(pixels.max()) >= 2**bits_stored:
        raise CxrsalError(
            f"{path}: pixel value {int(pixels.max())} exceeds bits_stored {bits_stored}"
        )
    if jpeg and allocated != 8:
        raise CxrsalError(
            f"{path}: JPEG Baseline holds 8-bit pixels only; pass uint8 or jpeg=False"
        )

    digest = hashlib.sha256(pixels.tobytes()).hexdigest()
    derived = lambda what: generate_uid(entropy_srcs=[str(patient_id), digest, what])  # noqa: E731
    study_uid = study_uid or derived("study")
    series_uid = series_uid or derived("series")
    sop_instance_uid = sop_instance_uid or derived("sop")
    rows, cols = pixels.shape
    spacing = f"{0.143 * 1024 / max(rows, cols):.6g}"  # ~0.14 mm at 1024 px, as on Kaggle films

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CR_IMAGE_STORAGE)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyDate = "19010101"
    ds.StudyTime = "000000.00"
    ds.AccessionNumber = ""
    ds.Modality = "CR"
    ds.ConversionType = "WSD"
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = "view: PA"
    ds.PatientName = str(patient_id)
    ds.PatientID = str(patient_id)
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [spacing, spacing]
    ds.BitsAllocated = allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if rescale is not None:
        slope, intercept = rescale
        ds.RescaleIntercept = f"{float(intercept):g}"
        ds.RescaleSlope = f"{float(slope):g}"
        ds.RescaleType = "US"
    if jpeg:
        ok, buf = cv2.imencode(
            ".jpg", np.ascontiguousarray(pixels), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        if not ok:
            raise CxrsalError(f"{path}: JPEG encoding failed")
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = encapsulate([buf.tobytes()])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
        ds["PixelData"].VR = "OB" if allocated == 8 else "OW"
    for keyword, value in (header or {}).items():
        if pydicom.datadict.tag_for_keyword(keyword) is None:
            raise CxrsalError(f"{path}: unknown DICOM keyword {keyword!r} in header")
        setattr(ds, keyword, value)

    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return Path(path)
