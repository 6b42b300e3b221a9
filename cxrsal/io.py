"""Atomic file writes: a file appears whole under its final name or not at all."""

import contextlib
import os
import tempfile
from pathlib import Path


def _umask():
    """The process umask, read without changing it where Linux says it (/proc), else set and reset."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    On any exception (or a kill) the final name is untouched and the temporary file is removed
    when possible; a leftover `.tmp-*` file from a kill is never mistaken for a result.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # same suffix as the target: some writers (Keras' .keras, .weights.h5) insist on it
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", suffix="".join(path.suffixes[-2:]),
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file 0600: give it the mode a normal file gets under the user's umask,
        # so a colleague of the group can read a shared results folder
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path, data):
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def remove_stale_tmp(directory):
    """Delete temporary files left by a killed run in `directory` (not recursive)."""
    directory = Path(directory)
    if directory.is_dir():
        for p in directory.glob(".tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def write_frame(path, frame):
    """Write a pandas table atomically, as CSV or Parquet by the file's suffix."""
    with atomic_path(path) as tmp:
        if str(path).endswith(".parquet"):
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
