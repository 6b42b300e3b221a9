"""`cxrsal study STUDY.yaml`: a whole audit ([A]'s or [B]'s protocol, or your own) from one study
file, as a graph of resumable jobs run on this machine or submitted to SLURM through submitit.

    spec    the study file's schema and loader
    graph   the job graph: names, folders, settings digests, costs
    tasks   the job functions (each resolves its inputs when it starts)
    layout  names, folders and each job's cxrsal settings
    cost    model evaluations per job, the measured throughputs
    run     bookkeeping, the local executor (worker processes)
    cluster submitit: SLURM jobs, or submitit's local executor
"""

import time
from pathlib import Path

from .spec import load_study  # noqa: F401  (the API: load_study, run_study, plan_lines)


def plan_lines(jobs, *, throughput=None, device="cpu"):
    """What `--plan` prints: each job, what it waits for and its evaluations; the evaluations per
    kind of job; training (images x epochs) on its own lines; the projected hours."""
    from . import cost
    from .graph import REPORT

    lines = ["jobs (what each waits for; model evaluations = forward + input gradient of one image):"]
    for j in jobs:
        deps = "" if not j.deps else ("after every other job" if j.name == REPORT else "after " + "; ".join(j.deps))
        what = f"{j.evaluations:,} evaluations" if j.evaluations else (
            f"training: {j.training[0]:,} images x {j.training[1]} epochs" if j.training else "no model evaluations")
        lines.append(f"  {j.name}  [{j.kind}]  {what}" + (f"  ({deps})" if deps else ""))
    per_kind, training = cost.summarize(jobs)
    total = sum(per_kind.values())
    lines.append("evaluations per kind of job:")
    width = max([len(k) for k in per_kind] + [5])
    lines += [f"  {k:<{width}}  {v:>16,}" for k, v in per_kind.items()]
    lines.append(f"  {'total':<{width}}  {total:>16,}")
    if training:
        lines.append("training (images x epochs):")
        lines += [f"  {j.name}: {j.training[0]:,} x {j.training[1]} = {n:,} image passes" for j, n in training]
    hours, unknown = cost.hours(jobs, throughput, device)
    if throughput:
        lines.append(f"projected: {hours:.2f} h of model evaluations at {throughput:g} evaluations/s (training "
                     "not included)")
    elif unknown and not hours:
        lines.append(f"projected: unknown: no throughput measured on {device} ({cost.throughput_file()})")
    else:
        lines.append(f"projected: {hours:.2f} h at the throughputs benchmarks/workload.py measured on {device}"
                     f" ({cost.throughput_file()}; training not included)" + (", without the jobs below" if unknown
                                                                                else ""))
        for what, n in unknown:
            lines.append(f"  not measured: {what} ({n:,} evaluations): run `python benchmarks/workload.py --arch ... "
                         "--size ...` on this device, or pass --throughput N")
    return lines


def run_study(path, out, *, overrides=(), jobs=None, executor="local", recompute_changed=False, log=print,
              command="study", identity=None):
    """Run (or resume) the study file `path` in `out`; returns the report's path (local
    executors) or None (submitted to SLURM)."""
    from ..workers import default_workers
    from .graph import REPORT
    from .run import open_study, run_local

    study = load_study(path, overrides)
    out = Path(out).resolve()
    graph = open_study(study, out, recompute_changed=recompute_changed, log=log, command=command, identity=identity)
    t0 = time.time()
    stamp = lambda: f"[study {time.time() - t0:6.0f} s]"      # noqa: E731
    if executor != "local":
        from .cluster import submit

        ids = submit(graph, out, study, executor=executor, log=log)
        if executor == "slurm":
            log(f"{len(ids)} jobs submitted; `cxrsal study {path} --out {out} --status` shows their state")
            return None
        return out / "report"
    workers = jobs or default_workers()

    def show(event, job, seconds, result):
        if event == "start":
            log(f"{stamp()} {job.name}")
        elif job.name != REPORT:
            log(f"{stamp()}   done in {seconds:.0f} s: {job.name}" + (f": {result}" if result else ""))

    log(f"{stamp()} {workers} worker process{'es' if workers > 1 else ''} of one TensorFlow thread each (--jobs)")
    _, times = run_local(graph, out, workers, log=show)
    if times:
        width = max(len(t) for t, _ in times)
        log("\n".join(["stage times (the stages overlap on the workers):"]
                      + [f"  {t:<{width}}  {s:6.1f} s" for t, s in times if s > 0.05]))
        log(f"study finished in {(time.time() - t0) / 60:.1f} min ({sum(s for _, s in times) / 60:.1f} min of stage "
            f"time; {workers} worker{'s' if workers > 1 else ''})")
    else:
        log("every job had finished: nothing to run")
    log(f"report: {out / 'report' / 'report.html'}")
    return out / "report"
