"""User-facing errors: each carries one line naming the file, row or option and what to do."""


class CxrsalError(Exception):
    """A mistake in the user's input; the CLI prints its message as one line, no traceback."""


class ConfigError(CxrsalError):
    """Unknown key, bad value or unparsable override in a configuration."""


class DataError(CxrsalError):
    """A data file, row or item that cannot be used."""


class ImageReadError(DataError):
    """An image file that is missing, truncated or cannot be decoded."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class DicomReadError(ImageReadError):
    """A file that is missing, truncated or not a readable DICOM image."""


class RLEError(DataError):
    """A malformed SIIM run-length string."""

    def __init__(self, image_id, reason):
        self.image_id = image_id
        self.reason = reason
        where = f"ImageId {image_id}" if image_id is not None else "RLE string"
        super().__init__(f"{where}: malformed EncodedPixels: {reason}")
