"""Read a DICOM radiograph into a float32 array in [0, 1] where bright means dense."""

import numpy as np

from ..errors import DicomReadError


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
