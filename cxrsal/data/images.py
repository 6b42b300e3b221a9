"""Reading any radiograph file: DICOM, PNG or JPEG, 8 or 16 bit, grey or colour, to [0, 1] grey."""

from pathlib import Path

import numpy as np

from ..errors import ImageReadError
from .dicom import read_image as read_dicom

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
SUFFIXES = (".dcm", *RASTER_SUFFIXES)
# ITU-R BT.601 luma, in OpenCV's channel order (blue, green, red)
LUMA_BGR = np.array([0.114, 0.587, 0.299])


def read_raster(path):
    """A PNG or JPEG file as a 2-D float32 array in [0, 1]: 8-bit values / 255, 16-bit / 65535;
    colour (BGR, alpha dropped) to grey by BT.601 luma."""
    import cv2

    path = Path(path)
    try:
        data = np.fromfile(path, np.uint8)
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a directory, not an image") from None
    except OSError as e:
        raise ImageReadError(path, f"cannot be read ({e.strerror})") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ImageReadError(path, f"not a readable {path.suffix.lstrip('.').upper()} image (truncated or another format)")
    if image.dtype == np.uint8:
        scale = 255.0
    elif image.dtype == np.uint16:
        scale = 65535.0
    else:
        raise ImageReadError(path, f"{image.dtype} pixels; expected 8- or 16-bit integers")
    if image.ndim == 3:
        channels = image.shape[2]
        if channels == 2:          # grey + alpha
            image = image[..., 0]
        elif channels >= 3:        # BGR or BGRA
            image = image[..., :3].astype(np.float64) @ LUMA_BGR
        else:
            image = image[..., 0]
    return (np.asarray(image, np.float64) / scale).astype(np.float32)


def read_any(path):
    """Decode a DICOM (`.dcm`, or any suffix not a raster one), PNG or JPEG file to [0, 1] grey."""
    if Path(path).suffix.lower() in RASTER_SUFFIXES:
        return read_raster(path)
    return read_dicom(path)
