"""Cascading randomization (cxrsal.experiments.randomization): exactly the right weights change,
seeds, BatchNorm validity, the GradCAM finding of [A] on a trained synthetic model, resumption,
the orders and sMPRT / eMPRT, the similarity maps and Spearman of |maps|, and the table's values
recomputed with scikit-image and SciPy. Repeatability (compare): tests/test_repeatability.py."""

import hashlib

import keras
import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy, spearmanr

import cxrsal.experiments.randomization as rnd
from cxrsal.config import load_config
from cxrsal.data.prepare import prepare
from cxrsal.data.synth import synth
from cxrsal.errors import ConfigError, CxrsalError
from cxrsal.experiments.randomization import (apply_weights, comparable, rank_map, run_randomization, similarity_map,
                                              step_weights, steps_of)
from cxrsal.experiments.repeatability import run_compare
from cxrsal.models import backbone_blocks, build_model
from cxrsal.models.layers import GrayToBackbone
from cxrsal.saliency import normalize, reduce_2d
from cxrsal.training.fit import train
from helpers import quiet, sk_ssim, stored_map


@pytest.fixture(scope="module")
def model_and_blocks():
    keras.utils.set_random_seed(0)
    model = build_model("resnet18", "classification", (32, 32, 1))
    # make every variable distinct from its initial value (BN moving variance included)
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.uniform(0.1, 0.2, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model, backbone_blocks(model, "resnet18")


def layer_values(model):
    return {l.name: [np.array(w) for w in l.get_weights()] for l in model.layers}


@pytest.mark.parametrize("init", ["truncated-normal", "layer"])
def test_cascade_changes_exactly_the_top_blocks(model_and_blocks, init):
    model, blocks = model_and_blocks
    trained = [np.array(w) for w in model.get_weights()]
    before = layer_values(model)
    work = keras.models.clone_model(model)
    steps = steps_of(blocks, order="top-down", all_blocks=True, arch="resnet18")
    assert [s for s, _ in steps] == ["logits", "conv5", "conv4", "conv3", "conv2", "stem"]
    x = np.random.default_rng(1).random((2, 32, 32, 1)).astype(np.float32)
    for k, (name, randomized) in enumerate(steps, start=1):
        assert randomized == [b for b, _ in blocks][:k]
        apply_weights(work, trained, step_weights(model, blocks, randomized, init=init, sigma=0.01, seed=3))
        after = layer_values(work)
        changed = {n for b, layers in blocks if b in randomized for n in layers}
        for lname, values in before.items():
            for v0, v1 in zip(values, after[lname]):
                if lname in changed:
                    assert not np.array_equal(v0, v1), (name, lname)
                else:
                    assert np.array_equal(v0, v1), (name, lname)      # bit-identical
        bn = [l for l in work.layers if isinstance(l, keras.layers.BatchNormalization) and l.name in changed]
        assert all((np.array(l.moving_variance) > 0).all() for l in bn)
        assert np.isfinite(np.asarray(work(x))).all()
    assert layer_values(model).keys() == before.keys()
    for lname, values in layer_values(model).items():      # the trained model is untouched
        assert all(np.array_equal(a, b) for a, b in zip(values, before[lname]))


def test_independent_randomizes_one_block_at_a_time(model_and_blocks):
    model, blocks = model_and_blocks
    steps = steps_of(blocks, order="independent", all_blocks=False, arch="resnet18")
    assert steps == [("logits", ["logits"]), ("conv5", ["conv5"]), ("conv4", ["conv4"]), ("conv3", ["conv3"]),
                     ("conv2", ["conv2"])]
    values = step_weights(model, blocks, ["conv4"], init="truncated-normal", sigma=0.01, seed=0)
    conv4 = {n for b, layers in blocks if b == "conv4" for n in layers}
    assert {p.split("/")[0] for p in values} == {n for n in conv4 if model.get_layer(n).weights}


def test_inception_default_steps_stop_at_mixed1():
    model = build_model("inceptionv3", "classification", (75, 75, 1))
    names = [s for s, _ in steps_of(backbone_blocks(model, "inceptionv3"), order="top-down", all_blocks=False,
                                     arch="inceptionv3")]
    assert names == ["logits"] + [f"mixed{i}" for i in range(10, 0, -1)]


def test_reproducible_by_seed(model_and_blocks):
    model, blocks = model_and_blocks
    a = step_weights(model, blocks, ["logits", "conv5"], init="truncated-normal", sigma=0.02, seed=5)
    b = step_weights(model, blocks, ["logits", "conv5"], init="truncated-normal", sigma=0.02, seed=5)
    c = step_weights(model, blocks, ["logits", "conv5"], init="truncated-normal", sigma=0.02, seed=6)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a if not k.endswith("moving_variance"))
    kernel = a["conv5_block1_1_conv/kernel"]
    assert np.abs(kernel).max() <= 0.04 and 0.005 < kernel.std() < 0.02     # truncated at 2 sigma


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def blob_detector(size):
    """A model that finds bright blobs by construction (no training, so the same numbers on any
    CPU): a centre-surround 5x5 filter of the grey image in channel 0 of `conv2`, passed on by
    `conv5`'s centre tap, and a logit that reads only that channel. Its GradCAM map is the
    blob response; channels 1-3 carry fixed textures the logit ignores. Layer names follow
    ResNet's, so the cascade randomizes logits, conv5, conv2."""
    keras.utils.set_random_seed(0)
    x = keras.Input((size, size, 1), name="image")
    p = GrayToBackbone("tf", name="preprocess")(x)
    h = keras.layers.Conv2D(4, 5, padding="same", activation="relu", name="conv2_block1_1_conv")(p)
    f = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv5_block1_1_conv")(h)
    f = keras.layers.Identity(name="features")(f)
    z = keras.layers.Dense(1, name="logit")(keras.layers.GlobalAveragePooling2D(name="avg_pool")(f))
    model = keras.Model(x, keras.layers.Activation("sigmoid", name="score")(z))
    rng = np.random.default_rng(0)
    k2 = rng.normal(0, 0.2, (5, 5, 3, 4))
    ring = -np.ones((5, 5)) / 16
    ring[1:4, 1:4] = 1 / 9                                       # bright centre, darker surround
    k2[..., 0] = ring[..., None] / 3
    k5 = rng.normal(0, 0.2, (3, 3, 4, 4))
    k5[..., 0] = 0
    k5[1, 1, 0, 0] = 1.0                                         # channel 0 passed on unchanged
    model.get_layer("conv2_block1_1_conv").set_weights([k2.astype(np.float32), np.zeros(4, np.float32)])
    model.get_layer("conv5_block1_1_conv").set_weights([k5.astype(np.float32), np.zeros(4, np.float32)])
    model.get_layer("logit").set_weights([np.array([[1.0], [0.0], [0.0], [0.0]], np.float32),
                                          np.zeros(1, np.float32)])
    return model


@pytest.fixture(scope="module")
def analytic_run(tmp_path_factory):
    """A `cxrsal train` run directory on synthetic RSNA at 64 px whose checkpoint is replaced by
    `blob_detector` (a real run's files, so randomize loads it as any run)."""
    base = tmp_path_factory.mktemp("analytic")
    synth("rsna", base / "data", 120, seed=11, image_size=128)
    prepare(load_config(options={"data.root": str(base / "data"), "data.size": 64,
                                 "data.split": [0.5, 0.2, 0.3]}), base / "run", progress=False, log=quiet)
    cfg = load_config(overrides=["model.arch=resnet18", "train.epochs=1", "pipeline.batch_size=16"])
    train(cfg, base / "run", base / "model", log=quiet, verbose=0)
    blob_detector(64).save(base / "model" / "checkpoints" / "best.keras")
    return base / "model"


def test_gradcam_fails_to_survive_randomization(analytic_run, tmp_path):
    """[A]'s finding on a model whose GradCAM points at the lesions by construction: fully
    randomized maps fall below the similarity of two different images' trained maps."""
    best = analytic_run / "checkpoints" / "best.keras"
    digest = sha(best)
    cfg = load_config(overrides=["saliency.positives_only=true", "saliency.split=test"])
    table, curves, thr, verdict = run_randomization([analytic_run], tmp_path / "r", cfg, "gcam", progress=False,
                                                    log=quiet)
    v = verdict.set_index("method").loc["gcam"]
    # measured here: randomized 0.008, threshold 0.150; the margin is wide and the model has no
    # trained weights, so no CPU's float rounding can close it
    assert v.similarity == "ssim" and v.check == "MPRT top-down"
    assert v.randomized < v.threshold - 0.1 and v.randomized < v.threshold / 4 and v.result == "PASS"
    ssim = curves[(curves.metric == "ssim") & (curves.method == "gcam")].sort_values("step")
    assert ssim["mean"].iloc[0] == pytest.approx(1.0)          # the trained step against itself
    assert list(ssim.step_name) == ["trained", "logits", "conv5", "conv2"]
    n_pos = int((pd.read_csv(analytic_run.parent / "run" / "manifest.csv").query("split == 'test'").label == 1).sum())
    assert table.image_id.nunique() == n_pos                    # every test positive by default ([A])
    assert (tmp_path / "r" / "fig3a.png").stat().st_size > 1000
    assert sha(best) == digest                                  # never modified on disk
    again = run_randomization([analytic_run], tmp_path / "r2", cfg, "gcam", progress=False, log=quiet)
    pd.testing.assert_frame_equal(again[1], curves)             # reproducible


def test_a_dead_model_gives_no_verdict(analytic_run, tmp_path):
    """The blob detector with its logit reading nothing (weights 0): every trained map is constant,
    so the degradation threshold has no pair to rest on. The randomized maps differ (the logit is
    re-initialised), and before, a threshold of 1.0 from the constant maps made that a PASS; now
    the verdict, eMPRT and Table 2 say "undefined", with the reason."""
    import shutil

    from cxrsal.stats.study import run_stats

    dead = tmp_path / "dead"
    shutil.copytree(analytic_run, dead)
    model = blob_detector(64)
    model.get_layer("logit").set_weights([np.zeros((4, 1), np.float32), np.zeros(1, np.float32)])
    model.save(dead / "checkpoints" / "best.keras")
    cfg = load_config(overrides=["saliency.positives_only=true", "saliency.split=test"])
    table, _, thr, verdict = run_randomization([dead], tmp_path / "results" / "r", cfg, "grad,gcam",
                                               progress=False, log=quiet)
    n = table.image_id.nunique()
    trained = table[(table.step == 0) & (table.metric == "ssim")]
    assert n >= 5 and trained.constant.all()                  # what makes the case: every trained map flat
    assert not table[(table.step == table.step.max()) & (table.metric == "ssim")].constant.all()
    for method in ("grad", "gcam"):
        t = thr.set_index("method").loc[method]
        assert np.isnan(t.threshold) and t.reason == f"trained maps constant on {n} of {n} images"
        v = verdict.set_index("method").loc[method]
        assert v.result == "undefined" and t.reason in v.reason
    ssim = table[(table.metric == "ssim") & (table.step > 0)]
    assert ssim.value.isna().all() and set(ssim.undefined) <= {"trained map constant", "both maps constant"}
    emprt = pd.read_csv(tmp_path / "results" / "r" / "emprt.csv").set_index("method")
    # constant trained maps have a histogram entropy of 0: every rise is relative to 0, undefined
    assert set(emprt.result) == {"undefined"} and (emprt.trained.isna() | (emprt.trained == 0)).all()
    res = run_stats([tmp_path / "results"], tmp_path / "stats", log=quiet)
    t2 = res["table2"].set_index("method")
    assert set(t2["trained vs randomized"]) == {"undefined"}
    assert set(res["tests"].decision) == {"undefined"}
    constant = res["constant"].set_index("method")
    assert (constant.constant >= n).all()


def test_killed_run_resumes_at_its_step(trained_classifier, tmp_path, monkeypatch):
    cfg = load_config(overrides=["saliency.split=val", "saliency.samples=2", "randomization.n_images=4"])
    ref = run_randomization([trained_classifier], tmp_path / "ref", cfg, "grad,sg", progress=False, log=quiet)
    real = rnd.apply_weights
    calls = []

    def dies_at_step_three(*a):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(rnd, "apply_weights", dies_at_step_three)
    with pytest.raises(KeyboardInterrupt):
        run_randomization([trained_classifier], tmp_path / "run", cfg, "grad,sg", progress=False, log=quiet)
    monkeypatch.setattr(rnd, "apply_weights", real)
    done = sorted(p.name for p in (tmp_path / "run" / "maps").glob("*/*"))
    assert done[:2] == ["step-00-trained", "step-01-logits"]
    res = run_randomization([trained_classifier], tmp_path / "run", cfg, "grad,sg", progress=False, log=quiet)
    pd.testing.assert_frame_equal(res[0], ref[0])


def test_bottom_up_reverses_the_cascade_and_ends_at_the_same_model(model_and_blocks):
    model, blocks = model_and_blocks
    down = steps_of(blocks, order="top-down", all_blocks=True, arch="resnet18")
    up = steps_of(blocks, order="bottom-up", all_blocks=True, arch="resnet18")
    assert [s for s, _ in up] == ["stem", "conv2", "conv3", "conv4", "conv5", "logits"]
    assert up[1] == ("conv2", ["stem", "conv2"])
    # the fully randomized model is the same whichever the order: each block's values depend on
    # (seed, block, layer) only
    a = step_weights(model, blocks, down[-1][1], init="truncated-normal", sigma=0.01, seed=2)
    b = step_weights(model, blocks, up[-1][1], init="truncated-normal", sigma=0.01, seed=2)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(Exception, match="valid choices: top-down, bottom-up, independent"):
        steps_of(blocks, order="sideways", all_blocks=True, arch="resnet18")


def test_orders_on_the_blob_detector(analytic_run, tmp_path):
    """Bottom-up randomizes conv2 first, then up to the logits; the last step of both orders is
    one model, so its maps are bit-identical."""
    from cxrsal.saliency.store import MapStore

    runs = {}
    for order in ("top-down", "bottom-up"):
        cfg = load_config(overrides=["saliency.positives_only=true", "saliency.split=test",
                                     "randomization.n_images=6", f"randomization.order={order}"])
        runs[order] = run_randomization([analytic_run], tmp_path / order, cfg, "grad,gcam", progress=False,
                                        log=quiet)
    up = runs["bottom-up"][1]
    up = up[(up.metric == "ssim") & (up.method == "gcam")].sort_values("step")
    assert list(up.step_name) == ["trained", "conv2", "conv5", "logits"]
    down = runs["top-down"][1]
    down = down[(down.metric == "ssim") & (down.method == "gcam")].sort_values("step")
    assert list(down.step_name) == ["trained", "logits", "conv5", "conv2"]
    a = MapStore(next((tmp_path / "top-down" / "maps").glob("*/step-03-conv2")))
    b = MapStore(next((tmp_path / "bottom-up" / "maps").glob("*/step-03-logits")))
    for i in a.ids("gcam"):
        assert np.array_equal(a.load("gcam", i)["raw"], b.load("gcam", i)["raw"])
    assert runs["bottom-up"][3].check.iloc[0] == "MPRT bottom-up"
    import json
    assert json.loads((tmp_path / "bottom-up" / "randomization.json").read_text())["order"] == "bottom-up"
    # each order is its own sanity check beside [A]'s (Table 2's "trained vs randomized"), eMPRT too
    from cxrsal.stats.study import run_stats

    res = run_stats([tmp_path / "top-down", tmp_path / "bottom-up"], tmp_path / "stats", log=quiet)
    sanity = res["sanity"].set_index("method")
    assert list(sanity.columns[2:]) == ["MPRT top-down", "eMPRT top-down", "MPRT bottom-up", "eMPRT bottom-up",
                                        "constant maps"]
    tests = res["tests"].set_index(["question", "method"])
    # the final steps are one model: the same maps, so both orders' verdicts agree
    assert sanity.loc["gcam", "MPRT top-down"] == sanity.loc["gcam", "MPRT bottom-up"] == \
        res["table2"].set_index("method").loc["gcam", "trained vs randomized"]
    assert tests.loc[("MPRT bottom-up", "gcam"), "estimate"] == pytest.approx(
        tests.loc[("trained vs randomized", "gcam"), "estimate"])
    # the report: a "Sanity checks" section with the table, one sentence per check, one curve per
    # order and one eMPRT figure per order; figures scale to the page width
    from cxrsal.report import build_report

    page = build_report([tmp_path / "top-down", tmp_path / "bottom-up"], tmp_path / "report", log=quiet).read_text()
    sanity_html = page[page.index("<h2 id='sanity'>"):page.index("<h2>Statistical tests</h2>")]
    assert "MPRT bottom-up" in sanity_html and "eMPRT top-down" in sanity_html and "PASS = " in sanity_html
    for key in ("fig3a_randomization", "randomization_mprt_bottom_up", "emprt_mprt_top_down",
                "emprt_mprt_bottom_up"):
        assert f"<figure id='{key}'>" in sanity_html and (tmp_path / "report" / "figures" / f"{key}.png").exists()
    assert "img{max-width:100%;height:auto}" in page
    emprt = pd.read_csv(tmp_path / "bottom-up" / "emprt.csv", keep_default_na=False).set_index("method")
    for m in ("grad", "gcam"):
        assert tests.loc[("eMPRT bottom-up", m), "decision"] == emprt.loc[m, "result"]
    # the randomized blob detector's GradCAM maps are all zero (ReLU of a negative sum): one bin,
    # a histogram entropy of 0, a relative rise of exactly -1 on every image: a defined FAIL
    assert emprt.loc["gcam", "undefined"] == 0 and emprt.loc["gcam", "result"] == "FAIL"
    assert emprt.loc["gcam", "randomized"] == 0.0 and emprt.loc["gcam", "rise"] == -1.0
    assert emprt.loc["grad", "n"] == 6 and emprt.loc["grad", "result"] in ("PASS", "FAIL")
    assert set(emprt.complexity) == {"histogram"} and set(emprt.bins.astype(str)) == {"100"}
    # the choices beside the sanity table: each folder's check, similarity and eMPRT's complexity
    assert "Choices of the checks, per result folder:" in sanity_html
    assert "eMPRT bottom-up: entropy of the histogram of the raw map&#x27;s values, 100 bins" in sanity_html


def test_smprt_with_one_copy_is_mprt_decided_by_spearman(analytic_run, tmp_path):
    """sMPRT averages every map over N copies of the input, the last of them the input itself (the
    authors' code): N = 1 is MPRT, map for map, whatever the noise. Its verdict is Spearman's of
    |maps| against a Spearman threshold, SSIM's alongside (MPRT's own verdict)."""
    from cxrsal.saliency.store import MapStore

    base = ["saliency.positives_only=true", "saliency.split=test", "randomization.n_images=6", "saliency.samples=3"]
    mprt = run_randomization([analytic_run], tmp_path / "mprt", load_config(overrides=base), "grad,sg,gcam",
                             progress=False, log=quiet)
    smprt = run_randomization([analytic_run], tmp_path / "smprt", load_config(
        overrides=base + ["randomization.check=smprt", "randomization.order=top-down",
                          "randomization.smooth_samples=1"]), "grad,sg,gcam", progress=False, log=quiet)
    pd.testing.assert_frame_equal(smprt[0], mprt[0])
    verdict = smprt[3].set_index(["similarity", "method"])
    assert set(smprt[3].check) == {"sMPRT top-down"} and list(smprt[3].similarity.unique()) == ["spearman", "ssim"]
    table, thr = mprt[0], smprt[2].set_index(["metric", "method"])
    for m in ("grad", "sg", "gcam"):
        # Spearman decides: the mean fully randomized Spearman against the mean Spearman of pairs of
        # images; a constant randomized map (GradCAM's here) has no ranks: below 5 defined, undefined
        last = table[(table.metric == "spearman") & (table.step == table.step.max()) & (table.method == m)].value
        last = last.dropna()
        expected = ("undefined" if len(last) < 5 else
                    "PASS" if last.mean() < thr.loc[("spearman", m), "threshold"] else "FAIL")
        assert verdict.loc[("spearman", m), "result"] == expected
        assert verdict.loc[("ssim", m), "result"] == mprt[3].set_index("method").loc[m, "result"]   # alongside
    from cxrsal.stats.study import run_stats

    sanity = run_stats([tmp_path / "smprt"], tmp_path / "stats", log=quiet)["sanity"].set_index("method")
    assert list(sanity.columns[2:]) == ["sMPRT top-down", "constant maps"]      # eMPRT only of plain maps
    for m in ("grad", "sg", "gcam"):
        assert sanity.loc[m, "sMPRT top-down"] == verdict.loc[("spearman", m), "result"]
    for step in (tmp_path / "mprt" / "maps").glob("*/step-*"):
        a, b = MapStore(step), MapStore(tmp_path / "smprt" / "maps" / step.parent.name / step.name)
        assert b.params("sg")["smoothing"] == {"samples": 1, "noise": 0.1, "last_copy": "input"}
        assert "smoothing" not in a.params("sg")
        for m in ("grad", "sg", "gcam"):
            for i in a.ids(m):
                assert np.array_equal(a.load(m, i)["raw"], b.load(m, i)["raw"])


def test_smprt_defaults_are_the_authors():
    """--check smprt: 50 copies at noise 0.1 of the image's range, bottom-up; either can be set;
    copies without smprt (or smprt without copies) are refused, naming both keys."""
    cfg = load_config(overrides=["randomization.check=smprt"]).randomization
    assert (cfg.order, cfg.smooth_samples, cfg.smooth_noise) == ("bottom-up", 50, 0.1)
    cfg = load_config(overrides=["randomization.check=smprt", "randomization.order=independent",
                                 "randomization.smooth_samples=8"]).randomization
    assert (cfg.order, cfg.smooth_samples) == ("independent", 8)
    assert (load_config().randomization.order, load_config().randomization.smooth_samples) == ("top-down", 0)
    for bad in (["randomization.smooth_samples=8"], ["randomization.check=smprt", "randomization.smooth_samples=0"]):
        with pytest.raises(ConfigError, match="randomization.check.*randomization.smooth_samples"):
            load_config(overrides=bad)


def test_spearman_threshold_is_the_mean_over_its_pairs():
    """The Spearman degradation threshold against a slow loop of SciPy's spearmanr over the same
    pairs of distinct images."""
    from cxrsal.metrics import degradation_threshold

    maps = np.abs(np.random.default_rng(5).normal(size=(6, 64)))
    rho = lambda a, b: spearmanr(a, b).statistic
    mean, pairs, _ = degradation_threshold(maps, pairs_per_image=7, seed=3, similarity=rho, return_pairs=True)
    assert len(pairs) == 42 and (pairs[:, 0] != pairs[:, 1]).all()
    assert mean == pytest.approx(np.mean([spearmanr(maps[i], maps[j]).statistic for i, j in pairs]))


def test_smprt_map_is_the_mean_over_noisy_inputs(analytic_run):
    """NoiseAveraged against a slow loop: the plain mean of the method's maps of each copy, the
    noise drawn as SmoothGrad draws it (base.image_noise from the image's generator), the last
    copy noiseless."""
    from cxrsal.runs import Run
    from cxrsal.saliency.adapter import ModelAdapter
    from cxrsal.saliency.base import METHODS, image_noise, noise_rng
    from cxrsal.saliency.smooth import NoiseAveraged

    model = Run(analytic_run).model("best")
    adapter = ModelAdapter(model, batch_size=8, input_channels=3)
    images = adapter.lift(np.random.default_rng(0).random((2, 64, 64, 1)).astype(np.float32))
    cls = np.zeros(2, int)
    got = NoiseAveraged(METHODS.get("grad"), 3, 0.2).compute(adapter, images, cls, [noise_rng(7, i) for i in (0, 1)])
    expected = []
    for i in (0, 1):
        draws = image_noise(noise_rng(7, i), images[i], 3, 0.2)
        draws[-1] = 0          # the last copy is the input itself (the authors' code)
        maps = [METHODS.get("grad").compute(adapter, (images[i] + d)[None], cls[:1], None)[0] for d in draws]
        expected.append(np.mean(np.asarray(maps, np.float64), axis=0))
    np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-5, atol=1e-7)


def test_data_randomization_gradcam_passes_and_reaches_table2(analytic_run, tmp_path):
    """Adebayo et al.'s data randomization test: the blob detector (GradCAM points at the lesions
    by construction) against a ResNet-18 trained on permuted labels until it fits them. Measured
    here: the permuted model fits in 7 epochs (training AUC 0.96 on its labels, test AUC 0.40);
    GradCAM SSIM 0.015 against a threshold of 0.150. A model of random labels has no reason to
    find the blobs, and the margin is ten-fold."""
    import json

    from cxrsal.runs import read_card
    from cxrsal.stats.study import run_stats

    from click.testing import CliRunner

    from cxrsal.cli.main import cli

    data = analytic_run.parent / "run"
    r = CliRunner().invoke(cli, ["train", "--arch", "resnet18", "--data", str(data), "--epochs", "25", "--lr", "0.001",
                                 "--batch-size", "16", "--permute-labels", "0", "--quiet", "--set", "train.patience=25",
                                 "--set", "train.fit_auc=0.9"])
    assert r.exit_code == 0, r.output
    assert "training AUC on the permuted labels" in r.output.splitlines()[-1]
    (data / "models" / "resnet18-classification-seed0-permuted0").rename(tmp_path / "permuted")
    card = read_card(tmp_path / "permuted")
    assert card["label_permuted"] == {"seed": 0, "fit_auc": 0.9}
    fit = card["metrics"]["train_auc_permuted"]
    assert fit >= 0.9 and card["metrics"]["best_train_auc"] == pytest.approx(fit)
    assert card["metrics"]["epochs_run"] < 25                   # stopped once it fitted
    # the labels it learnt are the training labels permuted: the same prevalence, another order
    from cxrsal.data.pipeline import PreparedSplit
    from cxrsal.training.classifier import permuted_labels
    true = PreparedSplit(data, "train").labels
    perm = permuted_labels(true, 0)
    assert sorted(perm) == sorted(true) and not np.array_equal(perm, true)

    out = tmp_path / "results" / "data-randomization"
    ccfg = load_config(overrides=["saliency.positives_only=true", "saliency.split=test"])
    table, summary = run_compare([analytic_run, tmp_path / "permuted"], out, ccfg, "gcam", progress=False, log=quiet)
    v = pd.read_csv(out / "verdicts.csv").set_index("method").loc["gcam"]
    assert v.ssim < v.threshold - 0.05 and v.ssim < v.threshold / 2 and v.result == "PASS"
    assert json.loads((out / "compare.json").read_text())["check"] == "data randomization"
    assert read_card(tmp_path / "permuted")["label_permuted"]["seed"] == 0

    res = run_stats([tmp_path / "results"], tmp_path / "stats", log=quiet)
    t2 = res["table2"].set_index("method")
    assert t2.loc["gcam", "data randomization"] == "PASS"
    assert t2.loc["gcam", "repeatability vs 0.5"] == "no data"      # not a repeatability question
    assert res["sanity"].set_index("method").loc["gcam", "data randomization"] == "PASS"
    assert "data randomization" in (tmp_path / "stats" / "tables.md").read_text()


def test_similarity_maps_and_spearman_of_absolute_values():
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 1, (10, 10, 3))
    stored = {"raw": raw, "processed": normalize(reduce_2d(raw, channels=True))[0]}
    np.testing.assert_array_equal(similarity_map(stored, True, "processed"), stored["processed"])
    signed = raw.sum(-1)
    np.testing.assert_allclose(similarity_map(stored, True, "raw"),
                               (signed - signed.min()) / (signed.max() - signed.min()))
    np.testing.assert_allclose(comparable(raw, True), similarity_map(stored, True, "raw"))
    with pytest.raises(CxrsalError, match="similarity.maps 'both'"):
        similarity_map(stored, True, "both")
    # Spearman ranks |raw map|: a map and its negation correlate perfectly, as [A] intends
    other = {"raw": -raw}
    a, b = rank_map(stored, True).ravel(), rank_map(other, True).ravel()
    assert spearmanr(a, b).statistic == pytest.approx(1.0)
    assert spearmanr(signed.ravel(), (-signed).ravel()).statistic == pytest.approx(-1.0)


# a randomized map may be constant (no ranking): SciPy warns and gives NaN, which the table must hold too
@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_randomization_ssim_and_spearman_match_skimage_and_scipy(trained_classifier, tmp_path):
    """The table's SSIM, Spearman and eMPRT complexity, recomputed from the stored map files with
    scikit-image and SciPy."""
    cfg = load_config(overrides=["saliency.split=val", "randomization.n_images=3", "saliency.batch_size=8"])
    table, *_ = run_randomization([trained_classifier], tmp_path / "r", cfg, "grad,gcam", progress=False, log=quiet)
    stores = sorted((tmp_path / "r" / "maps").glob("*/step-*"))
    assert len(stores) == table.step.nunique() > 2
    checked = 0
    for row in table.itertuples():
        trained = stored_map(stores[0] / row.method / f"{row.image_id}.npz")
        step = stored_map(stores[row.step] / row.method / f"{row.image_id}.npz")
        if row.metric == "ssim":      # against a constant trained map: undefined (nothing to lose)
            expected = np.nan if trained[0].max() == trained[0].min() else sk_ssim(trained[0], step[0])
        elif row.metric == "complexity":   # eMPRT: entropy of the value histogram, 100 bins (scipy normalizes)
            raw = step[1].sum(-1) if step[1].ndim == 3 else step[1]
            expected = entropy(np.histogram(raw.ravel(), bins=100)[0])
        else:   # Spearman of |raw| (summed over channels first when the map has channels), docs/methods.md
            flat = lambda raw: np.abs(raw.sum(-1) if raw.ndim == 3 else raw).ravel()
            expected = spearmanr(flat(trained[1]), flat(step[1])).statistic
        if np.isnan(expected):
            assert np.isnan(row.value)
        else:
            assert row.value == pytest.approx(expected, abs=1e-6), row
            checked += 1
    assert checked >= len(table) // 2


def test_randomize_command_with_the_authors_checks(analytic_run, tmp_path):
    """As a user runs them: `--check smprt` at 2 copies (bottom-up, the check's own order) and an
    MPRT whose eMPRT bins by Sturges' rule; each prints its choices and records them."""
    import json

    from click.testing import CliRunner

    from cxrsal.cli.main import cli

    common = ["--model", str(analytic_run), "--methods", "grad,gcam", "--n-images", "6", "--quiet"]
    r = CliRunner().invoke(cli, ["randomize", *common, "--check", "smprt", "--smooth-samples", "2",
                                 "--out", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert ("sMPRT bottom-up: Spearman decides; SSIM alongside; every map the mean over 2 copies of the input "
            "(the authors': 50), 1 with noise of 0.1 x its range and the input itself") in r.output
    assert "(alongside)" in r.output and "eMPRT" not in r.output          # eMPRT: of plain maps only
    meta = json.loads((tmp_path / "s" / "randomization.json").read_text())
    assert meta["check"] == "sMPRT bottom-up" and meta["similarity"] == "spearman"
    assert meta["smoothing"] == {"samples": 2, "noise": 0.1, "last_copy": "input"}
    r = CliRunner().invoke(cli, ["randomize", *common, "--bins", "sturges", "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    assert "eMPRT top-down: entropy of the histogram of the raw map's values, bins by the sturges rule" in r.output
    emprt = pd.read_csv(tmp_path / "m" / "emprt.csv", dtype={"bins": str}).set_index("method")
    # 64 x 64 maps: n = 4096 pixels, ceil(log2 4096) + 1 = 13 bins (within 10..200)
    assert set(emprt.bins) == {"13"} and set(emprt.complexity) == {"histogram"}
    r = CliRunner().invoke(cli, ["randomize", *common, "--check", "mprt", "--smooth-samples", "2",
                                 "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "randomization.check" in r.output and not (tmp_path / "bad").exists()
