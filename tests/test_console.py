"""Users see cxrsal's output, not TensorFlow's native log lines (cxrsal/console.py)."""

import re
import subprocess
import sys

from cxrsal.console import filter_native, is_native_log

# lines copied from a TensorFlow 2.21 run on a CPU machine (stderr of `cxrsal saliency`)
NATIVE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1795492271.723852   23872 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    b"GPU will not be used.",
    b"E0000 00:00:1795492273.314338   23872 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    b"Failed call to cuInit: UNKNOWN ERROR (303)",
    b"I0000 00:00:1795492677.641118   25599 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    b"available CPU instructions in performance-critical operations.",
    b"To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, "
    b"rebuild TensorFlow with the appropriate compiler flags.",
    # stderr of the first of two `cxrsal train` workers joined by TF_CONFIG
    b"/job:worker/replica:0/task:1",
]
OURS = [b"error: --model runs/x: not a `cxrsal train` run (no run.json)", b"grad: 12 maps in 1.8 s",
        b"E0000 is not a log line without its time stamp",
        b"/job:worker/replica:0/task:1 is a device our lines may name", b"  File \"cxrsal/x.py\", line 3, in f"]
ABSL = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+")


def test_native_lines_are_recognized_and_ours_are_not():
    assert all(is_native_log(line) for line in NATIVE)
    assert not any(is_native_log(line) for line in OURS)
    mixed = b"".join(line + b"\n" for pair in zip(NATIVE, OURS) for line in pair)

    class Keep(list):
        write = list.append

    keep = Keep()
    assert filter_native(mixed, keep) == b"".join(line + b"\n" for line in OURS)
    assert b"".join(keep) == b"".join(line + b"\n" for line in NATIVE[:len(OURS)])


def run_filtered(code):
    prelude = "from cxrsal.console import quiet_native_logs; quiet_native_logs()\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, timeout=300)


def test_descriptor_two_is_filtered_and_python_stderr_passes():
    # C++ writes to descriptor 2; Python's own messages go through sys.stderr
    code = ("import os, sys\n"
            + "".join("os.write(2, " + repr(line + b"\n") + ")\n" for line in NATIVE)
            + "os.write(2, b'a native line of ours\\n')\n"
            + "print('progress 1/2', file=sys.stderr)\n")
    r = run_filtered(code)
    assert r.returncode == 0
    text = r.stderr.decode()
    # the two streams reach the terminal independently (their order is not fixed): Python's
    # message whole, the non-log native line whole, nothing of the log lines
    assert text.count("progress 1/2") == 1
    assert text.replace("progress 1/2", "").split() == "a native line of ours".split()


def test_tensorflow_start_prints_no_native_line():
    r = run_filtered("import tensorflow as tf\nprint(int(tf.reduce_sum(tf.ones([3]))))\n")
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert r.stdout.decode().strip() == "3"
    assert not [line for line in r.stderr.decode().splitlines() if ABSL.match(line)], r.stderr.decode()[-2000:]


def test_verbose_flag_brings_tensorflow_lines_back():
    from cxrsal.cli.main import verbose_requested

    assert verbose_requested(["-v", "train", "--data", "x"]) and verbose_requested(["--verbose", "saliency"])
    assert not verbose_requested(["train", "-v"]) and not verbose_requested(["saliency", "--model", "-v"])
    assert not verbose_requested([])
    # the option is Click's too: accepted before a command, listed in the help
    out = subprocess.run([sys.executable, "-m", "cxrsal.cli", "-v", "evaluate", "--model", "/nonexistent"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "not a `cxrsal train` run" in out.stderr, out.stderr
    helped = subprocess.run([sys.executable, "-m", "cxrsal.cli", "--help"], capture_output=True, text=True)
    assert "-v, --verbose" in helped.stdout
