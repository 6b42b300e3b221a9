"""Running a study's job graph on this machine (`cxrsal.workers`), resuming, and refusing to mix
results of an edited study file; `cluster` submits the same jobs through submitit.

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


def report_path(out):
    return Path(out) / "report"


def final_job(jobs):
    return next(j for j in jobs if j.name == REPORT)
