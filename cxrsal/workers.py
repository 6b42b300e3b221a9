"""Independent jobs of one pipeline run side by side in worker processes (`cxrsal demo`).

Why processes: on a 2-core CPU a small model's training is bound by Python (tracing Keras'
`train_step`, on one core), so one process keeps about one core busy; two processes of one
TensorFlow thread each train two models side by side in about the time of one
(`python benchmarks/demo_workers.py` measures the demo on one worker and on several).

Every worker runs TensorFlow with one intra-op and one inter-op thread, so a job's floats do not
depend on how many workers there are or which one ran it: `--jobs 1` and `--jobs 8` give the same
tables. A job is a module-level function (it is pickled to the worker) whose arguments may be
computed, in this process, from the results of the jobs it depends on. Jobs start in the order of
their critical path (their own estimated cost plus the longest chain after them).

A worker dies with the process that started it (a killed run leaves no worker writing into the
folder its rerun resumes); Ctrl-C stops every worker.
"""

import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Callable

from .console import quiet_python_logs
from .errors import CxrsalError


@dataclass
class Job:
    """One unit of work. `args`: a tuple, or a function of {job name: result} of the finished
    jobs giving it (called here, when the job starts). `cost`: its estimated seconds (for the
    order only). `local`: run in this process (cheap bookkeeping: no TensorFlow)."""

    name: str
    fn: Callable
    args: object = ()
    deps: tuple = ()
    cost: float = 1.0
    local: bool = False
    priority: float = field(default=0.0, init=False)


def default_workers():
    """The CPUs this process may use (its affinity, not the machine's count), at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def critical_path(jobs):
    """Each job's priority: its cost plus the costliest chain of jobs that wait for it."""
    by_name = {j.name: j for j in jobs}
    for j in jobs:
        for d in j.deps:
            if d not in by_name:
                raise ValueError(f"job {j.name!r} depends on unknown job {d!r}")
    after = {j.name: [k for k in jobs if j.name in k.deps] for j in jobs}
    memo = {}

    def level(name, seen=()):
        if name in seen:
            raise ValueError(f"jobs depend on each other in a cycle through {name!r}")
        if name not in memo:
            memo[name] = by_name[name].cost + max((level(k.name, (*seen, name)) for k in after[name]), default=0.0)
        return memo[name]

    for j in jobs:
        j.priority = level(j.name)
    return jobs


def _die_with_parent(parent):
    """This process ends when `parent` does (Linux: the kernel's parent-death signal; elsewhere a
    thread watching for the orphaning)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:     # PR_SET_PDEATHSIG
            if os.getppid() != parent:                       # the parent died before prctl
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="cxrsal-parent-watch", daemon=True).start()


def _init_worker(parent, threads, deterministic):
    # Ctrl-C reaches the whole process group: the parent decides, its workers do not print tracebacks
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    # native log lines go through the parent's filter (descriptor 2 is inherited); Python's here
    quiet_python_logs()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    if deterministic:
        # in every worker from its start: a job that turns it on (training) would otherwise leave
        # it on for the worker's later jobs only, and which worker runs a job is chance
        tf.config.experimental.enable_op_determinism()
    for gpu in tf.config.list_physical_devices("GPU"):     # workers share a GPU: no one takes it all
        tf.config.experimental.set_memory_growth(gpu, True)


def _run_in_worker(fn, args):
    import gc

    import keras

    # no graphs, layer-name counters or Keras seeds left by the worker's last job (process-wide
    # settings are made once, in `_init_worker`, for every job alike)
    keras.backend.clear_session()
    gc.collect()
    t = time.time()
    return fn(*args), time.time() - t


def _stop(pool):
    """Kill the pool's workers at once (the jobs they ran resume on the next run: every job writes
    atomically)."""
    kill = getattr(pool, "kill_workers", None)       # Python 3.14
    if kill is not None:
        kill()
    else:
        for p in list((getattr(pool, "_processes", None) or {}).values()):
            p.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def run_jobs(jobs, workers, *, log=print, threads=1, deterministic=True):
    """Run `jobs` (a list of `Job`) on `workers` processes; returns ({name: result}, [(name,
    seconds)] in the order they finished). `log(event, job, seconds, result)` is told "start" and
    "done". `threads`: TensorFlow's intra- and inter-op threads per worker; `deterministic`: op
    determinism on in every worker. A job's error stops the rest: a `CxrsalError` is raised as it
    is, a worker that died as one line naming the job (or the jobs that were running)."""
    import multiprocessing

    critical_path(jobs)
    pending = {j.name: j for j in jobs}
    results, times, running = {}, [], {}
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(os.getpid(), threads, deterministic))
    ok = False
    try:
        while pending or running:
            ready = sorted((j for j in pending.values() if all(d in results for d in j.deps)),
                           key=lambda j: -j.priority)
            local = [j for j in ready if j.local]
            if local:                   # bookkeeping first: it may be what the others wait for
                job = local[0]
                del pending[job.name]
                args = job.args(results) if callable(job.args) else job.args
                t = time.time()
                results[job.name] = job.fn(*args)
                times.append((job.name, time.time() - t))
                log("done", job, times[-1][1], results[job.name])
                continue
            for job in ready[:workers - len(running)]:
                del pending[job.name]
                args = job.args(results) if callable(job.args) else job.args
                running[_submit(pool, job, args, running)] = job
                log("start", job, None, None)
            if not running:
                raise ValueError(f"jobs wait for each other: {sorted(pending)}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                try:
                    result, seconds = future.result()
                except BrokenProcessPool as e:
                    # every running job fails at once when one worker dies: any of them may be it
                    raise _died([job.name, *(j.name for j in running.values())], e) from e
                results[job.name] = result
                times.append((job.name, seconds))
                log("done", job, seconds, result)
        ok = True
        return results, times
    finally:
        if ok:
            pool.shutdown(wait=True)
        else:
            _stop(pool)


def _died(names, error):
    names = sorted(names)
    which = f"'{names[0]}'" if len(names) == 1 else "one of " + ", ".join(f"'{n}'" for n in names)
    return CxrsalError(f"a worker process died while running {which} ({error}): if the system killed it (memory), "
                       "run the same command again to resume, --jobs 1 uses less memory; else see the worker's "
                       "message above")


def _submit(pool, job, args, running):
    try:
        return pool.submit(_run_in_worker, job.fn, args)
    except BrokenProcessPool as e:        # a worker died starting (its initializer) or between two jobs
        raise _died([job.name, *(j.name for j in running.values())], e) from e
