"""Running a study's job graph on this machine (`cxrsal.workers`), resuming, and refusing to mix
results of an edited study file; `cluster` submits the same jobs through submitit.

OUT/.study holds the study's bookkeeping:

    study.yaml         the study file as last run
    graph.json         {job: {"own": digest of the settings that shape its outputs, "outputs": [...]}}
    done/KEY.json      written by a job when it finished: its digests (own, and chained with the
                       jobs before it) and seconds
    cluster.json       {job: {"id": cluster job id, "digest": its digest}} of the last submissions
    submitit/          submitit's job folders (pickled job, logs)
OUT/.replaced/STAMP/   outputs of changed jobs moved aside by --recompute-changed (never deleted)
"""

import json
import shutil
import time
from pathlib import Path

from ..errors import CxrsalError
from ..files import atomic_write_text
from .graph import build_jobs, downstream

STATE = ".study"
REPLACED = ".replaced"


def state_dir(out):
    return Path(out) / STATE


def done_marker(out, job):
    return state_dir(out) / "done" / f"{job.key}.json"


def read_state(path):
    """One of the study's bookkeeping files (JSON), or None where it is missing or half-written
    (a killed writer: it is then as if never written)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _marker(out, job):
    return read_state(done_marker(out, job))


def finished(out, job):
    """True when `job` finished with its settings and those of every job before it as they are now."""
    return (_marker(out, job) or {}).get("digest") == job.digest


def execute(fn, args, marker, mark):
    """A job as a worker or a cluster job runs it: the work, then its done marker (atomically)
    holding `mark` (its name and digests) and its seconds."""
    t = time.time()
    result = fn(*args)
    atomic_write_text(Path(marker), json.dumps({**mark, "seconds": time.time() - t}) + "\n")
    return result


def mark_of(job):
    return {"job": job.name, "digest": job.digest, "own": job.own}


def _recorded(out):
    return read_state(state_dir(out) / "graph.json") or {}


def _has_outputs(out, outputs):
    return any((Path(out) / rel).exists() for rel in outputs)


def changed_jobs(jobs, out):
    """(the jobs that ran, or began to, with other settings of their own than they have now; the
    jobs of the last run this study no longer has whose outputs are still there)."""
    record = _recorded(out)
    changed = []
    for j in jobs:
        mark = _marker(out, j)
        old = mark.get("own") if mark else (record.get(j.name, {}).get("own")
                                            if _has_outputs(out, j.outputs) else None)
        if old is not None and old != j.own:
            changed.append(j.name)
    names = {j.name for j in jobs}
    removed = [n for n, r in record.items() if n not in names and _has_outputs(out, r.get("outputs", ()))]
    return changed, removed


def move_aside(out, entries, log=print):
    """Move the outputs of `entries` [(name, outputs, job or None)] to OUT/.replaced/STAMP (never
    deleted) and forget they ran."""
    out = Path(out)
    target = out / REPLACED / time.strftime("%Y%m%d-%H%M%S")
    for _, outputs, job in entries:
        for rel in outputs:
            src = out / rel
            if src.exists():
                dst = target / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(src), str(dst))
        if job is not None:
            done_marker(out, job).unlink(missing_ok=True)
    log(f"moved the outputs of {len(entries)} jobs aside to {target}")
    return target


def _listed(names):
    return ", ".join(f"'{n}'" for n in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def open_study(study, out, *, recompute_changed=False, log=print, command="study", identity=None):
    """The study's jobs for OUT: claims the folder, refuses (one line naming the jobs) when the
    study file changed the settings of jobs already run, or dropped jobs whose outputs are there,
    unless `recompute_changed`, which moves their outputs and those of every job after them aside.
    Records the graph. `command` and `identity` claim the folder (`cxrsal.identity`): `cxrsal
    demo` claims it with its options."""
    from ..identity import claim

    out = Path(out)
    claim(out, command, identity or {})
    jobs = build_jobs(study, out)
    changed, removed = changed_jobs(jobs, out)
    if (changed or removed) and not recompute_changed:
        what = []
        if changed:
            what.append(f"changed the settings of {len(changed)} job{'s' * (len(changed) > 1)} already run in {out}: "
                        f"{_listed(changed)}")
        if removed:
            what.append(f"no longer has {len(removed)} job{'s' * (len(removed) > 1)} whose outputs are in {out}: "
                        f"{_listed(removed)}")
        remedy = ("use a new --out (or delete it to start again)" if command == "demo" else
                  f"run with --recompute-changed to move their outputs aside (into {out / REPLACED}) and run what "
                  "follows them again, or use a new --out")
        raise CxrsalError(f"{study.path} {'; and '.join(what)}; {remedy}")
    record = _recorded(out)
    if changed or removed:
        again = downstream(jobs, changed)
        move_aside(out, [(j.name, j.outputs, j) for j in jobs if j.name in again]
                   + [(n, record[n].get("outputs", ()), None) for n in removed], log=log)
    state = state_dir(out)
    (state / "done").mkdir(parents=True, exist_ok=True)
    record = {j.name: {"own": j.own, "outputs": list(j.outputs)} for j in jobs}
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
    work = [Job(j.name, execute, (j.fn, j.args, str(done_marker(out, j)), mark_of(j)),
                deps=tuple(d for d in j.deps if d in names), cost=_weight(j), local=j.kind == "choose")
            for j in pending]
    if not work:
        return {}, []
    return run_jobs(work, workers, log=log)
