"""Reading the Kaggle CSVs with row numbers, tolerant of stray spaces in headers and values."""

import csv

from ..errors import DataError


def read_rows(path, required):
    """Yield `(line_number, {column: stripped value})`; the header must name `required` columns.

    Column names are stripped, so SIIM's `ImageId, EncodedPixels` header gives `EncodedPixels`.
    """
    try:
        f = open(path, newline="")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror})") from None
    with f:
        reader = csv.reader(f)
        try:
            header = [h.strip().lstrip("\ufeff") for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: empty file, expected a header with {', '.join(required)}") from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not a CSV file ({e})") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(
                f"{path}: header lacks column(s) {', '.join(missing)}; found {', '.join(header)}"
            )
        try:
            for row in reader:
                if not any(v.strip() for v in row):
                    continue
                values = dict(zip(header, (v.strip() for v in row)))
                yield reader.line_num, values
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"{path} line {reader.line_num}: not valid CSV ({e})") from None
