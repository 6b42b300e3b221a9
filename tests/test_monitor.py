"""The training loop's early-stopping and reduce-on-plateau rules, on scripted scores."""

import math

import pytest

from cxrsal.training.monitor import Monitor


def run(monitor, scores):
    out = []
    for epoch, score in enumerate(scores, 1):
        improved, lr = monitor.update(epoch, score)
        out.append((improved, lr, monitor.state["stopped_early"]))
        if monitor.state["stopped_early"]:
            break
    return out


def test_max_mode_stops_after_patience_epochs_without_gain():
    m = Monitor("max", patience=2, lr=1e-3)
    got = run(m, [0.6, 0.7, 0.7, 0.65, 0.9])
    # an equal score is no gain; the second epoch without one stops (0.9 never seen)
    assert [g[0] for g in got] == [True, True, False, False] and got[-1][2]
    assert m.state["best"] == 0.7 and m.state["best_epoch"] == 2


def test_min_mode_nan_never_improves():
    m = Monitor("min", patience=5, lr=1e-3)
    run(m, [1.0, math.nan, 0.5, math.nan])
    assert m.state["best"] == 0.5 and m.state["best_epoch"] == 3 and m.state["wait"] == 1


def test_plateau_cuts_the_rate_and_restarts_its_count_but_not_patience():
    m = Monitor("min", patience=10, lr=1e-2, plateau_patience=2, plateau_factor=0.1, min_lr=5e-4)
    got = run(m, [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6])
    # after epochs 3 and 5 the rate is cut (1e-2 -> 1e-3 -> floor 5e-4); at the floor, no more cuts
    assert [g[1] for g in got] == [None, None, pytest.approx(1e-3), None, pytest.approx(5e-4), None, None]
    assert m.state["wait"] == 6 and not m.state["stopped_early"]


def test_state_round_trips_for_resume():
    a = Monitor("max", patience=3, lr=1e-3, plateau_patience=1)
    run(a, [0.5, 0.4])
    b = Monitor("max", patience=3, lr=1e-3, plateau_patience=1, state=a.state)
    assert run(b, [0.3, 0.2]) == [(False, pytest.approx(1e-5), False), (False, pytest.approx(1e-6), True)]
    with pytest.raises(ValueError, match="max or min"):
        Monitor("up", patience=1, lr=1)
