"""Atomic file writes (a file appears whole under its final name or not at all), and reads of
the files cxrsal wrote that name the file and how to recreate it when one is missing or damaged."""

import contextlib
import errno
import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from .errors import CxrsalError

# Fault injection, for the tests only (tests/helpers.py): every atomic write passes three write
# points ("open": the temporary file exists, empty; "written": it is complete but not yet renamed;
# "renamed": the final name is in place). WHERE = "N[:PHASE[:TEXT]]" names the first write point,
# from the process's N-th on, of that phase on a path holding TEXT. KILL_AT_ENV=WHERE: the
# process SIGKILLs itself there (a pool worker, its parent first, and the command's first process:
# a worker's worker takes the whole command down); FAIL_AT_ENV=WHERE: the write
# fails there with OSError(ENOSPC), as on a full disk ("open" or "written" only);
# WRITE_LOG_ENV=FILE: each point is appended to FILE.
KILL_AT_ENV = "CXRSAL_TEST_KILL_AT"
FAIL_AT_ENV = "CXRSAL_TEST_FAIL_AT"
WRITE_LOG_ENV = "CXRSAL_TEST_WRITE_LOG"
# the command's first process, which every process it starts inherits (fault injection only)
KILL_ROOT_ENV = "CXRSAL_TEST_KILL_ROOT"
if os.environ.get(KILL_AT_ENV) and not os.environ.get(KILL_ROOT_ENV):
    os.environ[KILL_ROOT_ENV] = str(os.getpid())
_points = {"n": 0}
_points_lock = threading.Lock()


def _at(spec, n, phase, path):
    at, _, rest = spec.partition(":")
    at_phase, _, fragment = rest.partition(":")
    return n >= int(at) and at_phase in ("", phase) and fragment in str(path)


def _write_point(phase, path):
    kill_at, fail_at, write_log = (os.environ.get(k) for k in (KILL_AT_ENV, FAIL_AT_ENV, WRITE_LOG_ENV))
    if not (kill_at or fail_at or write_log):
        return
    with _points_lock:
        _points["n"] += 1
        n = _points["n"]
        if write_log:
            with open(write_log, "a") as f:
                f.write(f"{n}\t{phase}\t{path}\n")
        if kill_at and _at(kill_at, n, phase, path):
            import multiprocessing

            if multiprocessing.parent_process() is not None:    # a worker of a pool: the job dies
                os.kill(os.getppid(), signal.SIGKILL)
                root = int(os.environ.get(KILL_ROOT_ENV) or 0)
                if root and root not in (os.getpid(), os.getppid()):
                    os.kill(root, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
        if fail_at and _at(fail_at, n, phase, path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


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
def file_lock(path):
    """An exclusive advisory lock on `path` (created if needed) for a read-modify-write of a file
    that several processes update (POSIX `flock`; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:      # Windows
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# what np.load raises for a damaged or foreign file (truncated, not an archive, keys missing)
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def _host():
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())


def _owner_tag():
    """`@host@pid@`: which process owns a temporary file, so a cleanup never removes the file of a
    live process (shards of one run may write into one folder, from one host or several)."""
    return f"@{_host()}@{os.getpid()}@"


_TAG = re.compile(r"@(?P<host>[A-Za-z0-9_-]*)@(?P<pid>[0-9]+)@")
STALE_AFTER_S = 24 * 3600     # a temporary file of another host older than this is abandoned


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    On any exception (or a kill) the final name is untouched and the temporary file is removed
    when possible; a leftover `.tmp-*` file from a kill is never mistaken for a result, and
    `remove_stale_tmp` deletes it once its process is gone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # same suffix as the target: some writers (Keras' .keras, .weights.h5) insist on it
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.{_owner_tag()}", suffix="".join(path.suffixes[-2:]),
                               dir=path.parent)
    os.close(fd)
    try:
        _write_point("open", path)
        yield Path(tmp)
        _write_point("written", path)
        # mkstemp makes the file 0600: give it the mode a normal file gets under the user's umask,
        # so a colleague of the group can read a shared results folder
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename in (None, tmp):
            e.filename = str(path)      # the user's file, not our temporary name for it
        raise
    _write_point("renamed", path)


def atomic_write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path, data):
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:     # another user's live process
        return True
    return True


def _abandoned(p, host, now):
    m = _TAG.search(p.name)
    if m is None:      # written before files carried their owner
        return True
    if m["host"] == host:
        return int(m["pid"]) != os.getpid() and not _alive(int(m["pid"]))
    try:
        return now - p.stat().st_mtime > STALE_AFTER_S
    except FileNotFoundError:
        return False


def remove_stale_tmp(directory, *, recursive=False):
    """Delete the temporary files that killed runs left in `directory` (and below it when
    `recursive`); files of live processes, this one included, are kept."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    host, now = _host(), time.time()
    for p in (directory.rglob if recursive else directory.glob)(".tmp-*"):
        if p.is_file() and _abandoned(p, host, now):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def write_frame(path, frame):
    """Write a pandas table atomically, as CSV or Parquet by the file's suffix."""
    with atomic_path(path) as tmp:
        if str(path).endswith(".parquet"):
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)


def _unreadable(path, problem, remedy):
    return CxrsalError(f"{path}: {problem}" + (f"; {remedy}" if remedy else ""))


def read_json(path, *, keys=(), remedy=""):
    """The JSON object of a file cxrsal wrote; one line (CxrsalError) naming the file, what is
    wrong and `remedy` (how to recreate it) when it is missing, cut short, not an object or
    lacks one of `keys`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise _unreadable(path, "missing", remedy) from None
    except (OSError, UnicodeDecodeError) as e:
        raise _unreadable(path, f"cannot be read ({getattr(e, 'strerror', None) or e})", remedy) from None
    try:
        data = json.loads(text)
    except ValueError as e:
        where = f" at line {e.lineno}" if hasattr(e, "lineno") else ""
        raise _unreadable(path, f"damaged (not valid JSON{where}: {getattr(e, 'msg', e)})", remedy) from None
    if not isinstance(data, dict):
        raise _unreadable(path, "damaged (not a JSON object)", remedy)
    missing = [k for k in keys if k not in data]
    if missing:
        raise _unreadable(path, f"damaged (no {', '.join(missing)})", remedy)
    return data


def read_table(path, columns=(), *, remedy=""):
    """A CSV cxrsal wrote, as a pandas frame; one line naming the file, the problem and `remedy`
    when it is missing, unreadable or lacks one of `columns`. A file written from no rows reads
    as an empty frame (then `columns` are not required)."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise _unreadable(path, "missing", remedy) from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=list(columns))
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise _unreadable(path, f"damaged ({first[:160]})", remedy) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing and len(frame.columns):
        raise _unreadable(path, f"damaged (no column {', '.join(missing)})", remedy)
    return frame
