"""Every registry's names reach the command line (the option's choices or its help) and the
config's domains, so that adding a name is one registration; the registered utility metrics
agree with independent references; the help that lists them imports no heavy module."""

import click
import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from cxrsal import config_schema
from cxrsal.cli.main import cli
from cxrsal.config import schema
from cxrsal.metrics import UTILITY_METRICS, utility_metrics, utility_scores
from helpers import loaded_by

SCHEMA = schema()


def option(command, name):
    """The option (or argument) `name` of `cxrsal COMMAND`."""
    return next(p for p in cli.commands[command].params if p.name == name)


def help_of(command, name):
    """The help text of an option, as `cxrsal COMMAND --help` shows it."""
    ctx = click.Context(cli.commands[command], info_name=command)
    return option(command, name).get_help_record(ctx)[1]


def domain_of(key):
    return SCHEMA[key][2]


def choices(command, name):
    """The values an option or argument accepts: its Click choices, or its config key's domain."""
    param = option(command, name)
    if isinstance(param.type, click.Choice):
        return set(param.type.choices)
    domain = domain_of(param.type.key)
    return set(getattr(domain, "inner", domain).choices)     # an Optional's: the names besides null


# ---------------------------------------------------------------- names: CLI and config

def test_saliency_methods():
    from cxrsal.cli.options import MethodsType
    from cxrsal.saliency import METHODS

    for command in ("saliency", "randomize", "compare"):
        text = help_of(command, "methods")
        for name in METHODS.names():
            assert name in text, (command, name)
            assert MethodsType().convert(name, None, None) == name


def test_backbones():
    from cxrsal.models import BACKBONES

    text = help_of("train", "arch")
    arch = domain_of("model.arch")
    for name in BACKBONES.names():
        assert f" {name}," in text or f" {name}." in text, name
        assert arch.accepts(name)
    assert set(config_schema.ARCHS) == set(BACKBONES.names())
    assert not arch.accepts("resnet99")
    # the limits between keys name the backbones that have the option
    assert set(config_schema.DILATED_ARCHS) == {n for n in BACKBONES.names()
                                                if BACKBONES.get(n).output_strides != (32,)}
    assert set(config_schema.WIDTH_ARCHS) == {n for n in BACKBONES.names() if BACKBONES.get(n).widths}
    for name in BACKBONES.names():
        bb = BACKBONES.get(name)
        assert set(bb.randomization_skips) <= set(bb.block_order), name
        assert (bb.group is None) != (bb.block_groups is None), name     # one rule of blocks
    skipped = {s for n in BACKBONES.names() for s in BACKBONES.get(n).randomization_skips}
    assert all(s in help_of("randomize", "all_blocks") for s in skipped)


def test_heads():
    from cxrsal.models import HEADS

    text = help_of("train", "head")
    assert choices("train", "head") == set(HEADS.names()) == set(config_schema.HEADS)
    assert all(name in text for name in HEADS.names())


def test_utility_metrics_are_printed_by_name():
    # the localization metrics are what `cxrsal score` prints, by their labels; the command says so
    text = cli.commands["score"].help
    for m in utility_metrics(localization=True):
        assert m.label in text, m.name
    assert len({m.label for m in utility_metrics()}) == len(UTILITY_METRICS.names())
    assert len({m.order for m in utility_metrics()}) == len(UTILITY_METRICS.names())


def test_score_baselines():
    from cxrsal.experiments.score_baselines import METAVARS, SCORE_BASELINES, parse_baselines, score_baselines

    text = help_of("score", "baselines")
    domain = domain_of("score.baselines")
    assert set(config_schema.SCORE_BASELINE_ARGUMENTS) == set(SCORE_BASELINES.names())
    for b in score_baselines():
        assert b.syntax in text, b.prefix
        metavar, _ = config_schema.SCORE_BASELINE_ARGUMENTS[b.prefix]
        assert metavar == METAVARS.get(b.argument, ""), b.prefix
        written = f"{b.prefix}:x" if b.argument else b.prefix
        assert domain.accepts(written) and not domain.accepts(f"{b.prefix}:x" if not b.argument else b.prefix)
        assert b.method.startswith("baseline:")
    assert domain.accepts(",".join(f"{b.prefix}:x" if b.argument else b.prefix for b in score_baselines()))
    assert len({b.method for b in score_baselines()}) == len({b.label for b in score_baselines()}) \
        == len(SCORE_BASELINES.names())
    # [A]'s low baseline and its high ones (the localization networks)
    assert {b.method for b in score_baselines() if not b.high} == {"baseline:avg"}
    with pytest.raises(Exception, match="comma separated"):
        parse_baselines("nothing")


def test_score_baseline_arguments_are_checked(tmp_path):
    from cxrsal.errors import CxrsalError
    from cxrsal.experiments.score_baselines import parse_baselines

    (tmp_path / "det.csv").write_text("patientId,x,y,width,height,score\n")
    assert parse_baselines(f"avg,boxes:{tmp_path / 'det.csv'},seg:{tmp_path}") == [
        ("avg", None), ("boxes", str(tmp_path / "det.csv")), ("seg", str(tmp_path))]
    with pytest.raises(CxrsalError, match="is not a file"):
        parse_baselines(f"boxes:{tmp_path}")
    with pytest.raises(CxrsalError, match="is not a folder"):
        parse_baselines(f"seg:{tmp_path / 'det.csv'}")


def test_randomization_orders():
    from cxrsal.experiments.randomization import steps_of

    text = help_of("randomize", "order")
    assert choices("randomize", "order") == set(config_schema.ORDERS) == set(config_schema.ORDER_MEANINGS)
    blocks = [("logits", []), ("conv5", []), ("conv4", []), ("stem", [])]
    for order, meaning in config_schema.ORDER_MEANINGS.items():
        assert f"{order}: {meaning}" in text
    # every order has its steps, written out by hand from the meanings (ResNet-18 skips the stem)
    expected = {"top-down": [("logits", ["logits"]), ("conv5", ["logits", "conv5"]),
                             ("conv4", ["logits", "conv5", "conv4"])],
                "bottom-up": [("conv4", ["conv4"]), ("conv5", ["conv4", "conv5"]),
                              ("logits", ["conv4", "conv5", "logits"])],
                "independent": [("logits", ["logits"]), ("conv5", ["conv5"]), ("conv4", ["conv4"])]}
    assert {o: steps_of(blocks, order=o, all_blocks=False, arch="resnet18") for o in config_schema.ORDERS} == expected


def test_randomization_checks_and_emprt_bins():
    """--check names every check, what it means and the order and copies it sets; --bins every
    rule of the config's list, which is the one the complexity module reads."""
    from cxrsal.metrics import complexity

    text = help_of("randomize", "check")
    assert choices("randomize", "check") == set(config_schema.CHECKS) == set(config_schema.CHECK_DEFAULTS)
    for check, meaning in config_schema.CHECK_MEANINGS.items():
        assert f"{check}: {meaning}, {config_schema.CHECK_DEFAULTS[check]['order']}" in text
    assert "50 noisy copies" in text
    assert complexity.BIN_RULES == config_schema.BIN_RULES and complexity.COMPLEXITIES == config_schema.COMPLEXITIES
    bins = help_of("randomize", "bins")
    assert all(rule in bins for rule in config_schema.BIN_RULES) and "clipped to 10..200" in bins
    assert choices("randomize", "complexity") == {"histogram", "spatial"}


def test_localization_networks():
    from cxrsal import baselines  # noqa: F401  (registers the networks' tasks)
    from cxrsal.baselines.predict import KINDS
    from cxrsal.runs import CLASSIFICATION, TASKS

    networks = set(TASKS.names()) - {CLASSIFICATION}
    assert networks == set(KINDS) == set(config_schema.BASELINE_KINDS) == choices("train-baseline", "kind")


def test_posthoc_procedures():
    from cxrsal.stats import POSTHOC

    for command in ("stats", "report"):
        assert choices(command, "posthoc") == set(POSTHOC.names())
        text = help_of(command, "posthoc")
        assert all(f"{name}: {POSTHOC.get(name).meaning}" in text for name in POSTHOC.names())


def test_listing_them_imports_no_heavy_module():
    # every command's help lists registered names, yet loads no TensorFlow, Keras or statsmodels
    code = ("from click.testing import CliRunner; from cxrsal.cli.main import cli; "
            "bad = [c for c in cli.commands if CliRunner().invoke(cli, [c, '--help']).exit_code]; "
            "assert not bad, bad")
    assert loaded_by(code, ("tensorflow", "keras", "statsmodels")) == []


# ---------------------------------------------------------------- the utility metrics' values

MASK = np.array([[0, 1, 1, 0],
                 [0, 1, 0, 0],
                 [0, 0, 0, 1]], bool)
MAP = np.array([[0.1, 0.9, 0.4, 0.4],
                [0.2, 0.4, 0.9, 0.0],
                [0.3, 0.2, 0.1, 0.7]])


def first_maximum_in_mask(mask, smap):
    """The pointing game by hand: the first maximum in row-major order, a constant map a miss."""
    best, where = None, None
    for r in range(smap.shape[0]):
        for c in range(smap.shape[1]):
            if best is None or smap[r, c] > best:
                best, where = smap[r, c], (r, c)
    return float(smap.min() != smap.max() and mask[where])


def iou_by_hand(mask, smap, threshold):
    inter = union = 0
    for m, s in zip(mask.ravel(), smap.ravel()):
        inter += bool(m and s >= threshold)
        union += bool(m or s >= threshold)
    return inter / union


def trapezoid_reference(mask, smap):
    """[A]'s code: sklearn.metrics.auc over scikit-learn's precision-recall curve."""
    precision, recall, _ = precision_recall_curve(mask.ravel(), smap.ravel())
    return auc(recall, precision)


REFERENCES = {
    "auprc": lambda mask, smap: average_precision_score(mask.ravel(), smap.ravel()),
    "auprc_trapezoid": trapezoid_reference,
    "auroc": lambda mask, smap: roc_auc_score(mask.ravel(), smap.ravel()),
    "hit": first_maximum_in_mask,
    "iou": lambda mask, smap, threshold: iou_by_hand(mask, smap, threshold),
}


def test_every_metric_has_a_reference():
    assert set(REFERENCES) == set(UTILITY_METRICS.names())


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("smap", [MAP, np.round(MAP * 65535).astype(np.uint16), MAP[::-1, ::-1]],
                         ids=["float", "uint16", "flipped"])
def test_metric_against_its_reference(name, smap):
    m = UTILITY_METRICS.get(name)
    if m.tuned:
        for t in (0.0, 0.35, 0.9):
            unit = smap / 65535.0 if smap.dtype == np.uint16 else smap
            assert m.fn(MASK, unit, t) == pytest.approx(REFERENCES[name](MASK, unit, t), abs=1e-12)
    else:
        assert m.fn(MASK, smap) == pytest.approx(REFERENCES[name](MASK, smap), abs=1e-12)


def test_edge_cases():
    flat = np.full(MASK.shape, 0.5)
    assert UTILITY_METRICS.get("hit").fn(MASK, flat) == 0.0          # a constant map points nowhere
    assert np.isnan(UTILITY_METRICS.get("auroc").fn(np.ones_like(MASK), MAP))   # no pixel outside the mask


def test_scores_in_table_order_tuned_only_with_a_threshold():
    untuned = utility_scores(MASK, MAP)
    assert list(untuned) == [m.name for m in utility_metrics(tuned=False)]
    tuned = utility_scores(MASK, np.round(MAP * 100), threshold=0.35, unit_map=MAP)
    assert list(tuned) == [m.name for m in utility_metrics()]
    assert tuned["iou"] == iou_by_hand(MASK, MAP, 0.35)
    assert {k: v for k, v in tuned.items() if k != "iou"} == untuned
