"""Maps are computed once (cxrsal.saliency.store): a store's identity (weights digest, data, size,
channels, method parameters) lets randomize's trained step and compare copy `cxrsal saliency`'s
maps; the stores a model run lists."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cxrsal.config import load_config
from cxrsal.experiments.randomization import run_randomization
from cxrsal.experiments.repeatability import run_compare
from cxrsal.saliency.base import METHODS
from cxrsal.saliency.runner import run_saliency
from cxrsal.saliency.store import STORES_FILE, MapStore, remembered, weights_digest
from cxrsal.runs import Run
from helpers import quiet, stored_map

NAMES = "grad,gcam"


def cfg(**extra):
    options = {"saliency.split": "val", "saliency.positives_only": True, "saliency.limit": 3,
               "compare.n_images": 3, "randomization.n_images": 3, "saliency.batch_size": 4}
    options.update(extra)
    return load_config(options=options)


def npz_bytes(store, method, image_id):
    return MapStore(store).file(method, image_id).read_bytes()


class Counter:
    """Counts the images a method computes (wraps the registered instance's `start`)."""

    def __init__(self, monkeypatch, names):
        self.images = {n: 0 for n in names}
        for n in names:
            method = METHODS.get(n)
            original = method.start

            def start(adapter, images, *args, _n=n, _original=original, **kw):
                self.images[_n] += len(images)
                return _original(adapter, images, *args, **kw)

            monkeypatch.setattr(method, "start", start)


def unlisted_copy(run, folder):
    """A copy of a model run that lists no map store: other tests' stores of the session's shared
    models cannot serve maps here, so what these tests count does not depend on which ran before."""
    path = Path(shutil.copytree(run, folder / "model"))
    (path / STORES_FILE).unlink(missing_ok=True)
    return path


@pytest.fixture(scope="module")
def classifier(trained_classifier, tmp_path_factory):
    return unlisted_copy(trained_classifier, tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="module")
def twin(classifier_twin, tmp_path_factory):
    """`classifier`'s twin (the same gradients, other weights), unlisted too."""
    return unlisted_copy(classifier_twin, tmp_path_factory.mktemp("twin"))


@pytest.fixture(scope="module")
def saliency_store(classifier, tmp_path_factory):
    out = tmp_path_factory.mktemp("reuse") / "maps"
    run_saliency(classifier, out, cfg(), NAMES, progress=False, log=quiet)
    return out


def test_weights_digest_is_the_values_not_the_file(classifier):
    a = Run(classifier).model("best")
    b = Run(classifier).model("best")
    assert weights_digest(a) == weights_digest(b)
    w = b.get_weights()
    w[0] = w[0] + np.float32(1e-3)
    b.set_weights(w)
    assert weights_digest(a) != weights_digest(b)


def test_saliency_store_is_listed_in_the_model_run(saliency_store, classifier):
    assert str(saliency_store.resolve()) in remembered(classifier)
    assert MapStore(saliency_store).meta["weights"] == weights_digest(Run(classifier).model("best"))


def test_compare_copies_the_maps_it_already_has(saliency_store, classifier, twin, tmp_path, monkeypatch):
    count = Counter(monkeypatch, ["grad", "gcam"])
    table, _ = run_compare([classifier, twin], tmp_path / "cmp", cfg(), NAMES, progress=False, log=quiet)
    # the classifier's maps are copied from its saliency store; only its twin's are computed
    assert count.images == {"grad": 3, "gcam": 3}
    ids = MapStore(saliency_store).ids("grad")
    store = next((tmp_path / "cmp" / "maps").glob("0-*"))
    for m in ("grad", "gcam"):
        assert MapStore(store).ids(m) == ids
        for i in ids:
            assert npz_bytes(store, m, i) == npz_bytes(saliency_store, m, i)
    # the twin's gradients are the classifier's: SSIM exactly 1 on every image, but where neither
    # map has structure (a constant GradCAM map of this tiny model: undefined, never 1)
    for row in table.itertuples():
        flat, _ = stored_map(store / row.method / f"{row.image_id}.npz")
        if flat.max() == flat.min():
            assert np.isnan(row.value) and row.undefined == "both maps constant"
        else:
            assert row.value == 1.0
    assert (table.method == "grad").sum() == 3 and (table[table.method == "grad"].value == 1.0).all()


def test_other_parameters_are_recomputed(saliency_store, classifier, twin, tmp_path, monkeypatch):
    count = Counter(monkeypatch, ["grad", "gcam"])
    run_compare([classifier, twin], tmp_path / "cmp", cfg(**{"saliency.target": "predicted"}), NAMES,
                progress=False, log=quiet)
    # another target: no store serves either model, each computes its 3 images per method
    assert count.images == {"grad": 6, "gcam": 6}


def test_randomization_trained_step_is_copied(saliency_store, classifier, tmp_path, monkeypatch):
    count = Counter(monkeypatch, ["grad"])
    run_randomization([classifier], tmp_path / "rnd", cfg(), "grad", progress=False, log=quiet)
    steps = sorted((tmp_path / "rnd" / "maps").glob("*/step-*"))
    trained, randomized = steps[0], steps[1:]
    assert trained.name.startswith("step-00") and randomized
    for i in MapStore(saliency_store).ids("grad"):
        assert npz_bytes(trained, "grad", i) == npz_bytes(saliency_store, "grad", i)
    assert count.images["grad"] == 3 * len(randomized)   # only the randomized steps computed


def test_shared_model_is_loaded_and_traced_once_with_the_same_maps(saliency_store, classifier, tmp_path,
                                                                     monkeypatch):
    from cxrsal.saliency.runner import sharing_models

    loads = []
    original = Run.model

    def model(self, *a, **kw):
        loads.append(self.path)
        return original(self, *a, **kw)

    monkeypatch.setattr(Run, "model", model)
    with sharing_models():
        with sharing_models():       # nested: the inner block's end keeps the outer one's model
            run_saliency(classifier, tmp_path / "a", cfg(), NAMES, progress=False, log=quiet)
        # another split and more images: the same checkpoint and adapter settings
        run_saliency(classifier, tmp_path / "b", cfg(**{"saliency.split": "test", "saliency.limit": 0}), NAMES,
                     progress=False, log=quiet)
        assert len(loads) == 1
        # a checkpoint replaced (as training does: a new file renamed over it) is loaded again
        best = Run(classifier).checkpoint("best")
        shutil.copyfile(best, tmp_path / "copy.keras")
        os.replace(tmp_path / "copy.keras", best)
        run_saliency(classifier, tmp_path / "d", cfg(), NAMES, progress=False, log=quiet)
        assert len(loads) == 2
    run_saliency(classifier, tmp_path / "c", cfg(), NAMES, progress=False, log=quiet)
    assert len(loads) == 3           # outside the block every call loads its own
    for name in NAMES.split(","):
        for image_id in MapStore(tmp_path / "a").ids(name):
            # bit for bit the maps of a run of its own
            assert npz_bytes(tmp_path / "a", name, image_id) == npz_bytes(saliency_store, name, image_id)
    assert len(MapStore(tmp_path / "b").ids("grad")) > len(MapStore(tmp_path / "a").ids("grad"))


def _remember_many(model_dir, folder, tag, n):
    from cxrsal.saliency.store import remember

    for i in range(n):
        store = Path(folder) / f"{tag}-{i}"
        store.mkdir()
        (store / "store.json").write_text("{}")
        remember(model_dir, store)


def test_stores_remembered_by_processes_side_by_side_are_all_listed(tmp_path):
    # the demo's jobs add their stores to one model run at once: a read-modify-write without the
    # lock loses some (measured without it: 230, 234 and 261 of the 400 kept in three runs)
    import multiprocessing

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_remember_many, args=(model_dir, tmp_path, tag, 200)) for tag in ("x", "y")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    listed = remembered(model_dir)
    assert len(listed) == len(set(listed)) == 400
