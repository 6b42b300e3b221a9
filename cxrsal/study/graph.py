"""A study file's job graph: each job with what it waits for, the folders it writes, the settings
that shape them (a change of which is a changed job) and its cost in model evaluations.

The folders of data set D in the study's output folder OUT:

    OUT/D/prepared                  `cxrsal prepare` (unless the study names a prepared folder)
    OUT/D/models/NAME               a trained replicate (NAME, or NAME-a, NAME-b, ...) or an adopted model
    OUT/D/baselines/KIND-seedS      a localization network and its predictions
    OUT/D/choices/M.json            Table 1's choice of model M's replicate (when it has several)
    OUT/D/choices/localization.json the localization networks by validation loss
    OUT/D/maps/NAME[-val|-every]    maps of the test positives, the validation split, every test image
    OUT/D/results/...               score-, pointwise-, randomization*, repeatability, reproducibility,
                                    data-randomization
    OUT/report                      statistics and the report of every data set

A job never takes an argument another job computes: it reads what it needs from these folders
when it starts (which replicate is mapped, which localization network is the baseline), so the
same job runs in a worker process or as a cluster job submitted before its inputs existed.
"""

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..config_schema import CHECK_DEFAULTS, MIN_IMAGES, NOT_MAP_SETTINGS
from .layout import Context, _train_extra, job_config, localization_names
from .spec import replicate_names, twin_name

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
    # the digest of its own settings and of every job before it (`chain_digests`): what a finished
    # job must match to count as finished
    digest: str = ""

    @property
    def key(self):
        """The job's name as a file name."""
        import re

        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_")

    @property
    def own(self):
        """The digest of its own settings (what `--recompute-changed` names a job changed by)."""
        return hashlib.sha256(json.dumps(self.settings, sort_keys=True, default=str).encode()).hexdigest()


# the settings that shape each kind of job's outputs (the rest, such as decoding workers or batch
# sizes, do not); only values other than the defaults count, so a cxrsal that adds a key with its
# default changes no job
SHAPING = {
    "prepare": ("data.dataset", "data.root", "data.size", "data.seed", "data.split", "data.annotations",
                "data.positive"),
    "train": ("pipeline", "model", "train"),
    "localization": ("pipeline", "model", "train", "baseline"),
    "maps": ("saliency", "ggcam"),
    "score": ("score", "pointwise"),
    "faithfulness": ("faithfulness",),
    "randomization": ("saliency", "ggcam", "randomization", "similarity"),
    "compare": ("saliency", "ggcam", "compare", "similarity"),
}
# the saliency settings that shape no map (`NOT_MAP_SETTINGS`), but the image limit, which says
# which images a job maps
NOT_SHAPING = tuple(k for k in NOT_MAP_SETTINGS if k != "saliency.limit")


@functools.cache
def _defaults(kind):
    from ..config import Config

    return Config().settings(*SHAPING[kind])


def shaping(cfg, kind):
    """{"section.key": value} of `cfg`'s settings that shape a `kind` job's outputs, where they
    differ from the defaults."""
    default = _defaults(kind)
    return {k: v for k, v in sorted(cfg.settings(*SHAPING[kind]).items())
            if k not in NOT_SHAPING and default.get(k, object()) != v}


def plan_images(study, ds_name, out):
    """{train, val, val_positives, test, test_positives}: from the prepared manifest's summary
    where the data set is prepared, else the study file's `images` (0 where it gives none)."""
    ds = study.datasets[ds_name]
    summary = (study.resolve(ds.prepared) if ds.prepared else Path(out) / ds_name / "prepared") / "summary.json"
    if not summary.is_file():
        return dataclasses.asdict(ds.images)
    summary = json.loads(summary.read_text())
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
                                   **({"min_images": study.stats.min_images}
                                      if study.stats.min_images != MIN_IMAGES else {}),
                                   **({"test": study.stats.test} if study.stats.test != "satterthwaite" else {}),
                                   **({"alpha": study.stats.alpha} if study.stats.alpha != 0.05 else {})}))
    return chain_digests(jobs)


def chain_digests(jobs):
    """Each job's `digest`: its own settings and the digests of the jobs it waits for, so a change
    upstream, or a job added before the report, makes the jobs after it unfinished."""
    digests = {}
    for j in jobs:
        parts = [j.own] + sorted(digests[d] for d in j.deps)
        j.digest = digests[j.name] = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return jobs


def _dataset_jobs(ctx, study, d, ds, cost, t):
    jobs = []
    exp = ds.experiments
    counts = plan_images(study, d, ctx.out)
    n_maps = _limited(counts["test_positives"], exp.images)
    n_rand = _limited(counts["test_positives"], exp.randomization_images or exp.images)
    n_cmp = _limited(counts["test_positives"], exp.compare_images or exp.images)
    n_val = _limited(counts["val_positives"], exp.images)
    prepared = ()
    if not ds.prepared:
        jobs.append(StudyJob(f"{d}: prepare", "prepare", t.prepare, (ctx, d), outputs=(f"{d}/prepared",),
                             settings=shaping(job_config(study, d), "prepare"), dataset=d))
        prepared = (jobs[-1].name,)

    def model_cfg(mname, spec, extra):
        return job_config(study, d, (f"datasets.{d}.models.{mname}", spec), extra)

    trained = {}          # run name -> job name
    runs_of = {}          # model name -> its run names
    arch_size = {}
    for mname, spec in ds.models.items():
        runs_of[mname] = replicate_names(mname, spec)
        seed = study.seed_of(spec)
        for k, run in enumerate(runs_of[mname]):
            if spec.path:
                jobs.append(StudyJob(f"{d}: adopt {run}", "train", t.adopt, (ctx, d, mname), deps=prepared,
                                     outputs=(f"{d}/models/{run}",), settings=t.adopt_settings(study, spec),
                                     dataset=d))
                arch_size[mname] = (f"external-{Path(spec.path).stem}", job_config(study, d).data.size)
            else:
                cfg = model_cfg(mname, spec, _train_extra(spec, seed + k))
                jobs.append(StudyJob(f"{d}: train {run}", "train", t.train, (ctx, d, mname, k), deps=prepared,
                                     outputs=(f"{d}/models/{run}",), settings=shaping(cfg, "train"), dataset=d,
                                     training=(counts["train"], cfg.train.epochs), arch=cfg.model.arch,
                                     size=cfg.model.input_size or cfg.data.size))
                arch_size[mname] = (cfg.model.arch, cfg.model.input_size or cfg.data.size)
            trained[run] = jobs[-1].name
    mapped = exp.mapped
    mspec = ds.models[mapped]
    if exp.data_randomization:
        seed = study.seed_of(mspec)
        cfg = model_cfg(mapped, mspec, t.twin_extra(study, d, mspec, exp, seed))
        run = twin_name(mapped)
        jobs.append(StudyJob(f"{d}: train {run} (permuted labels)", "train", t.train_twin, (ctx, d), deps=prepared,
                             outputs=(f"{d}/models/{run}",), settings=shaping(cfg, "train"), dataset=d,
                             training=(counts["train"], cfg.train.epochs), arch=cfg.model.arch,
                             size=cfg.model.input_size or cfg.data.size))
        trained[run] = jobs[-1].name
    locs = localization_names(study, ds)
    for k, run in enumerate(locs):
        cfg = job_config(study, d, (f"datasets.{d}.localization", ds.localization), t.localization_extra(study, ds, k))
        jobs.append(StudyJob(f"{d}: train {run} (localization network)", "localization", t.localization, (ctx, d, k),
                             deps=prepared, outputs=(f"{d}/baselines/{run}",), settings=shaping(cfg, "localization"),
                             dataset=d, training=(counts["train"], cfg.train.epochs)))
        trained[run] = jobs[-1].name
    # Table 1's rules, one job each: which replicate of a model is mapped (best validation AUC),
    # and the localization networks by validation loss (the lowest is utility's baseline)
    used = [m for m in ds.models if m == mapped or ds.models[m].maps or m == exp.reproducibility]
    ready = {}            # model name -> the job after which its mapped run is known
    for mname in used:
        if len(runs_of[mname]) == 1:
            ready[mname] = trained[runs_of[mname][0]]
            continue
        name = f"{d}: Table 1's choice of {mname}"
        jobs.append(StudyJob(name, "choose", t.choose_replicate, (ctx, d, mname),
                             deps=tuple(trained[r] for r in runs_of[mname]),
                             outputs=(f"{d}/{t.CHOICES}/{mname}.json",), settings={"runs": runs_of[mname]}, dataset=d))
        ready[mname] = name
    located = ()
    if locs:
        jobs.append(StudyJob(f"{d}: localization network of utility", "choose", t.choose_localization, (ctx, d),
                             deps=tuple(trained[r] for r in locs), outputs=(f"{d}/{t.CHOICES}/localization.json",),
                             settings={"runs": locs}, dataset=d))
        located = (jobs[-1].name,)
    methods = exp.methods
    map_jobs = {}
    for mname in [m for m in used if m == mapped or ds.models[m].maps]:
        scfg, every, vcfg = t.map_configs(ctx, d, mname)
        grid = t.grid_methods(ds, mname, exp)
        per = cost.per_image(scfg, methods, ds.models[mname].head == "wildcat")
        per_grid = cost.per_image(every, ",".join(grid), True) if grid else 0
        arch, size = arch_size[mname]
        evals = n_maps * per + (n_val * per if exp.validation else 0) + counts["test"] * per_grid
        name = f"{d}: maps of {mname}"
        # the folders are named after the run mapped (Table 1 chooses it when the job starts)
        runs = runs_of[mname]
        jobs.append(StudyJob(name, "maps", t.maps, (ctx, d, mname), deps=(ready[mname],),
                             outputs=tuple(f"{d}/maps/{r}{s}" for r in runs for s in ("", "-val", "-every")),
                             settings={"maps": shaping(scfg, "maps"), "every": shaping(every, "maps"),
                                       "val": shaping(vcfg, "maps"), "methods": methods, "grid": grid,
                                       "validation": exp.validation},
                             evaluations=evals, arch=arch, size=size, dataset=d))
        map_jobs[mname] = name
        if exp.utility or grid:
            jobs.append(StudyJob(f"{d}: score {mname}", "score", t.score, (ctx, d, mname), deps=(name, *located),
                                 outputs=tuple(f"{d}/results/{k}-{r}" for r in runs for k in ("score", "pointwise")),
                                 settings={"score": shaping(scfg, "score"), "pointwise": shaping(every, "score"),
                                           "utility": exp.utility, "grid": grid}, dataset=d))
        if exp.faithfulness:
            jobs.append(StudyJob(f"{d}: faithfulness {mname}", "faithfulness", t.faithfulness, (ctx, d, mname),
                                 deps=(name,), outputs=tuple(f"{d}/results/faithfulness-{r}" for r in runs),
                                 settings={"faithfulness": shaping(scfg, "faithfulness"), "methods": methods},
                                 evaluations=n_maps * cost.faithfulness_per_image(scfg, methods,
                                                                                  ds.models[mname].head == "wildcat"),
                                 arch=arch, size=size, dataset=d))
    scfg = t.map_configs(ctx, d, mapped)[0]
    per = cost.per_image(scfg, methods, mspec.head == "wildcat")
    arch, size = arch_size[mapped]
    card = {}
    if mspec.card:
        from ..models.external import read_model_card

        card = {"blocks": read_model_card(study.resolve(mspec.card)).blocks or ()}
    steps = cost.randomization_steps(arch, scfg.randomization.all_blocks, **card)
    smprt_order = CHECK_DEFAULTS["smprt"]["order"]         # the authors' (Hedstroem et al. 2023)
    for order, smooth in [(o, 0) for o in exp.orders] + ([(smprt_order, exp.smprt)] if exp.smprt else []):
        rcfg = t.randomization_config(ctx, d, order, smooth)
        folder = t.randomization_folder(order, smooth, exp)
        # sMPRT maps the trained state again (with noise); MPRT copies its maps from the maps job
        states = steps + 1 if smooth else steps
        jobs.append(StudyJob(f"{d}: cascading randomization {order}" + (f" (sMPRT, {smooth} noisy copies)" if smooth
                                                                        else ""),
                             "randomization", t.randomize, (ctx, d, order, smooth), deps=(map_jobs[mapped],),
                             outputs=(f"{d}/results/{folder}",), settings=shaping(rcfg, "randomization"),
                             evaluations=n_rand * states * per * max(1, smooth), arch=arch, size=size, dataset=d))
    compares = []
    if exp.data_randomization:
        compares.append(("data-randomization", (trained[twin_name(mapped)],), arch_size[mapped], per))
    if exp.repeatability:
        compares.append(("repeatability", located[:1] if len(locs) >= 2 else (), arch_size[mapped], per))
    if exp.reproducibility:
        other = exp.reproducibility
        compares.append(("reproducibility", (ready[other],) + (located[:1] if len(locs) >= 2 else ()),
                         arch_size[other],
                         cost.per_image(t.map_configs(ctx, d, other)[0], methods, ds.models[other].head == "wildcat")))
    for kind, more, (arch, size), per_other in compares:
        jobs.append(StudyJob(f"{d}: {kind}", "compare", t.compare, (ctx, d, kind), deps=(map_jobs[mapped], *more),
                             outputs=(f"{d}/results/{kind}",), settings={**shaping(scfg, "compare"), "kind": kind},
                             evaluations=n_cmp * per_other, arch=arch, size=size, dataset=d))
    return jobs


def downstream(jobs, names):
    """`names` and every job that waits for one of them, directly or not (`jobs` in the graph's
    order: every job after those it waits for)."""
    out = set(names)
    for j in jobs:
        if any(d in out for d in j.deps):
            out.add(j.name)
    return out
