"""Shared fixtures: small synthetic data sets in the Kaggle layouts (made once per session)."""

import shutil

import pytest

from cxrsal.config import load_config
from cxrsal.data.prepare import prepare
from cxrsal.data.synth import synth
import helpers


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from one random state: the weights of a model a test builds, and any
    unseeded draw, do not depend on which tests ran before it."""
    import keras

    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def rsna_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsna")
    synth("rsna", root, 40, seed=1, image_size=128)
    return root


@pytest.fixture(scope="session")
def siim_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("siim")
    synth("siim", root, 30, seed=2, image_size=128)
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """An annotated folder of 20 images in five encodings (PNG 8 and 16 bit, colour PNG, JPEG,
    DICOM), labels.csv and boxes.csv: `helpers.image_folder`. Tests link to it, never write in it."""
    return helpers.image_folder(tmp_path_factory.mktemp("folder"))


@pytest.fixture
def rsna_copy(rsna_root, tmp_path):
    """A private copy of the RSNA data that a test may damage."""
    dst = tmp_path / "rsna_copy"
    shutil.copytree(rsna_root, dst)
    return dst


@pytest.fixture(scope="session")
def tiny_run(rsna_root, tmp_path_factory):
    """The RSNA fixture prepared at 32 px, split 50:25:25."""
    base = tmp_path_factory.mktemp("tiny")
    cfg = load_config(options={"data.root": str(rsna_root), "data.size": 32, "data.workers": 1,
                               "data.split": [0.5, 0.25, 0.25]})
    prepare(cfg, base / "run", progress=False, log=lambda *_: None)
    return base / "run"


def _trained(tiny_run, tmp_path_factory, name, overrides):
    from cxrsal.training.fit import train

    out = tmp_path_factory.mktemp(name) / "model"
    train(load_config(overrides=overrides), tiny_run, out, log=lambda *_: None, verbose=0)
    return out


@pytest.fixture(scope="session")
def trained_classifier(tiny_run, tmp_path_factory):
    """resnet18 trained one epoch at 32 px: a real `cxrsal train` run directory."""
    return _trained(tiny_run, tmp_path_factory, "clf", ["model.arch=resnet18", "train.epochs=1",
                                                        "pipeline.batch_size=8"])


@pytest.fixture(scope="session")
def classifier_twin(trained_classifier, tmp_path_factory):
    """Another model whose maps are `trained_classifier`'s (compare refuses one model twice): a copy
    of its run with the logit's bias shifted, which changes no gradient; the weights digest differs."""
    import keras

    from cxrsal.runs import Run

    path = shutil.copytree(trained_classifier, tmp_path_factory.mktemp("twin") / "model")
    model = Run(path).model("best")
    bias = model.get_layer("logit").bias
    bias.assign(bias + 0.5)
    best = path / "checkpoints" / "best.keras"
    best.unlink()
    keras.models.save_model(model, best)
    return path


@pytest.fixture(scope="session")
def trained_wildcat(tiny_run, tmp_path_factory):
    """resnet18 + WILDCAT at 64 px (2x2 class maps), one epoch."""
    return _trained(tiny_run, tmp_path_factory, "wc", ["model.arch=resnet18", "model.head=wildcat",
                                                       "model.input_size=64", "train.epochs=1",
                                                       "pipeline.batch_size=8"])


@pytest.fixture(scope="session")
def gcam_store(trained_classifier, tmp_path_factory):
    """GradCAM maps of `trained_classifier` on its RSNA test split: a map store to score, overlay
    or damage (copy it first)."""
    from cxrsal.saliency.runner import run_saliency

    out = tmp_path_factory.mktemp("gcam-store") / "maps"
    run_saliency(trained_classifier, out, load_config(options={"saliency.batch_size": 8}), "gcam", progress=False,
                 log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def coco(image_folder, tmp_path_factory):
    """`helpers.coco_folder`: (its root, holding ann.json, and the lesion mask)."""
    return helpers.coco_folder(tmp_path_factory.mktemp("coco"), image_folder)
