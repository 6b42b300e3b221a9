"""cxrsal.workers: independent jobs side by side in worker processes (the demo's scheduler)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from cxrsal.errors import CxrsalError
from cxrsal.workers import Job, critical_path, run_jobs


# jobs must be module-level functions: they are pickled to the spawned workers

def stamp(folder, name, seconds=0.0):
    """Write when this job ran and in which process; returns its name."""
    start = time.time()
    time.sleep(seconds)
    with open(os.path.join(folder, name), "w") as f:
        f.write(f"{start} {time.time()} {os.getpid()}")
    return name


def add(a, b):
    return a + b


def threads():
    import tensorflow as tf
    from tensorflow.python.framework import config    # the switch has no public getter

    return (tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads(),
            config.is_op_determinism_enabled())


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
    jobs = [Job("slow", stamp, (folder, "slow", 2.0), cost=3),
            Job("fast", stamp, (folder, "fast", 0.5), cost=1),
            Job("after", stamp, (folder, "after"), deps=("slow", "fast")),
            # its arguments come from the results of the jobs it waits for, computed here
            Job("sum", add, lambda r: (r["slow"], r["fast"]), deps=("slow", "fast"), local=True),
            Job("threads", threads)]
    results, times = run_jobs(jobs, 2, log=lambda event, job, s, r: events.append((event, job.name)))
    assert results["sum"] == "slowfast" and results["after"] == "after"
    # every TensorFlow job on one intra-op and one inter-op thread, whatever the number of workers,
    # with op determinism on from the worker's start (not only after a job that turns it on)
    assert results["threads"] == (1, 1, True)
    ran = {n: [float(v) for v in (tmp_path / n).read_text().split()] for n in ("slow", "fast", "after")}
    # the two independent jobs overlapped in two processes; the dependent one began after both
    assert ran["slow"][2] != ran["fast"][2]
    assert ran["fast"][0] < ran["slow"][1] and ran["slow"][0] < ran["fast"][1]
    assert ran["after"][0] >= max(ran["slow"][1], ran["fast"][1])
    # the costlier of two ready jobs first; every job told started (workers) and done
    assert events.index(("start", "slow")) < events.index(("start", "fast"))
    assert {n for e, n in events if e == "done"} == {j.name for j in jobs}
    assert {n for e, n in events if e == "start"} == {"slow", "fast", "after", "threads"}
    assert dict(times)["slow"] == pytest.approx(2.0, abs=0.5)


def test_a_refusal_stops_the_run_as_it_is(tmp_path):
    jobs = [Job("bad", refuse, ("--data x: no images",), cost=2), Job("later", stamp, (str(tmp_path), "later"),
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker through /proc and pgrep (Linux)")
def test_workers_die_with_the_process_that_started_them(tmp_path):
    # a parent SIGKILLed (as a killed demo) while its worker runs a long job: the worker must not
    # go on writing into the folder the rerun resumes
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_workers import stamp
        from cxrsal.workers import Job, run_jobs
        run_jobs([Job("long", stamp, ({str(tmp_path)!r}, "long", 60.0))], 1,
                 log=lambda e, j, s, r: print(e, flush=True))
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "start"
    worker = None
    deadline = time.time() + 60
    while worker is None and time.time() < deadline:     # the worker is the parent's child
        kids = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split()
        # the spawn machinery has a resource tracker too: the worker is the one running Python's spawn_main
        for pid in kids:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            if b"spawn_main" in cmd:
                worker = int(pid)
        time.sleep(0.2)
    assert worker is not None
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        if not alive(worker):
            break
        time.sleep(0.1)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its killed parent")
    assert not (tmp_path / "long").exists()
