"""The method registry's contract, checked for every registered method (a new method's file is
picked up here with no edit): batched maps equal maps computed one image at a time, bit for bit
with the seeded noise, and processed maps are finite and in [0, 1]."""

import keras
import numpy as np
import pytest

from cxrsal.config import Config, load_config, to_dict
from cxrsal.errors import CxrsalError
from cxrsal.models import build_model
from cxrsal.saliency import METHODS, ModelAdapter, compute_maps, ordered, parse_methods, study_methods

from helpers import images, small_cnn

# [A] Table 2's eight methods and [B]'s WILDCAT class map, in [A]'s table order
STUDY = ["grad", "sg", "ig", "sig", "gcam", "xrai", "gbp", "ggcam", "wildcat"]


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)     # weights independent of the tests run before
    wildcat = build_model("resnet18", "wildcat", (32, 32, 1), output_stride=8, num_maps=2)
    return {"plain": small_cnn(activation="relu"), "wildcat": wildcat}


@pytest.mark.parametrize("name", ordered())
def test_batched_equals_one_at_a_time(models, name):
    method = METHODS.get(name)
    model = models["wildcat" if method.needs_wildcat else "plain"]
    x = images(3, size=model.input_shape[1], seed=4)
    truth = (images(3, size=model.input_shape[1], seed=9) > 0.7).astype(np.float32)   # for the oracle control
    kw = lambda i=slice(None): {"truth": truth[i]} if method.needs_truth else {}
    adapter = ModelAdapter(model, batch_size=4)
    raw, processed = compute_maps(adapter, x, name, seed=3, indices=[5, 6, 7], **kw())
    alone = [compute_maps(ModelAdapter(model, batch_size=4), x[i:i + 1], name, seed=3, indices=[5 + i],
                          **kw(slice(i, i + 1))) for i in range(3)]
    np.testing.assert_array_equal(raw, np.concatenate([a[0] for a in alone]))
    np.testing.assert_array_equal(processed, np.concatenate([a[1] for a in alone]))
    assert processed.shape == (3, *x.shape[1:3])
    assert np.isfinite(processed).all() and processed.min() >= 0 and processed.max() <= 1
    assert processed.max() == 1     # these maps are not constant: min-max scaling reaches 1


def test_the_registry_is_the_only_list():
    assert study_methods() == STUDY
    assert ordered()[:4] == ["grad", "sg", "ig", "sig"] and set(STUDY) < set(ordered())
    assert parse_methods("study", has_wildcat=False) == STUDY[:-1]
    assert parse_methods("all", has_wildcat=True) == ordered()
    assert parse_methods(None, has_wildcat=True) == STUDY
    assert parse_methods("wildcat,grad", has_wildcat=True) == ["grad", "wildcat"]
    with pytest.raises(CxrsalError, match="no WILDCAT head"):
        parse_methods("wildcat", has_wildcat=False)
    assert parse_methods("controls", has_wildcat=False) == ["edge", "random", "oracle"]
    assert parse_methods("study,controls", has_wildcat=False) == STUDY[:-1] + ["edge", "random", "oracle"]
    assert parse_methods("all", has_wildcat=False) == [m for m in ordered() if m != "wildcat"]
    with pytest.raises(CxrsalError, match=r"--methods 'lime': valid choices: study, controls, all, grad, sg"):
        parse_methods("grad,lime", has_wildcat=True)


def test_smoothing_wraps_any_method():
    sg, sig = METHODS.get("sg"), METHODS.get("sig")
    assert sg.base.name == "grad" and sig.base.name == "ig"
    # parameters: the smoothing ones plus the wrapped method's
    assert set(sig.defaults) == {"samples", "noise", "magnitude"} | set(METHODS.get("ig").defaults)
    assert sig.evaluations(sig.resolve({"samples": 3, "steps": 7})) == 21


def test_config_fields_come_from_the_methods():
    # every declared field is a key of the saliency section, with its method's default
    cfg = Config()
    for name in ordered():
        method = METHODS.get(name)
        for param, key in method.config.items():
            assert cfg.lookup(key) == method.defaults[param], (name, key)
    cfg = load_config(overrides=["saliency.ig_steps=10", "saliency.samples=3"])
    assert cfg.method_params("sig") == {"samples": 3, "noise": 0.15, "magnitude": True, "steps": 10,
                                        "baseline": "black"}
    assert cfg.method_params("ig") == {"steps": 10, "baseline": "black"} and cfg.saliency.ig_steps == 10
    written = to_dict(cfg)["saliency"]
    assert written["ig_steps"] == 10 and written["xrai_steps"] == 100 and "params" not in written
    with pytest.raises(Exception, match="unknown key 'saliency.ig_step'; valid keys .* ig_steps"):
        load_config(overrides=["saliency.ig_step=10"])
    with pytest.raises(Exception, match="saliency.samples must be an integer >= 1, got 'many'"):
        load_config(overrides=["saliency.samples=many"])
