"""A study's jobs through submitit: on SLURM, every job its own SLURM job with `afterok`
dependencies on the unfinished jobs it waits for and its kind's resources (the study file's
`executor.resources`); or through submitit's local executor, one process per job. A job
preempted or out of time is requeued by submitit (`Resumable`: up to 3 timeouts) and resumes
where it stopped, since every job writes atomically and skips finished work."""

import json

import submitit

from ..errors import CxrsalError
from ..files import atomic_write_text
from .run import done_marker, execute, finished, mark_of, read_state, state_dir

LIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING")


class Resumable(submitit.helpers.Checkpointable):
    """A job submitit requeues as it is when SLURM preempts it or its time runs out: run again,
    it resumes from what it wrote."""

    def __call__(self, fn, args, marker, mark):
        return execute(fn, args, marker, mark)


def _submitit_executor(kind, folder, job, study):
    r = study.executor.resources[job.kind]
    if kind == "slurm":
        ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=3)
        s = study.executor.slurm
        params = dict(job_name=f"cxrsal-{job.key}"[:100], time=r.time_min, cpus_per_task=r.cpus, mem=f"{r.mem_gb}GB",
                      setup=list(s.setup), additional_parameters={"kill-on-invalid-dep": "yes"})
        if r.gpus:
            params["gpus_per_node"] = r.gpus
        for key in ("partition", "account", "qos"):
            if getattr(s, key):
                params[key] = getattr(s, key)
        ex.update_parameters(**params)
    else:
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=r.time_min)
    return ex


def _cluster_ids(out):
    """{job: {"id": cluster job id, "digest": the job's digest when it was submitted}}."""
    return read_state(state_dir(out) / "cluster.json") or {}


def _record(out, ids):
    atomic_write_text(state_dir(out) / "cluster.json", json.dumps(ids, indent=2) + "\n")


def job_states(out, jobs):
    """{job: state}: "done", the cluster's state of its last submission, or "not submitted"."""
    ids = _cluster_ids(out)
    states = {}
    for j in jobs:
        if finished(out, j):
            states[j.name] = "done"
        elif j.name in ids:
            try:
                states[j.name] = submitit.SlurmJob(state_dir(out) / "submitit" / j.key, ids[j.name]["id"]).state
            except Exception as e:       # noqa: BLE001 (sacct unreachable: say so, per job)
                states[j.name] = f"unknown ({type(e).__name__})"
        else:
            states[j.name] = "not submitted"
    return states


def submit(jobs, out, study, *, executor="slurm", log=print):
    """Every unfinished job through submitit. SLURM: each as its own job with `afterok` dependencies
    on the unfinished jobs it waits for and its kind's resources, submitted in dependency order;
    a job still pending or running from the last submission with the same settings is kept, not
    submitted again (one with other settings is cancelled and submitted anew). submitit's local
    executor (no dependencies): waves of ready jobs, each waited for. Returns {job: cluster id} of
    this submission; every id is recorded as soon as it is known."""
    ids = _cluster_ids(out)
    live = {}
    if executor == "slurm" and ids:
        states = job_states(out, jobs)
        for j in jobs:          # in dependency order: a pending job on a dead one is dead too
            state = states.get(j.name, "").split(" ")[0]
            same = ids.get(j.name, {}).get("digest") == j.digest
            if state in LIVE_STATES and not same:
                _cancel(ids[j.name]["id"])
            live[j.name] = same and state in LIVE_STATES and all(
                finished(out, k) or live.get(k.name) for k in jobs if k.name in j.deps)
    submitted = {}
    pending = [j for j in jobs if not finished(out, j) and not live.get(j.name)]
    folder = state_dir(out) / "submitit"
    if executor == "slurm":
        for j in pending:
            deps = [ids[d]["id"] if live.get(d) else submitted[d] for d in j.deps if d in submitted or live.get(d)]
            ex = _submitit_executor("slurm", folder / j.key, j, study)
            if deps:
                ex.update_parameters(dependency="afterok:" + ":".join(str(d) for d in deps))
            try:
                sub = ex.submit(Resumable(), j.fn, j.args, str(done_marker(out, j)), mark_of(j))
            except Exception as e:         # noqa: BLE001 (sbatch's refusal: its last line, and what was kept)
                raise CxrsalError(f"sbatch refused the job '{j.name}' ({_last_line(e)}); the {len(submitted)} jobs "
                                  "submitted before it are recorded: fix executor.slurm or executor.resources and "
                                  "run the same command again") from None
            submitted[j.name] = sub.job_id
            ids[j.name] = {"id": sub.job_id, "digest": j.digest}
            _record(out, ids)
            log(f"submitted {sub.job_id}: {j.name}" + (f" (after {', '.join(map(str, deps))})" if deps else ""))
    else:
        left = list(pending)
        while left:
            names = {j.name for j in left}
            ready = [j for j in left if not any(d in names for d in j.deps)]
            running = []
            for j in ready:
                ex = _submitit_executor("local", folder / j.key, j, study)
                running.append((j, ex.submit(Resumable(), j.fn, j.args, str(done_marker(out, j)), mark_of(j))))
                submitted[j.name] = running[-1][1].job_id
                ids[j.name] = {"id": running[-1][1].job_id, "digest": j.digest}
                _record(out, ids)
                log(f"submitted {running[-1][1].job_id}: {j.name}")
            for j, sub in running:
                try:
                    sub.result()
                except Exception as e:         # noqa: BLE001 (the job's own error, in its log)
                    raise CxrsalError(f"job '{j.name}' failed: {_last_line(e)} (its log: {folder / j.key})") from None
            left = [j for j in left if j not in ready]
    return submitted


def _last_line(error):
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


def _cancel(job_id):
    """scancel a job submitted with settings the study no longer has."""
    import subprocess

    subprocess.run(["scancel", str(job_id)], capture_output=True, check=False)
