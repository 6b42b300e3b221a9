"""`cxrsal demo`: synthetic RSNA- and SIIM-format data, then the demo's study file
(`configs/study_demo.yaml`) run by `cxrsal study`, on each data set: two replicates of one backbone,
another backbone and a WILDCAT model (dilated quarter-width ResNets: an 8 x 8 last map at 64 px) ->
two localization networks (RetinaNets on RSNA's boxes, U-Nets on SIIM's masks, two seeds) -> all
nine map types of the test positives, scored for utility against the average-mask and
localization-network baselines -> GradCAM / WILDCAT maps of every test image for pointwise
detection ([B]: negatives ranked too) -> cascading randomization top-down ([A]) and eMPRT, sMPRT
on RSNA, the data randomization test (a twin trained on permuted labels) -> repeatability /
reproducibility (with the localization networks' heatmaps as the high baseline) -> statistics ->
report, which says which findings of [A] and [B] hold. Every
job resumes.

`--size` scales the study file with `--set` overrides (`SIZES`); the jobs run side by side in worker
processes (`cxrsal.workers`), each running TensorFlow on one thread, so the tables do not depend
on how many there are (`--jobs`). `python benchmarks/demo_workers.py` measures one worker against
several."""

import time
from pathlib import Path

STUDY = Path(__file__).resolve().parents[1] / "configs" / "study_demo.yaml"
DATASETS = ("rsna", "siim")


def _each(*settings):
    """`settings` ("models.resnet18.epochs=1", ...) for every data set of the demo."""
    return [f"datasets.{d}.{s}" for d in DATASETS for s in settings]


SIZES = {
    # smallest: every stage runs (what the tests run); saliency batches of 4 for its 3 images:
    # every batch is padded to the full size (bit-for-bit maps), and 32 would compute 29 blank images
    "tiny": dict(n=60, image_size=128, set=[
        *_each("settings.data.size=32", "models.resnet18.epochs=1", "models.resnet34.epochs=1",
               "models.resnet18-wildcat.epochs=2", "models.resnet18-wildcat.settings.model.input_size=32",
               "localization.epochs=1"),
        "experiments.images=3", "datasets.rsna.experiments.smprt=1",
        "experiments.validation=true",      # mIoU's validation maps: every stage runs
        "settings.saliency.samples=2", "settings.saliency.ig_steps=3", "settings.saliency.xrai_steps=3",
        "settings.faithfulness.fractions=[0.5]", "settings.faithfulness.steps=2",
        "settings.pipeline.batch_size=8", "settings.saliency.batch_size=4",
        "datasets.rsna.localization.settings.model.input_size=32",
        # the tiny RetinaNets as the demo always trained them: demo.yaml's anchors, no plateau
        "datasets.rsna.localization.settings.baseline.anchor_size=2.25",
        "datasets.rsna.localization.settings.train.plateau_patience=0",
        "datasets.siim.localization.settings.baseline.depth=2"]),
    # the study file as it is (see its comments)
    "full": dict(n=500, image_size=256, set=[]),
    # finer, and the methods as [A] ran them (SmoothGrad 25 samples, IG 25 steps, XRAI 100; 880 model
    # evaluations per image and state instead of 48: hours on a CPU, minutes on a GPU): full-width
    # ResNets at output stride 8 (WILDCAT 12 x 12 at 96 px), RetinaNets at 96 px
    "large": dict(n=500, image_size=256, set=[
        *_each(*(f"models.{m}.settings.model.width=1.0" for m in ("resnet18", "resnet34", "resnet18-wildcat")),
               "models.resnet18-wildcat.settings.model.input_size=96"),
        "settings.saliency.samples=25", "settings.saliency.ig_steps=25", "settings.saliency.xrai_steps=100",
        "settings.faithfulness.fractions=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]",
        "settings.faithfulness.steps=16",
        "datasets.rsna.localization.epochs=30", "datasets.rsna.localization.settings.model.input_size=96",
        "datasets.rsna.localization.settings.baseline.anchor_size=2.25"]),
}


def demo_overrides(out, size, seed):
    """The `--set` overrides that make the demo's study file the demo of `size` and `seed` in `out`."""
    return [*(f"datasets.{d}.root={Path(out) / 'data' / d}" for d in DATASETS), f"seed={seed}",
            *(f"datasets.{d}.settings.data.seed={seed}" for d in DATASETS), *SIZES[size]["set"]]


def run_demo(out, *, size="full", seed=0, jobs=None, log=print, progress=None):
    """The demo in `out` (resumes there); `jobs` worker processes (default: the CPUs, at most 8;
    the tables do not depend on it). Returns the report's folder."""
    from .data.synth import synth
    from .errors import CxrsalError
    from .identity import claim
    from .study import run_study

    if not STUDY.exists():
        raise CxrsalError(f"{STUDY} not found: the demo reads configs/study_demo.yaml from the source checkout; "
                          "install as the README says (pip install -e .)")
    p = SIZES[size]
    out = Path(out).resolve()
    identity = {"--size": size, "--seed": seed}
    claim(out, "demo", identity)        # before the data: another size or seed is refused untouched
    t0 = time.time()
    for d in DATASETS:       # each written whole or not at all (its CSVs last)
        if not (out / "data" / d / "synth_info.json").exists():
            log(f"[demo {time.time() - t0:6.0f} s] synthetic {d.upper()} data: {p['n']} images")
            synth(d, out / "data" / d, p["n"], seed=seed, image_size=p["image_size"])
    return run_study(STUDY, out, overrides=demo_overrides(out, size, seed), jobs=jobs, log=log, command="demo",
                     identity=identity)
