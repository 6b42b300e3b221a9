"""cxrsal.workers: independent jobs side by side in worker processes (the demo's scheduler).

Nothing here is timed: jobs prove they ran at the same time, or one after another, through the
files they write and wait for, and the scheduler's order through its event log."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cxrsal.errors import CxrsalError
from cxrsal.workers import Job, critical_path, run_jobs
from helpers import wait_for, wait_until


# jobs must be module-level functions: they are pickled to the spawned workers

def meet(folder, name, other):
    """Say `name` has begun (a file), wait until job `other` has begun too, then say `name` is
    done; returns this worker's process id. Two such jobs waiting for each other both end only
    if they ran at the same time: in one process, one after the other, the first would wait for
    ever (and fail at `wait_for`'s limit)."""
    folder = Path(folder)
    (folder / f"{name}.begun").write_text(str(os.getpid()))
    wait_for(folder / f"{other}.begun")
    (folder / f"{name}.done").write_text(str(os.getpid()))
    return os.getpid()


def look(folder):
    """What a job sees of its folder when it starts: the files there, sorted."""
    return sorted(p.name for p in Path(folder).iterdir())


def add(a, b):
    return a + b


def threads():
    import tensorflow as tf
    from tensorflow.python.framework import config    # the switch has no public getter

    return (tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads(),
            config.is_op_determinism_enabled())


def touch(folder, name):
    Path(folder, name).write_text(name)
    return name


def refuse(text):
    raise CxrsalError(text)


def die():
    os._exit(3)


def test_critical_path_is_cost_plus_the_longest_chain_after():
    # a(1) -> b(5) -> d(1); a -> c(2) -> d; e(4) alone: by hand, d 1, b 6, c 3, a 1 + 6, e 4
    jobs = critical_path([Job("a", add, cost=1), Job("b", add, deps=("a",), cost=5), Job("c", add, deps=("a",), cost=2),
                          Job("d", add, deps=("b", "c"), cost=1), Job("e", add, cost=4)])
    assert {j.name: j.priority for j in jobs} == {"a": 7, "b": 6, "c": 3, "d": 1, "e": 4}
    with pytest.raises(ValueError, match="unknown job 'x'"):
        critical_path([Job("a", add, deps=("x",))])
    with pytest.raises(ValueError, match="cycle"):
        critical_path([Job("a", add, deps=("b",)), Job("b", add, deps=("a",))])


def test_jobs_run_side_by_side_after_their_dependencies(tmp_path):
    folder = str(tmp_path)
    events = []
    jobs = [Job("ping", meet, (folder, "ping", "pong"), cost=3),
            Job("pong", meet, (folder, "pong", "ping"), cost=1),
            Job("after", look, (folder,), deps=("ping", "pong")),
            # its arguments come from the results of the jobs it waits for, computed here
            Job("pids", add, lambda r: ((r["ping"],), (r["pong"],)), deps=("ping", "pong"), local=True),
            Job("threads", threads)]
    results, times = run_jobs(jobs, 2, log=lambda event, job, s, r: events.append((event, job.name)))
    # ping and pong each waited until the other had begun: they ran at the same time, in two processes
    ping, pong = results["pids"]
    assert ping != pong
    assert (tmp_path / "ping.done").read_text() == str(ping) and (tmp_path / "pong.done").read_text() == str(pong)
    # the dependent job started after both had finished: it saw the files they wrote last
    assert {"ping.done", "pong.done"} <= set(results["after"])
    # every TensorFlow job on one intra-op and one inter-op thread, whatever the number of workers,
    # with op determinism on from the worker's start (not only after a job that turns it on)
    assert results["threads"] == (1, 1, True)
    # the scheduler's own order: the costlier of two ready jobs first; a job starts after every
    # job it depends on is done; every job told started (workers) and done
    at = {e: i for i, e in enumerate(events)}
    assert at["start", "ping"] < at["start", "pong"]
    for job in ("after", "pids"):
        first = at["start", job] if job == "after" else at["done", job]
        assert at["done", "ping"] < first and at["done", "pong"] < first, events
    assert sorted(n for e, n in events if e == "done") == sorted(j.name for j in jobs)
    assert sorted(n for e, n in events if e == "start") == ["after", "ping", "pong", "threads"]
    # the times come back in the order the jobs finished
    assert [n for n, _ in times] == [n for e, n in events if e == "done"]


def test_a_refusal_stops_the_run_as_it_is(tmp_path):
    jobs = [Job("bad", refuse, ("--data x: no images",), cost=2), Job("later", touch, (str(tmp_path), "later"),
                                                                        deps=("bad",))]
    with pytest.raises(CxrsalError, match="^--data x: no images$"):
        run_jobs(jobs, 1, log=lambda *a: None)
    assert not (tmp_path / "later").exists()


def test_a_worker_that_dies_is_one_line_naming_its_job():
    with pytest.raises(CxrsalError, match="a worker process died while running 'crash'.*run the same command again"):
        run_jobs([Job("crash", die)], 1, log=lambda *a: None)


def alive(pid):
    """Running (a zombie, dead but not yet reaped by its new parent, is not)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the worker's state in /proc (Linux)")
def test_workers_die_with_the_process_that_started_them(tmp_path):
    # a parent SIGKILLed (as a killed demo) while its worker runs a job: the worker must not go
    # on writing into the folder the rerun resumes. The job (helpers.hold) says its process id,
    # then waits for a release file before it writes its output.
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from helpers import hold
        from cxrsal.workers import Job, run_jobs
        run_jobs([Job("long", hold, ({str(tmp_path)!r}, "long"))], 1, log=lambda e, j, s, r: None)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_for(tmp_path / "long.pid")
        worker = int((tmp_path / "long.pid").read_text())
        assert worker != parent.pid and alive(worker)
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    try:
        wait_until(lambda: not alive(worker), "the worker outlived its killed parent", limit_s=120)
    finally:
        if alive(worker):
            os.kill(worker, signal.SIGKILL)
    # released now: a worker still alive would write its output
    (tmp_path / "long.release").write_text("")
    assert not (tmp_path / "long").exists()
