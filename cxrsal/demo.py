"""`cxrsal demo`: synthetic RSNA-format data, then the demo's study file (`configs/study_demo.yaml`)
run by `cxrsal study`: two replicates of one backbone, another backbone and a WILDCAT model (dilated
quarter-width ResNets: an 8 x 8 last map at 64 px) -> two RetinaNets (the localization network,
two seeds) -> all nine map types of the test positives, scored for utility against the average-mask
and detector baselines -> GradCAM / WILDCAT maps of every test image for pointwise detection ([B]:
negatives ranked too), validation maps for mIoU's threshold -> cascading randomization top-down
([A]) and bottom-up, eMPRT, the data randomization test (a twin trained on permuted labels) ->
repeatability / reproducibility (with the RetinaNets' heatmaps as the high baseline) -> statistics
-> report, which says which findings of [A] and [B] hold. Every job resumes.

`--size` scales the study file with `--set` overrides (`SIZES`); the jobs run side by side in worker
processes (`cxrsal.workers`), each running TensorFlow on one thread, so the tables do not depend
on how many there are (`--jobs`). `python benchmarks/demo_workers.py` measures one worker against
several."""

import time
from pathlib import Path

STUDY = Path(__file__).resolve().parents[1] / "configs" / "study_demo.yaml"
_M = "datasets.rsna.models."
_L = "datasets.rsna.localization."

SIZES = {
    # smallest: every stage runs (what the tests run); saliency batches of 4 for its 3 images:
    # every batch is padded to the full size (bit-for-bit maps), and 32 would compute 29 blank images
    "tiny": dict(n=60, image_size=128, set=[
        "datasets.rsna.settings.data.size=32", "experiments.images=3",
        f"{_M}resnet18.epochs=1", f"{_M}resnet34.epochs=1", f"{_M}resnet18-wildcat.epochs=2",
        f"{_M}resnet18-wildcat.settings.model.input_size=32",
        "settings.saliency.samples=2", "settings.saliency.ig_steps=3", "settings.saliency.xrai_steps=3",
        "settings.pipeline.batch_size=8", "settings.saliency.batch_size=4",
        f"{_L}epochs=1", f"{_L}settings.model.input_size=32",
        # the tiny RetinaNets as the demo always trained them: demo.yaml's anchors, no plateau
        f"{_L}settings.baseline.anchor_size=2.25", f"{_L}settings.train.plateau_patience=0"]),
    # the study file as it is: classifiers and WILDCAT at 64 px with output stride 8 (8 x 8 cells,
    # as [A]'s InceptionV3 at 299-320 px) and a quarter of ResNet's channels (a dilated map at full
    # width costs several times the compute of stride 16; a quarter of the channels cuts that to
    # about 1/16); RetinaNets at 64 px; 8 positive test images per map experiment
    "full": dict(n=200, image_size=256, set=[]),
    # finer and larger: full-width ResNets at output stride 8 (WILDCAT 12 x 12 at 96 px), 300
    # images, 12 per map experiment, RetinaNets of 30 epochs at 96 px
    "large": dict(n=300, image_size=256, set=[
        "experiments.images=12", *(f"{_M}{m}.settings.model.width=1.0" for m in ("resnet18", "resnet34",
                                                                                  "resnet18-wildcat")),
        f"{_M}resnet18.epochs=8", f"{_M}resnet34.epochs=8", f"{_M}resnet18-wildcat.epochs=16",
        f"{_M}resnet18-wildcat.settings.model.input_size=96",
        f"{_L}epochs=30", f"{_L}settings.model.input_size=96", f"{_L}settings.baseline.anchor_size=2.25"]),
}


def demo_overrides(out, size, seed):
    """The `--set` overrides that make the demo's study file the demo of `size` and `seed` in `out`."""
    return [f"datasets.rsna.root={Path(out) / 'data'}", f"seed={seed}", f"datasets.rsna.settings.data.seed={seed}",
            *SIZES[size]["set"]]


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
    data = out / "data"
    t0 = time.time()
    if not (data / "stage_2_train_labels.csv").exists():
        log(f"[demo {time.time() - t0:6.0f} s] synthetic RSNA data: {p['n']} images")
        synth("rsna", data, p["n"], seed=seed, image_size=p["image_size"])
    return run_study(STUDY, out, overrides=demo_overrides(out, size, seed), jobs=jobs, log=log, command="demo",
                     identity=identity)
