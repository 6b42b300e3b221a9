"""Control maps (edge, random, oracle) against references written here, their place in the
method registry, and the stats that judge them apart: their own fits, no post-hoc comparison,
controls.csv and the report's "Can these checks fail?"."""

import numpy as np
import pandas as pd
import pytest

from cxrsal.saliency import METHODS, ModelAdapter, compute_maps
from cxrsal.saliency.base import control_methods, is_control, parse_methods, study_methods
from cxrsal.stats.controls import apart, check_name, controls_table, split_controls, uninformative_checks

from helpers import images, small_cnn


def slow_sobel(img):
    """Sobel magnitude by a loop: the 3 x 3 kernels (smoothing [1, 2, 1] across, difference
    [-1, 0, 1] along), borders mirrored including the edge pixel (SciPy's "reflect")."""
    p = np.pad(np.asarray(img, np.float64), 1, mode="symmetric")
    diff, smooth = np.array([-1.0, 0.0, 1.0]), np.array([1.0, 2.0, 1.0])
    out = np.zeros(img.shape)
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            w = p[i:i + 3, j:j + 3]
            gy = float(np.sum(w * np.outer(diff, smooth)))      # along rows
            gx = float(np.sum(w * np.outer(smooth, diff)))      # along columns
            out[i, j] = np.hypot(gx, gy)
    return out


def slow_blur(mask, sd):
    """Gaussian blur by a loop: kernel exp(-x^2 / 2 sd^2) normalized, cut at 4 sd (SciPy's
    default truncation: radius int(4 sd + 0.5)), zero outside the image."""
    r = int(4 * sd + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sd) ** 2)
    k /= k.sum()
    h, w = mask.shape
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            s = 0.0
            for a in range(-r, r + 1):
                for b in range(-r, r + 1):
                    if 0 <= i + a < h and 0 <= j + b < w:
                        s += k[a + r] * k[b + r] * mask[i + a, j + b]
            out[i, j] = s
    return out


@pytest.fixture(scope="module")
def model():
    return small_cnn(size=16, activation="relu")


def test_controls_are_registered_apart_from_the_study():
    assert control_methods() == ["edge", "random", "oracle"]
    assert not set(control_methods()) & set(study_methods())
    assert parse_methods("study", has_wildcat=True) == study_methods()
    assert all(is_control(c) and not METHODS.get(c).study for c in control_methods())
    # expected verdicts live with each control, naming checks as the stats name them
    assert METHODS.get("edge").expected["MPRT"][0] == "FAIL"
    assert METHODS.get("oracle").expected["utility vs average mask"][0] == "PASS"
    assert METHODS.get("random").expected["repeatability vs 0.5"][0] == "FAIL"


def test_edge_is_the_sobel_magnitude_of_the_image(model):
    x = images(2, size=16, seed=3)
    raw, processed = compute_maps(model, x, "edge", input_channels=3)
    for k in range(2):
        np.testing.assert_allclose(raw[k], slow_sobel(x[k, ..., 0]), rtol=1e-5, atol=1e-6)
    assert processed.shape == (2, 16, 16)


def test_oracle_is_the_ground_truth_blurred(model):
    truth = np.zeros((2, 16, 16, 1), np.float32)
    truth[0, 3:7, 4:12] = 1
    truth[1, 10:15, 0:3] = 1
    raw, _ = compute_maps(model, images(2, size=16), "oracle", truth=truth, blur=1 / 8)   # sd 2 px
    for k in range(2):
        np.testing.assert_allclose(raw[k], slow_blur(truth[k, ..., 0], 2.0), rtol=1e-5, atol=1e-7)
    with pytest.raises(Exception, match="ground truth"):
        compute_maps(model, images(2, size=16), "oracle")


def test_random_follows_the_image_and_the_weights_only(model):
    x = images(3, size=16, seed=5)
    a = compute_maps(ModelAdapter(model, batch_size=4), x, "random")[0]
    alone = np.concatenate([compute_maps(ModelAdapter(model, batch_size=4), x[i:i + 1], "random", seed=i + 7)[0]
                            for i in range(3)])
    np.testing.assert_array_equal(a, alone)          # not the batch, not the noise seed
    assert not np.array_equal(a[0], a[1])              # another image, other noise
    other = small_cnn(size=16, seed=1, activation="relu")
    b = compute_maps(other, x, "random")[0]
    assert not np.array_equal(a, b)                    # other weights, other noise
    # uniform on [0, 1): mean 1/2, variance 1/12 (768 values: wide margins)
    assert abs(a.mean() - 0.5) < 0.05 and abs(a.var() - 1 / 12) < 0.02
    # and nothing of the image: its correlation with the image is near 0
    assert abs(np.corrcoef(a.ravel(), x[..., 0].ravel())[0, 1]) < 0.15


def test_check_names_match_the_tests_questions():
    assert check_name("trained vs randomized") == "MPRT" and check_name("MPRT bottom-up") == "MPRT"
    assert check_name("sMPRT bottom-up") == "sMPRT" and check_name("eMPRT top-down") == "eMPRT"
    assert check_name("repeatability vs 0.5") == "repeatability vs 0.5"


def _scores(seed=0, n=12):
    """AUPRC rows of two methods, the average mask and two controls over n images."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        base = rng.random()
        for method, shift in (("grad", 0.1), ("gcam", 0.0), ("baseline:avg", -0.05), ("oracle", 0.4),
                              ("random", -0.2)):
            rows.append(dict(image_id=f"i{i}", method=method, value=base + shift + 0.05 * rng.standard_normal()))
    return pd.DataFrame(rows)


def test_controls_never_move_the_methods_fit():
    from cxrsal.stats import mixed_model

    d = _scores()
    parts = list(apart(d, "baseline:avg"))
    assert set(parts[0].method) == {"grad", "gcam", "baseline:avg"}
    assert [set(p.method) for p in parts[1:]] == [{"random", "baseline:avg"}, {"oracle", "baseline:avg"}]
    alone = {r["level"]: r for r in mixed_model(d[~d.method.isin(["oracle", "random"])], reference="baseline:avg")}
    together = {r["level"]: r for p in apart(d, "baseline:avg") for r in mixed_model(p, reference="baseline:avg")}
    for m in ("grad", "gcam"):
        assert together[m]["estimate"] == pytest.approx(alone[m]["estimate"], abs=1e-12)
        assert together[m]["p_value"] == pytest.approx(alone[m]["p_value"], abs=1e-12)
    # each control in a fit of its own: its estimate is its mean difference to the baseline
    for c in ("oracle", "random"):
        diff = (d[d.method == c].value.to_numpy() - d[d.method == "baseline:avg"].value.to_numpy()).mean()
        assert together[c]["estimate"] == pytest.approx(diff, abs=1e-6)


def test_posthoc_leaves_the_controls_out():
    from cxrsal.stats.questions import posthoc_tests

    d = _scores().assign(dataset="ds", group="g")
    d = d[d.method != "baseline:avg"]
    post = posthoc_tests([({"dataset": "ds", "group": "g"}, "utility", "m", d)])
    named = set(post.group1) | set(post.group2) if len(post) else set()
    assert named == {"grad", "gcam"}


def _tests(rows):
    return pd.DataFrame([dict(dataset="ds", group="g", question=q, method=m, decision=v) for q, m, v in rows])


def test_controls_table_and_what_it_says():
    tests = _tests([("trained vs randomized", "grad", "PASS"), ("trained vs randomized", "edge", "PASS"),
                    ("trained vs randomized", "random", "PASS"), ("trained vs randomized", "oracle", "FAIL"),
                    ("utility vs average mask", "oracle", "PASS"), ("utility vs average mask", "random", "undefined")])
    c = controls_table(tests)
    got = {(r.check, r.control): (r.expected, r.observed, r.behaves) for r in c.itertuples()}
    assert got[("trained vs randomized", "edge")] == ("FAIL", "PASS", "no")
    assert got[("trained vs randomized", "random")] == ("PASS", "PASS", "yes")
    assert got[("trained vs randomized", "oracle")] == ("FAIL", "FAIL", "yes")
    assert got[("utility vs average mask", "oracle")] == ("PASS", "PASS", "yes")
    assert got[("utility vs average mask", "random")] == ("FAIL", "undefined", "not shown")
    assert ("utility vs average mask", "edge") not in got          # edge has no expected utility
    said = uninformative_checks(c)
    assert list(said) == [("ds", "g", "trained vs randomized")]
    assert "`edge` control got PASS where it must get FAIL" in said[("ds", "g", "trained vs randomized")]


def test_tables_show_the_controls_apart():
    from cxrsal.stats.text import markdown

    t = pd.DataFrame({"method": ["grad", "oracle", "gcam", "edge"], "x": [1, 2, 3, 4]})
    methods, controls = split_controls(t)
    assert list(methods.method) == ["grad", "gcam"] and list(controls.method) == ["oracle", "edge"]
    md = markdown(t)
    assert md.index("| gcam |") < md.index("Controls (") < md.index("| oracle |")
    assert split_controls(t[t.method.isin(["grad"])])[1] is None
