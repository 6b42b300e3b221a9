"""Users see cxrsal's output, not TensorFlow's native log lines.

TensorFlow's C++ runtime writes abseil-format lines straight to file descriptor 2
(`I0000 00:00:1795492677.641118   25599 cpu_feature_guard.cc:227] ...`, `E0000 ... cuInit ...`)
whatever `TF_CPP_MIN_LOG_LEVEL` says. `quiet_native_logs()` (called by the `cxrsal` command
before anything imports TensorFlow) keeps Python's `sys.stderr` on the terminal and routes
descriptor 2 through a filter that drops those lines and passes everything else through.
`cxrsal -v` or `CXRSAL_NATIVE_LOGS=show` turns the filter off; `CXRSAL_NATIVE_LOGS=FILE` appends
the dropped lines to FILE. TensorFlow's Python logger is set to errors only in the same stroke.
"""

import atexit
import io
import logging
import os
import re
import sys
import threading

# an abseil/glog line: severity, MMDD, time, thread id, file:line]
_ABSL = re.compile(rb"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+\s+[\w.\-/]+:\d+\] ")
# lines TensorFlow writes without that prefix: abseil's banner and the continuation of
# cpu_feature_guard's two-line message
_PLAIN = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
          b"To enable the following instructions:")


# a bare task name, written by the collective runtime of a multi-worker run's first worker
_TASK = re.compile(rb"^/job:\w+/replica:\d+/task:\d+$")


def is_native_log(line):
    """True for a line of TensorFlow's native logging (bytes, without its newline)."""
    return bool(_ABSL.match(line)) or line.startswith(_PLAIN) or bool(_TASK.match(line))


def filter_native(data, keep=None):
    """`data` (bytes of whole lines) without the native log lines; those go to `keep.write`."""
    out = []
    for line in data.splitlines(keepends=True):
        if is_native_log(line.rstrip(b"\r\n")):
            if keep is not None:
                keep.write(line)
        else:
            out.append(line)
    return b"".join(out)


def _not_retracing(record):
    """TensorFlow's Python warning that a tf.function was traced again: the saliency adapter
    traces once per batch shape (a group's last, smaller batch) on purpose."""
    return "triggered tf.function retracing" not in record.getMessage()


def quiet_python_logs():
    """TensorFlow's Python logger speaks of TensorFlow (retracing, deprecations): errors only;
    `cxrsal -v` shows it all."""
    logger = logging.getLogger("tensorflow")
    logger.addFilter(_not_retracing)      # added once however often this runs (logging's rule)
    logger.setLevel(logging.ERROR)


def quiet_native_logs():
    """Route descriptor 2 through `filter_native` for the rest of the process (idempotent)."""
    setting = os.environ.get("CXRSAL_NATIVE_LOGS", "")
    if setting == "show" or getattr(quiet_native_logs, "active", False):
        return
    quiet_python_logs()
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
    except (AttributeError, OSError, ValueError):
        return   # no real stderr (embedded, captured): nothing to filter
    keep = open(setting, "ab") if setting else None
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    # Python's own messages (click, tqdm, tracebacks) go to the terminal directly, unbuffered
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(terminal), "wb", buffering=0), encoding=sys.stderr.encoding,
                                  errors="backslashreplace", line_buffering=True, write_through=True)

    def pump():
        pending = b""
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            pending += chunk
            whole, _, pending = pending.rpartition(b"\n")
            if whole:
                passed = filter_native(whole + b"\n", keep)
                if passed:
                    os.write(terminal, passed)
        if pending and not is_native_log(pending):
            os.write(terminal, pending)
        os.close(read_end)
        if keep is not None:
            keep.close()

    thread = threading.Thread(target=pump, name="cxrsal-native-log-filter", daemon=True)
    thread.start()

    def restore():
        os.dup2(terminal, 2)     # closes the pipe's last write end: the pump reads EOF and ends
        thread.join(timeout=2)

    atexit.register(restore)
    quiet_native_logs.active = True


def bar_disabled(progress):
    """tqdm's `disable` for a command's `progress`: True shows the bars, False hides them, None
    (the default) shows them only when stderr is a terminal, so that in a log or a pipe stderr
    holds nothing but what the user must read (an error is its one line)."""
    return {True: False, False: True}.get(progress)
