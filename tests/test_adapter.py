"""ModelAdapter (cxrsal.saliency.adapter): memory that never stops a run (batch halving on
out-of-memory, `batch_size: auto`), the compiled / mixed-precision gradient paths against float32,
and gradients taken per input channel (the grey image replicated to the backbone's 3 channels,
noise drawn per channel) against NumPy loops. Training on several workers: tests/test_strategy.py."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from cxrsal.config import load_config
from cxrsal.runs import Run
from cxrsal.saliency import compute_maps, noise_rng, normalize
from cxrsal.saliency.adapter import ModelAdapter
from cxrsal.saliency.runner import run_saliency
from cxrsal.saliency.store import MapStore
from helpers import channel_model, images, quiet


def oom_above(fn, limit, calls):
    """`fn` that raises TensorFlow's out-of-memory error on batches larger than `limit`."""
    def wrapped(x, cls):
        calls.append(int(x.shape[0]))
        if x.shape[0] > limit:
            raise tf.errors.ResourceExhaustedError(None, None, f"OOM when allocating a batch of {x.shape[0]}")
        return fn(x, cls)
    return wrapped


def test_out_of_memory_halves_the_batch_and_loses_nothing(trained_classifier):
    model = Run(trained_classifier).model()
    x = np.random.default_rng(0).random((7, 32, 32, 3)).astype(np.float32)
    cls = np.ones(7, np.int32)
    reference = ModelAdapter(model, batch_size=2)
    y_ref, g_ref = reference.input_gradients(x, cls)
    said = []
    adapter = ModelAdapter(model, batch_size=8, log=said.append)
    calls = []
    adapter._input_grads = oom_above(adapter._input_grads, 2, calls)
    y, g = adapter.input_gradients(x, cls)
    assert calls[:3] == [8, 4, 2] and adapter.batch_size == 2
    # every image computed, in batches of 2 as the reference: the same numbers bit for bit
    assert np.array_equal(y, y_ref) and np.array_equal(g, g_ref)
    assert said == ["out of memory: saliency batch size now 4", "out of memory: saliency batch size now 2"]
    adapter._input_grads = oom_above(reference._input_grads, 0, [])
    with pytest.raises(Exception, match="out of memory with one image per batch"):
        adapter.input_gradients(x, cls)


def test_batch_size_auto_probes_down_to_what_fits(trained_classifier):
    adapter = ModelAdapter(Run(trained_classifier).model(), batch_size="auto")
    assert adapter.batch_size == 32                  # on a CPU, memory is not the limit
    calls = []
    adapter._input_grads = oom_above(adapter._input_grads, 64, calls)
    assert adapter.probe_batch_size(1024) == 64 and calls == [1024, 512, 256, 128, 64]
    assert load_config(overrides=["saliency.batch_size=auto"]).saliency.batch_size == "auto"
    with pytest.raises(Exception, match="saliency.batch_size must be an integer >= 1 or auto"):
        load_config(overrides=["saliency.batch_size=big"])


def test_a_run_interrupted_by_out_of_memory_completes_its_store(trained_classifier, tmp_path, monkeypatch):
    """The error in the middle of `cxrsal saliency`: the group is computed again at half the batch,
    and the store holds every map, equal to a run that never ran out of memory (same batch)."""
    import cxrsal.saliency.adapter as adapter_mod

    cfg = load_config(overrides=["saliency.limit=6", "saliency.batch_size=4", "saliency.group_size=2"])
    run_saliency(trained_classifier, tmp_path / "ref", load_config(
        overrides=["saliency.limit=6", "saliency.batch_size=2", "saliency.group_size=2"]), "grad,gcam",
        progress=False, log=quiet)
    real = adapter_mod.ModelAdapter._call
    state = {"calls": 0}

    def fails_once(self, fn, xb, cb, replicas):
        state["calls"] += 1
        if state["calls"] == 3:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM")
        return real(self, fn, xb, cb, replicas)

    monkeypatch.setattr(adapter_mod.ModelAdapter, "_call", fails_once)
    said = []
    run_saliency(trained_classifier, tmp_path / "maps", cfg, "grad,gcam", progress=False, log=said.append)
    assert "out of memory: saliency batch size now 2" in said
    a, b = MapStore(tmp_path / "ref"), MapStore(tmp_path / "maps")
    for m in ("grad", "gcam"):
        assert a.ids(m) == b.ids(m) and len(b.ids(m)) == 6
        for i in a.ids(m):
            assert np.array_equal(a.load(m, i)["raw"], b.load(m, i)["raw"])


@pytest.fixture
def nondeterministic():
    """XLA has no deterministic kernel for every gradient (MaxPool's): a process that trained with
    op determinism (train.deterministic) has it on; `cxrsal saliency` runs in its own process."""
    from tensorflow.python.framework import config   # the public API can only turn it on

    was = config.is_op_determinism_enabled()
    config.disable_op_determinism()
    yield
    if was:
        config.enable_op_determinism()


def test_jit_and_mixed_precision_maps_match_float32(trained_classifier, tmp_path, nondeterministic):
    """XLA-compiled gradients equal float32's to float rounding; bfloat16 forward/backward keeps
    the processed maps close and every image's AUPRC within 0.01 of float32's (the tolerance
    mixed precision must meet)."""
    from cxrsal.experiments.scoring import score_store

    base = ["saliency.limit=6", "saliency.positives_only=true", "saliency.ig_steps=5", "saliency.batch_size=8"]
    stores = {}
    for name, extra in (("float32", []), ("jit", ["saliency.jit_compile=true"]),
                        ("mixed", ["saliency.precision=mixed"])):
        run_saliency(trained_classifier, tmp_path / name, load_config(overrides=base + extra), "grad,ig,gcam",
                     progress=False, log=quiet)
        stores[name] = MapStore(tmp_path / name)
        score_store(tmp_path / name, tmp_path / f"score-{name}", parts=("utility",), log=quiet)
    auprc = {n: pd.read_csv(tmp_path / f"score-{n}" / "scores.csv").query("metric == 'auprc'")
             .set_index(["method", "image_id"]).value for n in stores}
    for m in ("grad", "ig", "gcam"):
        for i in stores["float32"].ids(m):
            ref = stores["float32"].load(m, i)
            jit = stores["jit"].load(m, i)
            np.testing.assert_allclose(jit["raw"], ref["raw"], rtol=1e-3, atol=1e-5 * np.abs(ref["raw"]).max())
            mixed = stores["mixed"].load(m, i)
            assert np.abs(mixed["processed"] - ref["processed"]).mean() < 0.05, (m, i)
    assert (auprc["mixed"] - auprc["float32"]).abs().max() < 0.01
    assert (auprc["jit"] - auprc["float32"]).abs().max() < 1e-3


# ---------------------------------------------------------------- gradients per input channel

TORCH_STD = np.array([0.229, 0.224, 0.225])
TORCH_MEAN = np.array([0.485, 0.456, 0.406])


def numpy_channel_gradients(model, image):
    """d logit / d x_c of the replicated [0, 1] image, by a slow loop over the conv (NumPy)."""
    return numpy_gradients_at(model, np.repeat(image, 3, axis=-1))


def numpy_gradients_at(model, x3):
    """d logit / d x_c at a 3-channel [0, 1] point (channels may differ): logit = v . mean_p
    relu(conv(torch-scaled x) + b), differentiated tap by tap."""
    kernel, bias = model.get_layer("conv").get_weights()
    v = model.get_layer("logit").get_weights()[0][:, 0]
    h, w = x3.shape[:2]
    pad = np.pad((x3 - TORCH_MEAN) / TORCH_STD, ((1, 1), (1, 1), (0, 0)))
    grad = np.zeros((h, w, 3))
    for i in range(h):
        for j in range(w):
            pre = (pad[i:i + 3, j:j + 3, :, None] * kernel).sum((0, 1, 2)) + bias
            for k in np.flatnonzero(pre > 0):
                for dy in range(3):
                    for dx in range(3):
                        y, x = i + dy - 1, j + dx - 1
                        if 0 <= y < h and 0 <= x < w:
                            grad[y, x] += v[k] / (h * w) * kernel[dy, dx, :, k] / TORCH_STD
    return grad


def test_grad_per_input_channel_equals_a_numpy_loop():
    model, x = channel_model(), images(2, size=8, seed=3)
    raw, processed = compute_maps(model, x, "grad")                    # default: input_channels 3
    assert raw.shape == (2, 8, 8, 3)
    for xi, got, proc in zip(x, raw, processed):
        ref = numpy_channel_gradients(model, xi)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
        # the processed map is sum over c of |d logit / d x_c|, not |sum over c|
        np.testing.assert_allclose(proc, normalize(np.abs(ref).sum(-1))[0], rtol=1e-4, atol=1e-5)
        assert not np.allclose(np.abs(ref).sum(-1), np.abs(ref.sum(-1)), rtol=1e-2)
    one, _ = compute_maps(model, x, "grad", input_channels=1)          # the grey input: sum of channels
    np.testing.assert_allclose(one[..., 0], raw.sum(-1), rtol=1e-4, atol=1e-6)


def test_smoothgrad_draws_its_noise_per_channel():
    model, x = channel_model(seed=1), images(2, size=8, seed=4)
    samples, noise = 3, 0.15
    raw, _ = compute_maps(model, x, "sg", seed=5, indices=[7, 8], samples=samples, noise=noise)
    for xi, got, index in zip(x, raw, [7, 8]):
        x3 = np.repeat(xi, 3, axis=-1)
        draws = noise_rng(5, index).normal(0.0, noise * (xi.max() - xi.min()), size=(samples, *x3.shape))
        assert not np.allclose(draws[..., 0], draws[..., 1])
        acc = np.zeros(x3.shape)
        for d in draws.astype(np.float32):
            # the gradient at a noisy 3-channel point: the loop above, channel by channel
            g = numpy_gradients_at(model, x3 + d)
            acc += g * g
        np.testing.assert_allclose(got, acc / samples, rtol=1e-3, atol=1e-7)
