"""Running a study's job graph: on this machine (`cxrsal.workers`) or through submitit (SLURM,
or submitit's local executor), resuming, and refusing to mix results of an edited study file.

OUT/.study holds the study's bookkeeping:

    study.yaml         the study file as last run
    graph.json         {job: digest of the settings that shape its outputs}
    done/KEY.json      written by a job when it finished (its digest and seconds)
    cluster.json       {job: cluster job id} of the last submission
    submitit/          submitit's job folders (pickled job, logs)
OUT/.replaced/STAMP/   outputs of changed jobs moved aside by --recompute-changed (never deleted)
"""

import json
import shutil
import time
from pathlib import Path

from ..errors import CxrsalError
from ..files import atomic_write_text
from .graph import REPORT, build_jobs, downstream

STATE = ".study"
REPLACED = ".replaced"
LIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING")


def state_dir(out):
    return Path(out) / STATE


def done_marker(out, job):
    return state_dir(out) / "done" / f"{job.key}.json"


def finished(out, job):
    """True when `job` finished with the settings it has now."""
    path = done_marker(out, job)
    try:
        return json.loads(path.read_text()).get("digest") == job.digest
    except (OSError, ValueError):
        return False


def execute(fn, args, marker, digest, name):
    """A job as a worker or a cluster job runs it: the work, then its done marker (atomically)."""
    t = time.time()
    result = fn(*args)
    atomic_write_text(Path(marker), json.dumps({"job": name, "digest": digest, "seconds": time.time() - t}) + "\n")
    return result


def _recorded(out):
    try:
        return json.loads((state_dir(out) / "graph.json").read_text())
    except (OSError, ValueError):
        return {}


def changed_jobs(jobs, out):
    """The jobs whose settings differ from those the folder's last run recorded."""
    old = _recorded(out)
    return [j.name for j in jobs if j.name in old and old[j.name] != j.digest]


def move_aside(out, jobs, names, log=print):
    """Move the outputs of `names` to OUT/.replaced/STAMP (never deleted) and forget they ran."""
    out = Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = out / REPLACED / stamp
    moved = 0
    for j in jobs:
        if j.name not in names:
            continue
        for rel in j.outputs:
            src = out / rel
            if src.exists():
                dst = target / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(src), str(dst))
                moved += 1
        done_marker(out, j).unlink(missing_ok=True)
    if moved:
        log(f"moved the outputs of {len(names)} jobs aside to {target}")
    return target


def open_study(study, out, *, recompute_changed=False, log=print, command="study", identity=None):
    """The study's jobs for OUT: claims the folder, refuses (one line naming the jobs) when the
    study file changed the settings of jobs already run unless `recompute_changed`, which moves
    their outputs and everything downstream aside. Records the graph's digests. `command` and
    `identity` claim the folder (`cxrsal.identity`): `cxrsal demo` claims it with its options."""
    from ..identity import claim

    out = Path(out)
    claim(out, command, identity or {})
    jobs = build_jobs(study, out)
    changed = changed_jobs(jobs, out)
    if changed and not recompute_changed:
        shown = ", ".join(f"'{n}'" for n in changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise CxrsalError(f"{study.path} changed the settings of {len(changed)} job{'s' * (len(changed) > 1)} already "
                          f"run in {out}: {shown}; run with --recompute-changed to move their outputs aside (into "
                          f"{out / REPLACED}) and run them and what follows again, or use a new --out")
    if changed:
        again = downstream(jobs, changed)
        move_aside(out, jobs, again, log=log)
    state = state_dir(out)
    (state / "done").mkdir(parents=True, exist_ok=True)
    record = {**_recorded(out), **{j.name: j.digest for j in jobs}}
    atomic_write_text(state / "graph.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(state / "study.yaml", Path(study.path).read_text())
    return jobs


def _weight(job):
    return 1.0 + job.evaluations / 1e3 + (job.training[0] * job.training[1] / 50 if job.training else 0)


def run_local(jobs, out, workers, *, log=print):
    """The jobs not finished yet on `workers` processes (`cxrsal.workers`); returns
    ({job: result}, [(job, seconds)])."""
    from ..workers import Job, run_jobs

    pending = [j for j in jobs if not finished(out, j)]
    names = {j.name for j in pending}
    work = [Job(j.name, execute, (j.fn, j.args, str(done_marker(out, j)), j.digest, j.name),
                deps=tuple(d for d in j.deps if d in names), cost=_weight(j), local=j.kind == "choose")
            for j in pending]
    if not work:
        return {}, []
    return run_jobs(work, workers, log=log)


def _submitit_executor(kind, folder, job, study):
    import submitit

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
    try:
        return json.loads((state_dir(out) / "cluster.json").read_text())
    except (OSError, ValueError):
        return {}


def job_states(out, jobs):
    """{job: state}: "done", the cluster's state of its last submission, or "not submitted"."""
    import submitit

    ids = _cluster_ids(out)
    states = {}
    for j in jobs:
        if finished(out, j):
            states[j.name] = "done"
        elif j.name in ids:
            try:
                states[j.name] = submitit.SlurmJob(state_dir(out) / "submitit" / j.key, ids[j.name]).state
            except Exception as e:       # noqa: BLE001 (sacct unreachable: say so, per job)
                states[j.name] = f"unknown ({type(e).__name__})"
        else:
            states[j.name] = "not submitted"
    return states


def submit(jobs, out, study, *, executor="slurm", log=print):
    """Every unfinished job through submitit. SLURM: each as its own job with `afterok` dependencies
    on the unfinished jobs it waits for and its kind's resources, submitted in dependency order;
    a job still pending or running from the last submission is kept, not submitted again.
    submitit's local executor (no dependencies): waves of ready jobs, each waited for. Returns
    {job: cluster id} of this submission."""
    ids = _cluster_ids(out)
    live = {}
    if executor == "slurm" and ids:
        states = job_states(out, jobs)
        for j in jobs:          # in dependency order: a pending job on a dead one is dead too
            state = states.get(j.name, "")
            live[j.name] = (state.split()[0] in LIVE_STATES and all(
                finished(out, k) or live.get(k.name) for k in jobs if k.name in j.deps))
    submitted = {}
    pending = [j for j in jobs if not finished(out, j) and not live.get(j.name)]
    if executor == "slurm":
        for j in pending:
            deps = [ids[d] if live.get(d) else submitted[d] for d in j.deps if d in submitted or live.get(d)]
            ex = _submitit_executor("slurm", state_dir(out) / "submitit" / j.key, j, study)
            if deps:
                ex.update_parameters(dependency="afterok:" + ":".join(str(d) for d in deps))
            sub = ex.submit(execute, j.fn, j.args, str(done_marker(out, j)), j.digest, j.name)
            submitted[j.name] = sub.job_id
            log(f"submitted {sub.job_id}: {j.name}" + (f" (after {', '.join(map(str, deps))})" if deps else ""))
    else:
        left = list(pending)
        while left:
            names = {j.name for j in left}
            ready = [j for j in left if not any(d in names for d in j.deps)]
            running = []
            for j in ready:
                ex = _submitit_executor("local", state_dir(out) / "submitit" / j.key, j, study)
                running.append((j, ex.submit(execute, j.fn, j.args, str(done_marker(out, j)), j.digest, j.name)))
                submitted[j.name] = running[-1][1].job_id
                log(f"submitted {running[-1][1].job_id}: {j.name}")
            for j, sub in running:
                try:
                    sub.result()
                except Exception as e:         # noqa: BLE001 (the job's own error, in its log)
                    raise CxrsalError(f"job '{j.name}' failed: {str(e).strip().splitlines()[-1]} (its log: "
                                      f"{state_dir(out) / 'submitit' / j.key})") from None
            left = [j for j in left if j not in ready]
    atomic_write_text(state_dir(out) / "cluster.json", json.dumps({**ids, **submitted}, indent=2) + "\n")
    return submitted


def report_path(out):
    return Path(out) / "report"


def final_job(jobs):
    return next(j for j in jobs if j.name == REPORT)
