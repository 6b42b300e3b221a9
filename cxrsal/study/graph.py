"""A study file's job graph: each job with what it waits for, the folders it writes, the settings
that shape them (a change of which is a changed job) and its cost in model evaluations.

The folders of data set D in the study's output folder OUT:

    OUT/D/prepared                  `cxrsal prepare` (unless the study names a prepared folder)
    OUT/D/models/NAME               a trained replicate (NAME, or NAME-a, NAME-b, ...) or an adopted model
    OUT/D/baselines/KIND-seedS      a localization network and its predictions
    OUT/D/choices.json              Table 1's choices: the mapped replicate, the localization networks
    OUT/D/maps/NAME[-val|-every]    maps of the test positives, the validation split, every test image
    OUT/D/results/...               score-, pointwise-, randomization*, repeatability, reproducibility,
                                    data-randomization
    OUT/report                      statistics and the report of every data set

A job never takes an argument another job computes: it reads what it needs from these folders
when it starts (which replicate is mapped, which localization network is the baseline), so the
same job runs in a worker process or as a cluster job submitted before its inputs existed.
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .layout import Context, _train_extra, job_config, localization_names, replicate_names, twin_name

REPORT = "statistics and report"


@dataclass
class StudyJob:
    """One job of the graph. `outputs`: the folders and files it writes (relative to OUT);
    `settings`: what shapes them (its digest tells a changed job); `evaluations`: model
    evaluations (forward + input gradient) of its maps; `training`: (images, epochs) it trains;
    `arch`, `size`: the model and input side the evaluations run at (for the throughput)."""
    name: str
    kind: str
    fn: Callable
    args: tuple
    deps: tuple = ()
    outputs: tuple = ()
    settings: dict = field(default_factory=dict)
    evaluations: int = 0
    training: tuple = None
    arch: str = ""
    size: int = 0
    dataset: str = ""

    @property
    def key(self):
        """The job's name as a file name."""
        import re

        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_")

    @property
    def digest(self):
        return hashlib.sha256(json.dumps(self.settings, sort_keys=True, default=str).encode()).hexdigest()


def _digest_config(cfg):
    from ..config import to_dict

    return to_dict(cfg)


def plan_images(study, ds_name, out):
    """{train, val, val_positives, test, test_positives}: from the prepared manifest's summary
    where the data set is prepared, else the study file's `images` (0 where it gives none)."""
    ds = study.datasets[ds_name]
    summary = None
    for folder in [study.resolve(ds.prepared) if ds.prepared else Path(out) / ds_name / "prepared"]:
        if (folder / "summary.json").is_file():
            summary = json.loads((folder / "summary.json").read_text())
    if summary is None:
        return dataclasses.asdict(ds.images)
    c = summary["counts"]
    total = {s: c[s]["positive"] + c[s]["negative"] for s in ("train", "val", "test")}
    return {"train": total["train"], "val": total["val"], "val_positives": c["val"]["positive"],
            "test": total["test"], "test_positives": c["test"]["positive"]}


def _limited(n, limit):
    return min(n, limit) if limit else n


def build_jobs(study, out):
    """The study's jobs in a valid order (every job after those it waits for)."""
    from . import cost
    from . import tasks as t

    ctx = Context(study, str(Path(out).resolve()))
    jobs = []
    for ds_name, ds in study.datasets.items():
        jobs += _dataset_jobs(ctx, study, ds_name, ds, cost, t)
    ids = [j.name for j in jobs]
    jobs.append(StudyJob(REPORT, "report", t.report, (ctx,), deps=tuple(ids), outputs=("report",),
                         settings={"posthoc": study.stats.posthoc, "published": study.report.published,
                                   "datasets": list(study.datasets)}))
    return jobs


def _dataset_jobs(ctx, study, d, ds, cost, t):
    jobs = []
    exp = ds.experiments
    counts = plan_images(study, d, ctx.out)
    n_maps = _limited(counts["test_positives"], exp.images)
    n_rand = _limited(counts["test_positives"], exp.randomization_images or exp.images)
    n_cmp = _limited(counts["test_positives"], exp.compare_images or exp.images)
    n_val = _limited(counts["val_positives"], exp.images)
    prepared = []
    if not ds.prepared:
        cfg = job_config(study, d)
        jobs.append(StudyJob(f"{d}: prepare", "prepare", t.prepare, (ctx, d), outputs=(f"{d}/prepared",),
                             settings={"data": _digest_config(cfg)["data"]}, dataset=d))
        prepared = (jobs[-1].name,)

    def model_cfg(mname, spec, extra):
        return job_config(study, d, (f"datasets.{d}.models.{mname}", spec), extra)

    trained = {}          # run name -> job name
    runs_of = {}          # model name -> its run names
    arch_size = {}
    for mname, spec in ds.models.items():
        runs_of[mname] = replicate_names(mname, spec)
        seed = study.seed if spec.seed is None else spec.seed
        for k, run in enumerate(runs_of[mname]):
            if spec.path:
                settings = {"path": str(study.resolve(spec.path)), "card": str(study.resolve(spec.card) or "")}
                jobs.append(StudyJob(f"{d}: adopt {run}", "train", t.adopt, (ctx, d, mname), deps=prepared,
                                     outputs=(f"{d}/models/{run}",), settings=settings, dataset=d))
                arch_size[mname] = (f"external-{Path(spec.path).stem}", job_config(study, d).data.size)
            else:
                cfg = model_cfg(mname, spec, _train_extra(spec, seed + k))
                jobs.append(StudyJob(f"{d}: train {run}", "train", t.train, (ctx, d, mname, k), deps=prepared,
                                     outputs=(f"{d}/models/{run}",), settings=_digest_config(cfg), dataset=d,
                                     training=(counts["train"], cfg.train.epochs), arch=cfg.model.arch,
                                     size=cfg.model.input_size or cfg.data.size))
                arch_size[mname] = (cfg.model.arch, cfg.model.input_size or cfg.data.size)
            trained[run] = jobs[-1].name
    mapped = exp.mapped
    mspec = ds.models[mapped]
    if exp.data_randomization:
        seed = study.seed if mspec.seed is None else mspec.seed
        cfg = model_cfg(mapped, mspec, t.twin_extra(study, d, mspec, exp, seed))
        run = twin_name(mapped)
        jobs.append(StudyJob(f"{d}: train {run} (permuted labels)", "train", t.train_twin, (ctx, d), deps=prepared,
                             outputs=(f"{d}/models/{run}",), settings=_digest_config(cfg), dataset=d,
                             training=(counts["train"], cfg.train.epochs), arch=cfg.model.arch,
                             size=cfg.model.input_size or cfg.data.size))
        trained[run] = jobs[-1].name
    locs = localization_names(study, ds)
    for k, run in enumerate(locs):
        cfg = job_config(study, d, (f"datasets.{d}.localization", ds.localization), t.localization_extra(study, ds, k))
        jobs.append(StudyJob(f"{d}: train {run} (localization network)", "localization", t.localization, (ctx, d, k),
                             deps=prepared, outputs=(f"{d}/baselines/{run}",), settings=_digest_config(cfg),
                             dataset=d, training=(counts["train"], cfg.train.epochs)))
        trained[run] = jobs[-1].name
    choose = f"{d}: Table 1's choices"
    jobs.append(StudyJob(choose, "choose", t.choose, (ctx, d),
                         deps=tuple(trained[r] for r in runs_of[mapped] + locs), outputs=(f"{d}/choices.json",),
                         settings={"replicates": runs_of[mapped], "localization": locs}, dataset=d))
    methods = exp.methods
    mapped_models = [m for m in ds.models if m == mapped or ds.models[m].maps]
    map_jobs = {}
    for mname in mapped_models:
        deps = (choose,) if mname == mapped else (trained[runs_of[mname][0]],)
        if mname != mapped and locs:
            deps += (choose,)           # its score reads the chosen localization network
        scfg, every, vcfg = t.map_configs(ctx, d, mname)
        grid = t.grid_methods(ds, mname, exp)
        per = cost.per_image(scfg, methods, ds.models[mname].head == "wildcat")
        per_grid = cost.per_image(every, ",".join(grid), True) if grid else 0
        arch, size = arch_size[mname]
        evals = n_maps * per + (n_val * per if exp.validation else 0) + counts["test"] * per_grid
        name = f"{d}: maps of {mname}"
        # the folders are named after the run mapped (Table 1 chooses it when the job starts)
        runs = runs_of[mname] if mname == mapped else runs_of[mname][:1]
        jobs.append(StudyJob(name, "maps", t.maps, (ctx, d, mname), deps=deps,
                             outputs=tuple(f"{d}/maps/{r}{s}" for r in runs for s in ("", "-val", "-every")),
                             settings={"maps": _digest_config(scfg), "every": _digest_config(every),
                                       "val": _digest_config(vcfg), "methods": methods, "grid": grid,
                                       "validation": exp.validation},
                             evaluations=evals, arch=arch, size=size, dataset=d))
        map_jobs[mname] = name
        if exp.utility or grid:
            jobs.append(StudyJob(f"{d}: score {mname}", "score", t.score, (ctx, d, mname), deps=(name, choose),
                                 outputs=tuple(f"{d}/results/{k}-{r}" for r in runs for k in ("score", "pointwise")),
                                 settings={"maps": _digest_config(scfg), "every": _digest_config(every),
                                           "utility": exp.utility, "grid": grid, "validation": exp.validation,
                                           "localization": locs}, dataset=d))
    scfg = t.map_configs(ctx, d, mapped)[0]
    per = cost.per_image(scfg, methods, mspec.head == "wildcat")
    arch, size = arch_size[mapped]
    card = {}
    if mspec.card:
        from ..models.external import read_model_card

        card = {"blocks": read_model_card(study.resolve(mspec.card)).blocks or ()}
    steps = cost.randomization_steps(arch, scfg.randomization.all_blocks, **card)
    for order, smooth in [(o, 0) for o in exp.orders] + ([(exp.orders[0] if exp.orders else "top-down", exp.smprt)]
                                                         if exp.smprt else []):
        rcfg = t.randomization_config(ctx, d, order, smooth)
        folder = t.randomization_folder(order, smooth, exp)
        jobs.append(StudyJob(f"{d}: cascading randomization {order}" + (f" (sMPRT, {smooth} noisy copies)" if smooth
                                                                        else ""),
                             "randomization", t.randomize, (ctx, d, order, smooth), deps=(map_jobs[mapped],),
                             outputs=(f"{d}/results/{folder}",), settings=_digest_config(rcfg),
                             evaluations=n_rand * steps * per * max(1, smooth), arch=arch, size=size, dataset=d))
    compares = []
    if exp.data_randomization:
        compares.append(("data-randomization", trained[twin_name(mapped)], arch_size[mapped], per))
    if exp.repeatability:
        compares.append(("repeatability", None, arch_size[mapped], per))
    if exp.reproducibility:
        other = exp.reproducibility
        compares.append(("reproducibility", trained[runs_of[other][0]], arch_size[other],
                         cost.per_image(t.map_configs(ctx, d, other)[0], methods, ds.models[other].head == "wildcat")))
    for kind, dep, (arch, size), per_other in compares:
        deps = (map_jobs[mapped],) + ((dep,) if dep else ())
        jobs.append(StudyJob(f"{d}: {kind}", "compare", t.compare, (ctx, d, kind), deps=deps,
                             outputs=(f"{d}/results/{kind}",), settings={**_digest_config(scfg), "kind": kind,
                                                                          "localization": locs},
                             evaluations=n_cmp * per_other, arch=arch, size=size, dataset=d))
    return jobs


def downstream(jobs, names):
    """`names` and every job that waits for one of them, directly or not."""
    out = set(names)
    changed = True
    while changed:
        changed = False
        for j in jobs:
            if j.name not in out and any(d in out for d in j.deps):
                out.add(j.name)
                changed = True
    return out
