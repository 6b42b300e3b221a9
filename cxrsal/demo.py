"""`cxrsal demo`: synthetic data -> two replicates of one backbone, another backbone and a WILDCAT
model (dilated quarter-width ResNets: an 8 x 8 last map at 64 px) -> two
RetinaNets (the localization network, two seeds) -> all nine map types of the test positives,
scored for utility against the average-mask and detector baselines -> GradCAM / WILDCAT maps of
every test image for pointwise detection ([B]: negatives ranked too), validation maps for
mIoU's threshold -> cascading randomization top-down ([A]) and bottom-up, eMPRT, the data
randomization test (a twin trained on permuted labels) -> repeatability / reproducibility (with the RetinaNets' heatmaps as the high baseline) ->
statistics -> report, which says which findings of [A] and [B] hold. Every stage resumes.

The stages are jobs (`demo_jobs`) run side by side in worker processes (`cxrsal.workers`), each
as soon as what it needs exists: on 2 cores a model's training is mostly Python tracing Keras'
graphs on one core, so one process left the other core idle (`python benchmarks/demo_workers.py`
measures one worker against several). Each worker runs TensorFlow on one thread, so the tables do
not depend on how many there are (`--jobs`)."""

import time
from pathlib import Path

from .config import load_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"

SIZES = {
    # smallest: every stage runs (what the tests run)
    "tiny": dict(n=60, image_size=128, size=32, epochs=1, n_images=3, wildcat_input=32, model=["model.width=0.25"],
                 # saliency batches of 4 for its 3 images: every batch is padded to the full size
                 # (bit-for-bit maps), and 32 would compute 29 blank images
                 overrides=["saliency.samples=2", "saliency.ig_steps=3", "saliency.xrai_steps=3",
                            "pipeline.batch_size=8", "saliency.batch_size=4"],
                 retinanet=["train.epochs=1", "model.input_size=32"]),
    # the study at the demo's size: classifiers and WILDCAT at 64 px with output stride 8 (8 x 8
    # cells, as [A]'s InceptionV3 at 299-320 px) and a quarter of ResNet's channels (a dilated map
    # at full width costs several times the compute of stride 16; a quarter of the channels cuts
    # that to about 1/16); RetinaNets at 64 px (anchors scaled to its 8-20 px boxes); 8 positive
    # test images per map experiment. `python benchmarks/demo_workers.py` measures its time
    "full": dict(n=200, image_size=256, size=64, epochs=6, n_images=8, wildcat_input=64,
                 model=["model.width=0.25"], overrides=[],
                 retinanet=["train.epochs=10", "model.input_size=64", "baseline.anchor_size=1.75",
                            "train.plateau_patience=3"]),
    # finer and larger: full-width ResNets at output stride 8 (8 x 8 cells at 64 px, WILDCAT
    # 12 x 12 at 96 px), 300 images, 12 per map experiment, RetinaNets of 30 epochs at 96 px (whose
    # AUPRC 0.63 beats the average mask's 0.38 here)
    "large": dict(n=300, image_size=256, size=64, epochs=8, n_images=12, wildcat_input=96, model=[], overrides=[],
                  retinanet=["train.epochs=30", "model.input_size=96", "train.plateau_patience=3"]),
}


def _demo_config(extra):
    if not CONFIG.exists():
        from .errors import CxrsalError

        raise CxrsalError(f"{CONFIG} not found: the demo reads configs/demo.yaml from the source checkout; "
                          "install as the README says (pip install -e .)")
    return load_config(CONFIG, extra)


def _quiet(*_):
    pass


# The demo's jobs: module-level functions run in worker processes (cxrsal.workers); each returns
# the text its line in the log ends with. `p` is SIZES[size]; `out` the demo's folder.

def train_classifier(out, p, name, extra, epochs):
    from .training.fit import train

    mcfg = _demo_config(extra + [f"train.epochs={epochs}", *p["model"], *p["overrides"]])
    card = train(mcfg, out / "prepared", out / "models" / name, log=_quiet, verbose=0)
    fit = card["metrics"].get("train_auc_permuted")
    return (f"test AUC {card['metrics']['test_auc']:.3f}"
            + (f", training AUC on its permuted labels {fit:.3f}" if fit is not None else ""))


def train_detector(out, p, name, seed):
    from .baselines.predict import train_baseline

    dcfg = _demo_config(["baseline.kind=retinanet", f"train.seed={seed}", *p["retinanet"], *p["overrides"]])
    card = train_baseline(dcfg, out / "prepared", out / "baselines" / name, log=_quiet, verbose=0)
    return f"test AUC {card['metrics']['test_auc']:.3f}, {card['metrics']['test_boxes']} boxes"


def choose_classifier(out):
    """(main, twin): the replicate Table 1 reports (best validation AUC, as [B] chose) is the one
    whose maps the study computes; the other is its repeatability replicate."""
    from .stats.tables import chosen_runs

    main = chosen_runs([out / "models" / "resnet18-a", out / "models" / "resnet18-b"])[0]["run"]
    return main, "resnet18-b" if main == "resnet18-a" else "resnet18-a"


def order_detectors(out, names):
    """The RetinaNets' prediction folders, the one of lower validation loss first: the
    localization network of utility, as Table 1 chooses ([B]); both make the repeatability baseline."""
    from .runs import read_card

    loss = {n: read_card(out / "baselines" / n)["metrics"]["best_val_loss"] for n in names}
    return [out / "baselines" / n / "predictions" / "test" for n in sorted(names, key=lambda n: loss[n])]


def _map_configs(p, seed):
    scfg = _demo_config([f"saliency.limit={p['n_images']}", f"randomization.n_images={p['n_images']}",
                         f"compare.n_images={p['n_images']}", f"randomization.seed={seed}", *p["overrides"]])
    # pointwise detection ([B]) ranks every test image, negatives included: the cheap grid maps
    # of the whole test split, scored for pointwise detection only
    every = _demo_config(["saliency.positives_only=false", *p["overrides"]])
    # the validation split's maps, on which mIoU's threshold is tuned (CheXlocalize; never on test)
    vcfg = _demo_config([f"saliency.limit={p['n_images']}", "saliency.split=val", *p["overrides"]])
    return scfg, every, vcfg


# the two bookkeeping jobs (in the demo's own process): which replicate and which RetinaNet
CHOSEN, DETECTORS = "Table 1's resnet18 classifier", "localization network"
REPORT = "statistics and report"


def _maps_job(who):
    return f"saliency maps of {who} (test positives, validation split; {_grid(who)}: every test image)"


def _grid(name):
    return "gcam,wildcat" if name.endswith("wildcat") else "gcam"


def compute_maps(out, p, seed, name):
    """The study's maps of the test positives and of the validation split, the grid maps of every
    test image. Computed once: randomization's trained step and the comparisons copy these (the
    stores are listed in the model run, MapStore.reuse)."""
    from .saliency.runner import run_saliency, sharing_models

    scfg, every, vcfg = _map_configs(p, seed)
    model = out / "models" / name
    with sharing_models():      # one model, its functions traced once for the three stores
        run_saliency(model, out / "maps" / name, scfg, "study", progress=False, log=_quiet)
        run_saliency(model, out / "maps" / f"{name}-val", vcfg, "study", progress=False, log=_quiet)
        run_saliency(model, out / "maps" / f"{name}-every", every, _grid(name), progress=False, log=_quiet)
    return ""


def score_maps(out, p, seed, name, detectors):
    """Utility against the average mask and the chosen RetinaNet; pointwise detection against
    both RetinaNets (Table 1 reports the one chosen by validation loss)."""
    from .experiments.scoring import score_store

    scfg, every, _ = _map_configs(p, seed)
    results = out / "results"
    score_store(out / "maps" / name, results / f"score-{name}", baselines=f"avg,boxes:{detectors[0] / 'detections.csv'}",
                cfg=scfg, parts=("utility",), validation=out / "maps" / f"{name}-val", log=_quiet)
    every_box = ",".join(f"boxes:{d / 'detections.csv'}" for d in detectors)
    score_store(out / "maps" / f"{name}-every", results / f"pointwise-{name}", baselines=f"avg,{every_box}",
                cfg=every, parts=("pointwise",), log=_quiet)
    return ""


def randomize(out, p, seed, main, order):
    from .experiments.randomization import run_randomization

    if order == "top-down":
        cfg, folder = _map_configs(p, seed)[0], "randomization"
    else:
        cfg = _demo_config([f"randomization.n_images={p['n_images']}", f"randomization.seed={seed}",
                            f"randomization.order={order}", *p["overrides"]])
        folder = f"randomization-{order}"
    run_randomization([out / "models" / main], out / "results" / folder, cfg, "study", progress=False, log=_quiet)
    return ""


def compare(out, p, seed, kind, a, b, detectors=None):
    from .experiments.repeatability import run_compare

    scfg, _, _ = _map_configs(p, seed)
    heatmaps = [d / "maps" for d in detectors] if detectors else None
    run_compare([out / "models" / a, out / "models" / b], out / "results" / kind, scfg, "study",
                baseline_maps=heatmaps, progress=False, log=_quiet)
    return ""


def report(out):
    from .report import build_report

    return str(build_report([out / "results", out / "models", out / "baselines"], out / "report", log=_quiet))


def demo_jobs(out, p, seed):
    """The study as jobs (cxrsal.workers.Job), with their dependencies and estimated costs (relative
    seconds: only the order they give matters)."""
    from .workers import Job

    # dilated quarter-width ResNets (demo.yaml, SIZES): an 8 x 8 last map, so GradCAM and WILDCAT
    # can point at a lesion rather than a quadrant
    models = {
        "resnet18-a": (["model.arch=resnet18", f"train.seed={seed}"], 11),
        "resnet18-b": (["model.arch=resnet18", f"train.seed={seed + 1}"], 11),
        "resnet34": (["model.arch=resnet34", f"train.seed={seed}"], 17),
        "resnet18-wildcat": (["model.arch=resnet18", "model.head=wildcat", f"model.input_size={p['wildcat_input']}",
                              f"train.seed={seed}"], 17),
    }
    # the data randomization test's model: resnet18-a's settings on permuted training labels,
    # trained until it fits them (or twice the epochs)
    models["resnet18-permuted"] = (models["resnet18-a"][0] + [f"train.permute_labels={seed}",
                                                              f"train.patience={2 * p['epochs']}"], 17)
    jobs = []
    for name, (extra, cost) in models.items():
        # the permuted twin must fit noise; WILDCAT's top-k pooling learns slower than global pooling
        epochs = p["epochs"] * (2 if name.endswith(("permuted", "wildcat")) else 1)
        jobs.append(Job(f"train {name}", train_classifier, (out, p, name, extra, epochs), cost=cost))
    detectors = [f"retinanet-seed{seed + k}" for k in (0, 1)]
    for k, name in enumerate(detectors):
        jobs.append(Job(f"train {name} (localization network)", train_detector, (out, p, name, seed + k), cost=47))
    trained = {n: f"train {n}" for n in models} | {n: f"train {n} (localization network)" for n in detectors}
    jobs += [Job(CHOSEN, choose_classifier, (out,), deps=(trained["resnet18-a"], trained["resnet18-b"]), local=True),
             Job(DETECTORS, order_detectors, (out, detectors), deps=tuple(trained[n] for n in detectors),
                 local=True)]

    def main(r):
        return r[CHOSEN][0]

    for who, name, dep, cost in (("resnet18", main, CHOSEN, 19),
                                 ("resnet18-wildcat", lambda r: "resnet18-wildcat", trained["resnet18-wildcat"], 13)):
        jobs += [Job(_maps_job(who), compute_maps, lambda r, name=name: (out, p, seed, name(r)), deps=(dep,), cost=cost),
                 Job(f"score {who} (utility; pointwise detection)", score_maps,
                     lambda r, name=name: (out, p, seed, name(r), r[DETECTORS]), deps=(_maps_job(who), DETECTORS),
                     cost=2)]
    maps = _maps_job("resnet18")
    jobs += [
        Job("cascading randomization top-down ([A]; eMPRT from its maps)", randomize,
            lambda r: (out, p, seed, main(r), "top-down"), deps=(maps,), cost=27),
        Job("cascading randomization bottom-up", randomize, lambda r: (out, p, seed, main(r), "bottom-up"),
            deps=(maps,), cost=30),
        Job("data randomization test (vs resnet18-permuted)", compare,
            lambda r: (out, p, seed, "data-randomization", main(r), "resnet18-permuted"),
            deps=(maps, trained["resnet18-permuted"]), cost=9),
        Job("repeatability (vs its replicate)", compare,
            lambda r: (out, p, seed, "repeatability", *r[CHOSEN], r[DETECTORS]), deps=(maps, DETECTORS), cost=8),
        Job("reproducibility (vs resnet34)", compare,
            lambda r: (out, p, seed, "reproducibility", main(r), "resnet34", r[DETECTORS]),
            deps=(maps, DETECTORS, trained["resnet34"]), cost=13),
    ]
    jobs.append(Job(REPORT, report, (out,), deps=tuple(j.name for j in jobs), cost=5))
    return jobs


def run_demo(out, *, size="full", seed=0, jobs=None, log=print, progress=None):
    """The demo in `out` (resumes there); `jobs` worker processes (default: the CPUs, at most 8;
    the tables do not depend on it). Returns the report's path."""
    from .data.prepare import prepare
    from .data.synth import synth
    from .workers import default_workers, run_jobs

    p = SIZES[size]
    out = Path(out).resolve()
    workers = jobs or default_workers()
    t0 = time.time()
    stamp = lambda: f"[demo {time.time() - t0:6.0f} s]"      # noqa: E731
    times = []

    from .identity import claim

    claim(out, "demo", {"--size": size, "--seed": seed})
    data = out / "data"
    if not (data / "stage_2_train_labels.csv").exists():
        log(f"{stamp()} synthetic RSNA data: {p['n']} images")
        t = time.time()
        synth("rsna", data, p["n"], seed=seed, image_size=p["image_size"])
        times.append((f"synthetic RSNA data: {p['n']} images", time.time() - t))
    log(f"{stamp()} prepare")
    t = time.time()
    cfg = _demo_config([f"data.root={data}", f"data.size={p['size']}", f"data.seed={seed}"])
    prepare(cfg, out / "prepared", progress=progress, log=_quiet)
    times.append(("prepare", time.time() - t))

    def show(event, job, seconds, result):
        if event == "start":
            log(f"{stamp()} {job.name}")
        elif job.name == CHOSEN:
            log(f"{stamp()}   Table 1's resnet18 classifier: {result[0]} (best validation AUC); {result[1]} its "
                "replicate")
        elif job.name == DETECTORS:
            log(f"{stamp()}   localization network of utility: {result[0].parents[1].name} (lower validation loss)")
        elif job.name != REPORT:
            log(f"{stamp()}   done in {seconds:.0f} s: {job.name}" + (f": {result}" if result else ""))

    log(f"{stamp()} {workers} worker process{'es' if workers > 1 else ''} of one TensorFlow thread each (--jobs)")
    results, job_times = run_jobs(demo_jobs(out, p, seed), workers, log=show)
    times += [(name, s) for name, s in job_times if s > 0.05]
    width = max(len(t) for t, _ in times)
    wall = time.time() - t0
    busy = sum(s for _, s in times)
    log("\n".join(["stage times (the stages overlap on the workers):"]
                  + [f"  {t:<{width}}  {s:6.1f} s" for t, s in times]))
    log(f"demo finished in {wall / 60:.1f} min ({busy / 60:.1f} min of stage time; {workers} worker"
        f"{'s' if workers > 1 else ''})")
    log(f"report: {results[REPORT]}")
    return Path(results[REPORT])
