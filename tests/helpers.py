"""Fault injection: real SIGKILLs of a real `cxrsal` process, then the rerun to the end.

A process is killed at chosen write points through the test-only environment hook of
`cxrsal.files` (KILL_AT_ENV: "N:PHASE" kills at the first write point of PHASE from the N-th on, so
a kill lands while a temporary file is empty ("open"), complete but not renamed ("written"), or
just after a final name appeared ("renamed")), or after a delay, wherever the process is. Each
killed run resumes the previous one's folder; the last run goes to the end and must succeed.
The tests then compare every output with an uninterrupted run.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxrsal.files import KILL_AT_ENV, WRITE_LOG_ENV

PHASES = ("written", "open", "renamed")
TIMEOUT_S = 900


def command(args):
    return [sys.executable, "-m", "cxrsal.cli", *map(str, args)]


def environment(kill_at=None, write_log=None):
    env = {k: v for k, v in os.environ.items() if k not in (KILL_AT_ENV, WRITE_LOG_ENV)}
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    if write_log:
        env[WRITE_LOG_ENV] = str(write_log)
    return env


def run(args, *, kill_at=None, write_log=None, after_s=None):
    """Run `args` in a session of its own (SIGKILLed after `after_s` seconds when given); when it
    ends, whatever it left running (a killed job's pool workers) is killed with its group. Output
    goes through files: an orphaned worker holding a pipe open cannot make the wait hang."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command(args), env=environment(kill_at, write_log), stdout=out, stderr=err, text=True,
                                start_new_session=True)
        try:
            if after_s is not None:
                try:
                    proc.wait(timeout=after_s)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=TIMEOUT_S)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())


@dataclass
class WritePoint:
    n: int
    phase: str
    path: str


NATIVE = re.compile(r"^[IWEF]\d{4} ")        # a TensorFlow C++ log line (I0000 ..., E0000 ...)


def reference(args, log_file):
    """Run `args` to the end, uninterrupted, logging its write points; returns them. Its stderr
    must hold none of TensorFlow's native log lines and no TensorFlow warning."""
    log_file = Path(log_file)
    log_file.unlink(missing_ok=True)
    done = run(args, write_log=log_file)
    assert done.returncode == 0, f"{args[0]}: {done.stderr}"
    noise = [line for line in done.stderr.splitlines() if NATIVE.match(line) or "WARNING:tensorflow" in line]
    assert not noise, f"{args[0]} printed TensorFlow's log lines: {noise[:3]}"
    points = []
    for line in log_file.read_text().splitlines():
        n, phase, path = line.split("\t")
        points.append(WritePoint(int(n), phase, path))
    assert points, f"{args[0]} wrote nothing through the atomic writer"
    return points


@dataclass
class Kills:
    """What a chain of killed runs did: the kill specifications, and the stderr of the final run."""
    specs: list = field(default_factory=list)
    delays: list = field(default_factory=list)
    final_stderr: str = ""

    def __len__(self):
        return len(self.specs) + len(self.delays)


def spread(total, kills):
    """`kills` write points spread evenly over a run of `total` points."""
    return [max(1, round(total * (i + 1) / (kills + 1))) for i in range(kills)]


def kill_chain(args, targets, *, delays=()):
    """Kill `args` once after each delay in `delays` (seconds after the start, wherever it is),
    then at each write point of `targets` (numbers in an uninterrupted run's count), each kill in
    a rerun of the previous run's folder; then run it to the end. Every kill must happen."""
    kills = Kills()
    for delay in delays:
        r = run(args, after_s=delay)
        assert r.returncode == -signal.SIGKILL, f"{args[0]} finished within {delay} s: no kill by time"
        kills.delays.append(delay)
    done = 0
    specs = []
    for i, target in enumerate(sorted(targets)):
        # a rerun counts its write points from 1 and first redoes a little (its config, the last
        # unfinished item): the next kill comes `target - done` points into it
        specs.append(f"{max(1, target - done)}:{PHASES[i % len(PHASES)]}")
        done = target
    return kill_specs(args, specs, kills)


def kill_specs(args, specs, kills=None):
    """Kill `args` at each write point spec ("N[:PHASE[:TEXT]]", see cxrsal.files) in turn, each in
    a rerun of the previous run's folder; then run it to the end. Every kill must happen."""
    kills = Kills() if kills is None else kills
    for spec in specs:
        r = run(args, kill_at=spec)
        assert r.returncode == -signal.SIGKILL, (f"{args[0]}: expected a kill at write point {spec}, "
                                                 f"got exit code {r.returncode}: {r.stderr[-2000:]}")
        kills.specs.append(spec)
    final = run(args)
    assert final.returncode == 0, f"{args[0]} after {kills.specs}: {final.stderr[-3000:]}"
    kills.final_stderr = final.stderr
    return kills


def no_temporary_files(folder):
    left = sorted(str(p) for p in Path(folder).rglob(".tmp-*"))
    assert not left, f"temporary files left behind: {left[:5]}"


def assert_same_tables(a, b, names, *, drop=()):
    """The CSV tables `names` under folders `a` and `b` are equal (columns `drop` ignored)."""
    for name in names:
        x, y = (pd.read_csv(Path(d) / name, keep_default_na=False).drop(columns=list(drop), errors="ignore")
                for d in (a, b))
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)


def assert_same_map_files(a, b):
    """Every map file (`.npz`) under `a` has its twin under `b` with bit-equal arrays, and no other."""
    a, b = Path(a), Path(b)
    files = sorted(p.relative_to(a) for p in a.rglob("*.npz"))
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*.npz")), "different map files"
    for rel in files:
        with np.load(a / rel) as x, np.load(b / rel) as y:
            assert sorted(x.files) == sorted(y.files), rel
            for key in x.files:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"{rel}:{key}")


def assert_same_weights(a, b, which=("last", "best")):
    import cxrsal.baselines  # noqa: F401  (registers the U-Net and RetinaNet tasks)
    from cxrsal.runs import Run

    for w in which:
        for x, y in zip(Run(a).model(w).get_weights(), Run(b).model(w).get_weights(), strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"{w} checkpoint")
