"""The study's job functions (module level: a worker process or a cluster job unpickles them).
Each takes the `graph.Context` and names, builds its settings from the study file, reads what
earlier jobs wrote (Table 1's choices) when it starts, and returns the text its log line ends
with. Every one resumes: the commands they call write atomically and skip finished work."""

import json
from pathlib import Path

from ..errors import CxrsalError
from ..files import atomic_write_text
from .layout import _train_extra, job_config, localization_kind, localization_names, localization_setting
from .spec import replicate_names, twin_name

CHOICES = "choices"          # D/choices/MODEL.json, D/choices/localization.json


def _quiet(*_):
    pass


def prepared_dir(ctx, d):
    ds = ctx.study.datasets[d]
    return ctx.study.resolve(ds.prepared) if ds.prepared else ctx.folder(d, "prepared")


def _model_spec(ctx, d, mname):
    return (f"datasets.{d}.models.{mname}", ctx.study.datasets[d].models[mname])


def prepare(ctx, d):
    from ..data.prepare import prepare as run

    summary = run(job_config(ctx.study, d), prepared_dir(ctx, d), log=_quiet)
    return f"{summary['images']} images" if isinstance(summary, dict) and "images" in summary else ""


def _train_card(cfg, ctx, d, run):
    from ..training.fit import train as fit

    card = fit(cfg, prepared_dir(ctx, d), ctx.folder(d, "models", run), log=_quiet, verbose=0)
    fit_auc = card["metrics"].get("train_auc_permuted")
    return (f"test AUC {card['metrics']['test_auc']:.3f}"
            + (f", training AUC on its permuted labels {fit_auc:.3f}" if fit_auc is not None else ""))


def train(ctx, d, mname, k):
    what, spec = _model_spec(ctx, d, mname)
    cfg = job_config(ctx.study, d, (what, spec), _train_extra(spec, ctx.study.seed_of(spec) + k))
    return _train_card(cfg, ctx, d, replicate_names(mname, spec)[k])


def twin_extra(study, d, spec, exp, seed):
    """The data randomization test's model: the mapped model's settings (its first replicate's
    seed) on training labels permuted with that seed, trained until it fits them (twice the
    model's epochs unless the study says)."""
    extra = _train_extra(spec, seed)
    model = job_config(study, d, (f"datasets.{d}.models.{exp.mapped}", spec), extra)
    epochs = exp.twin_epochs or 2 * model.train.epochs
    extra["train.permute_labels"] = seed
    if epochs:
        extra["train.epochs"] = epochs
    if exp.twin_patience or epochs:
        extra["train.patience"] = exp.twin_patience or epochs
    return extra


def train_twin(ctx, d):
    ds = ctx.study.datasets[d]
    mname = ds.experiments.mapped
    what, spec = _model_spec(ctx, d, mname)
    cfg = job_config(ctx.study, d, (what, spec), twin_extra(ctx.study, d, spec, ds.experiments, ctx.study.seed_of(spec)))
    return _train_card(cfg, ctx, d, twin_name(mname))


def adopt_settings(study, spec):
    """What shapes an adopted model's run: the saved model (its path, size and modification time)
    and its model card's content."""
    path = study.resolve(spec.path)
    stat = path.stat() if path.is_file() else None
    card = study.resolve(spec.card)
    return {"path": str(path), "size": stat.st_size if stat else None, "mtime": stat.st_mtime if stat else None,
            "card": card.read_text() if card and card.is_file() else str(card or "")}


def adopt(ctx, d, mname):
    from ..models.external import read_model_card
    from ..training.adopt import adopt as run

    _, spec = _model_spec(ctx, d, mname)
    path = ctx.study.resolve(spec.path)
    if not path.exists():
        raise CxrsalError(f"{ctx.study.path}: datasets.{d}.models.{mname}.path: {path} does not exist")
    card = read_model_card(ctx.study.resolve(spec.card)) if spec.card else None
    run(path, prepared_dir(ctx, d), ctx.folder(d, "models", mname), card, log=_quiet)
    return f"adopted {path.name}"


def localization_extra(study, ds, k):
    loc = ds.localization
    backbone, seed = localization_setting(study, ds, k)
    extra = {"baseline.kind": localization_kind(ds), "train.seed": seed}
    if backbone:
        extra["baseline.backbone"] = backbone
    if loc.epochs:
        extra["train.epochs"] = loc.epochs
    return extra


def localization(ctx, d, k):
    from ..baselines.predict import train_baseline

    ds = ctx.study.datasets[d]
    cfg = job_config(ctx.study, d, (f"datasets.{d}.localization", ds.localization), localization_extra(ctx.study, ds, k))
    run = localization_names(ctx.study, ds)[k]
    card = train_baseline(cfg, prepared_dir(ctx, d), ctx.folder(d, "baselines", run), log=_quiet, verbose=0)
    boxes = card["metrics"].get("test_boxes")
    return f"test AUC {card['metrics']['test_auc']:.3f}" + (f", {boxes} boxes" if boxes is not None else "")


def choose_replicate(ctx, d, mname):
    """Table 1's rule (`stats.tables.chosen_runs`, the one place it is written): of a model's
    replicates, the one of best validation AUC is mapped; the others are its repeatability
    replicates. Written to D/choices/MODEL.json."""
    from ..stats.tables import chosen_runs

    runs = replicate_names(mname, ctx.study.datasets[d].models[mname])
    main = chosen_runs([ctx.folder(d, "models", r) for r in runs])[0]["run"]
    atomic_write_text(ctx.folder(d, CHOICES, f"{mname}.json"),
                      json.dumps({"chosen": main, "others": [r for r in runs if r != main]}, indent=2) + "\n")
    return f"{main} (best validation AUC)"


def choose_localization(ctx, d):
    """Table 1's rule for the localization networks: by validation loss, the lowest first (utility's
    high baseline; the first two make repeatability's). Written to D/choices/localization.json."""
    from ..runs import read_card

    locs = localization_names(ctx.study, ctx.study.datasets[d])
    loss = {r: read_card(ctx.folder(d, "baselines", r))["metrics"]["best_val_loss"] for r in locs}
    ordered = sorted(locs, key=lambda r: loss[r])
    atomic_write_text(ctx.folder(d, CHOICES, "localization.json"), json.dumps({"order": ordered}, indent=2) + "\n")
    return f"{ordered[0]} (lowest validation loss)"


def _read_choice(ctx, d, name):
    path = ctx.folder(d, CHOICES, f"{name}.json")
    if not path.is_file():
        raise CxrsalError(f"{path}: not written yet; the job that applies Table 1's rules ({name}) runs first")
    return json.loads(path.read_text())


def run_of(ctx, d, mname):
    """The run a model's maps come from: its replicate Table 1 chose, or its only one."""
    runs = replicate_names(mname, ctx.study.datasets[d].models[mname])
    return runs[0] if len(runs) == 1 else _read_choice(ctx, d, mname)["chosen"]


def replicates_of(ctx, d, mname):
    """The model's other replicates, after the one mapped."""
    runs = replicate_names(mname, ctx.study.datasets[d].models[mname])
    return [] if len(runs) == 1 else _read_choice(ctx, d, mname)["others"]


def localization_order(ctx, d):
    ds = ctx.study.datasets[d]
    if ds.localization is None:
        return []
    return _read_choice(ctx, d, "localization")["order"]


def grid_methods(ds, mname, exp):
    """The cheap grid maps of every test image for pointwise detection ([B]: negatives ranked too),
    plus WILDCAT's class map for a WILDCAT model."""
    names = [m.strip() for m in exp.pointwise.split(",") if m.strip()]
    if names and ds.models[mname].head == "wildcat" and "wildcat" not in names:
        names.append("wildcat")
    return names


def map_configs(ctx, d, mname):
    """(test positives, every test image, validation split): the three stores' settings."""
    ds = ctx.study.datasets[d]
    exp = ds.experiments
    owner = _model_spec(ctx, d, mname)
    base = {"saliency.limit": exp.images, "randomization.n_images": exp.randomization_images or exp.images,
            "compare.n_images": exp.compare_images or exp.images, "randomization.seed": ctx.study.seed}
    scfg = job_config(ctx.study, d, owner, base)
    every = job_config(ctx.study, d, owner, {"saliency.positives_only": False})
    vcfg = job_config(ctx.study, d, owner, {"saliency.limit": exp.images, "saliency.split": "val"})
    return scfg, every, vcfg


def maps(ctx, d, mname):
    """The maps of the test positives and the validation split, the grid maps of every test image:
    computed once, randomization's trained step and the comparisons copy them (`MapStore.reuse`)."""
    from ..saliency.runner import run_saliency, sharing_models

    ds = ctx.study.datasets[d]
    exp = ds.experiments
    scfg, every, vcfg = map_configs(ctx, d, mname)
    name = run_of(ctx, d, mname)
    run = ctx.folder(d, "models", name)
    grid = grid_methods(ds, mname, exp)
    with sharing_models():      # one model, its functions traced once for the three stores
        run_saliency(run, ctx.folder(d, "maps", name), scfg, exp.methods, progress=False, log=_quiet)
        if exp.validation:
            run_saliency(run, ctx.folder(d, "maps", f"{name}-val"), vcfg, exp.methods, progress=False, log=_quiet)
        if grid:
            run_saliency(run, ctx.folder(d, "maps", f"{name}-every"), every, ",".join(grid), progress=False, log=_quiet)
    return name


def _localization_dirs(ctx, d):
    return [ctx.folder(d, "baselines", r, "predictions", "test") for r in localization_order(ctx, d)]


def score(ctx, d, mname):
    """Utility against the average mask and the chosen localization network; pointwise detection
    against every localization network (Table 1 reports the chosen one)."""
    from .. import baselines  # noqa: F401  (registers the localization networks' tasks)
    from ..experiments.scoring import score_store
    from ..runs import TASKS

    ds = ctx.study.datasets[d]
    exp = ds.experiments
    scfg, every, _ = map_configs(ctx, d, mname)
    locs = _localization_dirs(ctx, d) if ds.localization is not None else []
    task = TASKS.get(localization_kind(ds)) if locs else None
    results = ctx.folder(d, "results")
    name = run_of(ctx, d, mname)
    if exp.utility:
        high = f",{task.usage(locs[0])}" if locs else ""
        score_store(ctx.folder(d, "maps", name), results / f"score-{name}", baselines=f"avg{high}", cfg=scfg,
                    parts=("utility",), validation=ctx.folder(d, "maps", f"{name}-val") if exp.validation else None,
                    log=_quiet)
    if grid_methods(ds, mname, exp):
        highs = "".join(f",{task.usage(p)}" for p in locs if task.usage(p).startswith("boxes:"))
        score_store(ctx.folder(d, "maps", f"{name}-every"), results / f"pointwise-{name}", baselines=f"avg{highs}",
                    cfg=every, parts=("pointwise",), log=_quiet)
    return ""


def faithfulness(ctx, d, mname):
    """ROAD, deletion and insertion of every method and control of the test positives' maps."""
    from ..experiments.faithfulness import run_faithfulness

    scfg = map_configs(ctx, d, mname)[0]
    name = run_of(ctx, d, mname)
    run_faithfulness(ctx.folder(d, "maps", name), ctx.folder(d, "results") / f"faithfulness-{name}", scfg,
                     log=_quiet)
    return ""


def randomization_config(ctx, d, order, smooth):
    ds = ctx.study.datasets[d]
    exp = ds.experiments
    extra = {"randomization.n_images": exp.randomization_images or exp.images, "randomization.seed": ctx.study.seed,
             "randomization.order": order}
    if smooth:
        extra.update({"randomization.check": "smprt", "randomization.smooth_samples": smooth})
    if order == "top-down" and not smooth:       # [A]'s run: the map experiments' settings
        return map_configs(ctx, d, exp.mapped)[0]
    return job_config(ctx.study, d, _model_spec(ctx, d, exp.mapped), extra)


def randomization_folder(order, smooth, exp):
    if smooth:
        return f"randomization-smprt-{order}"
    return "randomization" if order == "top-down" else f"randomization-{order}"


def randomize(ctx, d, order, smooth):
    from ..experiments.randomization import run_randomization

    exp = ctx.study.datasets[d].experiments
    cfg = randomization_config(ctx, d, order, smooth)
    run = ctx.folder(d, "models", run_of(ctx, d, exp.mapped))
    run_randomization([run], ctx.folder(d, "results", randomization_folder(order, smooth, exp)), cfg, exp.methods,
                      progress=False, log=_quiet)
    return ""


def compare(ctx, d, kind):
    """data-randomization (vs the permuted twin), repeatability (vs its replicate, with the
    localization networks' heatmaps as the high baseline), reproducibility (vs the other
    architecture, the same baseline)."""
    from ..experiments.repeatability import run_compare

    ds = ctx.study.datasets[d]
    exp = ds.experiments
    main = run_of(ctx, d, exp.mapped)
    other = {"data-randomization": lambda: twin_name(exp.mapped),
             "repeatability": lambda: replicates_of(ctx, d, exp.mapped)[0],
             "reproducibility": lambda: run_of(ctx, d, exp.reproducibility)}[kind]()
    heatmaps = None
    if kind != "data-randomization" and ds.localization is not None and len(localization_names(ctx.study, ds)) >= 2:
        # the high baseline: two localization networks' heatmaps (the two of lowest validation loss)
        heatmaps = [p / "maps" for p in _localization_dirs(ctx, d)[:2]]
    scfg = map_configs(ctx, d, exp.mapped)[0]
    run_compare([ctx.folder(d, "models", main), ctx.folder(d, "models", other)], ctx.folder(d, "results", kind), scfg,
                exp.methods, baseline_maps=heatmaps, progress=False, log=_quiet)
    return f"{main} vs {other}"


def result_dirs(ctx):
    dirs = []
    for d in ctx.study.datasets:
        dirs += [p for p in (ctx.folder(d, "results"), ctx.folder(d, "models"), ctx.folder(d, "baselines"))
                 if p.exists()]
    return dirs


def roles(ctx):
    """What the report matches the papers' figures by: per data set, its kind, its id in the
    tables, its folders, the mapped run, its replicate, the reproducibility run and the chosen
    localization network (`report.published`)."""
    from ..runs import read_card

    out = []
    for d, ds in ctx.study.datasets.items():
        exp = ds.experiments
        if not ctx.folder(d, "models").is_dir():
            continue
        mapped = run_of(ctx, d, exp.mapped)
        card = read_card(ctx.folder(d, "models", mapped)) or {}
        summary = prepared_dir(ctx, d) / "summary.json"
        root = json.loads(summary.read_text()).get("root", "") if summary.is_file() else ""
        locs = localization_order(ctx, d)
        out.append({"name": d, "kind": ds.kind, "dataset": ((card.get("data") or {}).get("manifest_sha256") or "")[:12],
                    "results": ctx.folder(d, "results"), "models": ctx.folder(d, "models"),
                    "baselines": ctx.folder(d, "baselines"), "mapped": (exp.mapped, mapped),
                    "replicate": (replicates_of(ctx, d, exp.mapped) or [None])[0],
                    "reproducibility": run_of(ctx, d, exp.reproducibility) if exp.reproducibility else None,
                    "localization": (locs or [None])[0], "localizations": locs,
                    "synthetic": bool(root) and (Path(root) / "synth_info.json").is_file()})
    return out


def report(ctx):
    from ..report import build_report

    published = roles(ctx) if ctx.study.report.published else None
    return str(build_report(result_dirs(ctx), ctx.folder("report"), posthoc=ctx.study.stats.posthoc,
                            min_images=ctx.study.stats.min_images, test=ctx.study.stats.test,
                            alpha=ctx.study.stats.alpha, log=_quiet,
                            published=published))
