"""Every setting has a declared domain: each config key (the saliency methods' parameters too) and
each command-line option. Values drawn outside a domain (Hypothesis), given as `--set` or as the
option, are one line on stderr naming the key or option, exit 2, and no output folder; values
inside are accepted."""

import json
import math
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxrsal import config
from cxrsal.cli.main import cli
from cxrsal.cli.options import KeyType, MethodsType
from cxrsal.config import CROSS_CHECKS, check_value, load_config, schema
from cxrsal.domains import AnyOf, Flag, Number, NumberText, OneOf, Optional, Seq, Text
from cxrsal.errors import ConfigError

SCHEMA = schema()
FUZZ = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ---------------------------------------------------------------- values inside and outside a domain

def inside(domain):
    """A strategy of values `domain` accepts."""
    if isinstance(domain, config._Arch):
        return st.sampled_from(config.ARCHS) | st.from_regex(r"external-[a-z0-9]{1,8}", fullmatch=True)
    if isinstance(domain, config._Baselines):
        part = st.sampled_from(["avg", "boxes:det.csv", "seg:maps"])
        return st.lists(part, max_size=3).map(",".join)
    if isinstance(domain, Number):
        lo = -1e6 if domain.lo is None else domain.lo
        hi = 1e6 if domain.hi is None else domain.hi
        if domain.integer:
            return st.integers(int(math.ceil(lo)) + domain.lo_open, int(math.floor(hi)) - domain.hi_open)
        return st.floats(lo, hi, exclude_min=domain.lo_open, exclude_max=domain.hi_open, allow_nan=False)
    if isinstance(domain, OneOf):
        return st.sampled_from(domain.choices)
    if isinstance(domain, NumberText):
        return st.sampled_from(domain.names) | inside(domain.number).map(str)
    if isinstance(domain, Text):
        text = st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1 if domain.nonempty else 0,
                       max_size=12)
        return text.filter(lambda t: t.strip() or not domain.nonempty)
    if isinstance(domain, Flag):
        return st.booleans()
    if isinstance(domain, Optional):
        return st.none() | inside(domain.inner)
    if isinstance(domain, AnyOf):
        return st.one_of(*(inside(d) for d in domain.domains))
    if isinstance(domain, Seq):
        size = dict(min_size=domain.length, max_size=domain.length) if domain.length else \
            dict(min_size=int(domain.nonempty), max_size=3)
        lists = st.lists(inside(domain.item), unique=domain.unique, **size)
        return lists.filter(lambda v: not domain.positive_total or sum(v) > 0)
    raise AssertionError(f"no strategy for {domain!r}")


def outside(domain):
    """A strategy of values `domain` refuses (of its type and of others)."""
    wrong = st.sampled_from([[1, 2], {"a": 1}])
    if isinstance(domain, config._Arch):
        return st.sampled_from(["resnet99", "external-", "DenseNet121", True, 3]) | wrong
    if isinstance(domain, config._Baselines):
        return st.sampled_from(["avg:x", "boxes", "boxes:", "seg", "retinanet", "avg,bogus", True]) | wrong
    if isinstance(domain, Number):
        bad = [st.sampled_from(["abc", True, float("nan"), float("inf")]), wrong]
        if domain.lo is not None:
            bad.append(st.floats(max_value=domain.lo, exclude_max=not domain.lo_open, allow_nan=False,
                                 allow_infinity=False).map(lambda v: int(math.floor(v)) if domain.integer else v)
                       .filter(lambda v: not domain.accepts(v)))
        if domain.hi is not None:
            bad.append(st.floats(min_value=domain.hi, exclude_min=not domain.hi_open, allow_nan=False,
                                 allow_infinity=False, max_value=1e12)
                       .map(lambda v: int(math.ceil(v)) if domain.integer else v)
                       .filter(lambda v: not domain.accepts(v)))
        if domain.integer:
            bad.append(st.sampled_from([1.5, 2.25]).filter(lambda v: not domain.accepts(v)))
        return st.one_of(*bad)
    if isinstance(domain, OneOf):
        return (st.text(min_size=1, max_size=10).filter(lambda t: t not in map(str, domain.choices))
                | st.sampled_from([True, 7, 2.5]).filter(lambda v: not domain.accepts(v)) | wrong)
    if isinstance(domain, NumberText):
        return st.sampled_from(["grey", "", True, "nan"]) | outside(domain.number).filter(
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).map(str)
    if isinstance(domain, Text):
        return st.sampled_from([True, False] + ([""] if domain.nonempty else [])) | wrong
    if isinstance(domain, Flag):
        return st.sampled_from(["maybe", 2, 0.5]) | wrong
    if isinstance(domain, Optional):
        return outside(domain.inner)
    if isinstance(domain, AnyOf):
        return st.one_of(*(outside(d) for d in domain.domains)).filter(lambda v: not domain.accepts(v))
    if isinstance(domain, Seq):
        bad = [st.sampled_from([5, "x", {"a": 1}]), st.lists(outside(domain.item), min_size=1, max_size=2)]
        if domain.length:
            bad.append(st.lists(inside(domain.item), min_size=domain.length + 1, max_size=domain.length + 2))
        if domain.nonempty:
            bad.append(st.just([]))
        if domain.positive_total:
            bad.append(st.just([0] * (domain.length or 1)))
        return st.one_of(*bad).filter(lambda v: not domain.accepts(v))
    raise AssertionError(f"no strategy for {domain!r}")


def as_yaml(value):
    """`value` as the text of a `--set key=TEXT` (YAML reads it back as `value`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    # JSON is YAML; PyYAML reads 1e-07 (no dot) as text, which the config turns back into a number
    return json.dumps(value)


# ---------------------------------------------------------------- the schema itself

def test_every_key_declares_a_domain_its_default_satisfies():
    assert len(SCHEMA) >= 95
    for key, (tp, default, domain) in SCHEMA.items():
        assert domain is not None, key
        assert domain.accepts(list(default) if isinstance(default, tuple) else default), (key, default, domain)
        # ... and describes it in words
        assert domain.describe() and "<" not in domain.describe(), key
    # the methods' parameters are keys too
    assert {"saliency.ig_steps", "saliency.samples", "saliency.noise", "saliency.xrai_steps",
            "saliency.scorecam_max_n", "ggcam.order"} <= set(SCHEMA)


def test_the_lists_of_names_are_the_registries():
    from cxrsal.baselines.predict import KINDS
    from cxrsal.baselines.retinanet import RESNETS
    from cxrsal.data.items import DATASETS
    from cxrsal.models import BACKBONES, HEADS

    assert set(config.DATASETS) == set(DATASETS.names())
    assert set(config.ARCHS) == set(BACKBONES.names())
    assert set(config.HEADS) == set(HEADS.names())
    assert set(config.RETINANET_BACKBONES) == set(RESNETS)
    assert set(config.BASELINE_KINDS) == set(KINDS)
    # the limits between keys name the backbones that have the option
    dilated = {n for n in BACKBONES.names() if BACKBONES.get(n).output_strides != (32,)}
    widths = {n for n in BACKBONES.names() if BACKBONES.get(n).widths}
    assert dilated == widths == {"resnet18", "resnet34"}
    for n in BACKBONES.names():
        assert set(BACKBONES.get(n).output_strides) <= set(SCHEMA["model.output_stride"][2].choices)


def test_a_method_parameter_without_a_domain_is_refused():
    with pytest.raises(ValueError, match="declares no domain"):
        config.declare("probe", {"k": "saliency.probe_k"}, {"k": 1}, {})
    with pytest.raises(ValueError, match="outside its domain"):
        config.declare("probe", {"k": "saliency.probe_k"}, {"k": 0}, {"k": Number(lo=1, integer=True)})
    assert "probe_k" not in config.DECLARED


@pytest.mark.parametrize("key", sorted(SCHEMA))
@FUZZ
@given(data=st.data())
def test_inside_the_domain_is_accepted(key, data):
    tp, _, domain = SCHEMA[key]
    value = data.draw(inside(domain))
    assert check_value(key, value, tp, domain, None) is not None or value is None
    involved = {k for keys, _, _ in CROSS_CHECKS for k in keys}
    try:
        cfg = load_config(overrides=[f"{key}={as_yaml(value)}"])
    except ConfigError as e:      # only a limit between this key and another may refuse it
        assert key in involved and key in str(e), str(e)
    else:
        got = cfg.lookup(key)
        got = list(got) if isinstance(got, tuple) else got
        if value is None and key in ("randomization.order", "randomization.smooth_samples"):
            value = config.CHECK_DEFAULTS["mprt"][key.split(".")[1]]     # null: the default check's own
        assert got == value or (isinstance(value, float) and got == pytest.approx(value)), (got, value)


# a command that reads each section's keys, with stand-in paths (the config is read first)
COMMAND_OF = {"data": ["prepare", "--root", "R"], "pipeline": ["train", "--data", "D"],
              "model": ["train", "--data", "D"], "train": ["train", "--data", "D"],
              "baseline": ["train-baseline", "unet", "--data", "D"], "saliency": ["saliency", "--model", "M"],
              "ggcam": ["saliency", "--model", "M"], "similarity": ["randomize", "--model", "M"],
              "randomization": ["randomize", "--model", "M"], "emprt": ["randomize", "--model", "M"], "compare": ["compare", "--models", "M", "N"],
              "score": ["score", "--maps", "S"], "pointwise": ["score", "--maps", "S"],
              "faithfulness": ["faithfulness", "--maps", "S"], "stats": ["stats", "--results", "R"]}


def refused(args, out, existing=False):
    """Run the command in-process: exit 2, one line on stderr, no traceback, and OUT untouched: never
    created, or (`existing`) holding just the file it held before."""
    if existing:
        out.mkdir(parents=True)
        (out / "kept.txt").write_text("a result of an earlier run")
    result = CliRunner().invoke(cli, [str(a) for a in args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (args, result.exit_code, result.output)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.stderr
    if existing:
        assert [p.name for p in out.rglob("*")] == ["kept.txt"], list(out.rglob("*"))
        assert (out / "kept.txt").read_text() == "a result of an earlier run"
    else:
        assert not out.exists(), out
    return lines[0]


@pytest.mark.parametrize("key", sorted(SCHEMA))
@FUZZ
@given(data=st.data())
def test_outside_the_domain_is_one_line_through_set(key, data, tmp_path_factory):
    tp, _, domain = SCHEMA[key]
    value = data.draw(outside(domain))
    out = tmp_path_factory.mktemp("out") / "OUT"
    line = refused([*COMMAND_OF[key.split(".")[0]], "--out", out, "--set", f"{key}={as_yaml(value)}"], out,
                   existing=data.draw(st.booleans()))
    assert f"{key} must be {domain.describe()}" in line and "--set" in line


def _options():
    """(command name, option) of every option of every command."""
    for name, command in sorted(cli.commands.items()):
        for p in command.params:
            if isinstance(p, click.Option) and p.name not in ("help",):
                yield name, p


# options whose values are checked where they are used, with the reason: paths (a file or a
# folder exists, holds what the command needs), free text matched against a store, repeatable
# overrides (the config's own domains)
FREE = {"config_path", "overrides", "out", "data_dir", "model_dir", "models", "model_card", "maps", "store",
        "validation", "root", "annotations", "cache", "results", "run_dir", "model_path", "baseline_maps",
        "images", "positive"}


def test_every_option_declares_a_domain():
    kinds = (KeyType, MethodsType, click.IntRange, click.FloatRange, click.Choice, click.types.BoolParamType)
    for name, opt in _options():
        typed = isinstance(opt.type, kinds) or opt.is_flag or type(opt.type).__name__ == "ShardIndex"
        if (name, opt.name) == ("prepare", "split"):
            assert opt.callback is not None      # TRAIN:VAL:TEST fractions, checked when read (below)
            continue
        assert typed or opt.name in FREE, f"cxrsal {name} {opt.opts[0]}: no declared domain ({opt.type!r})"


BASE = {"synth": ["--dataset", "rsna", "--n", "2"], "prepare": ["--root", "R"], "train": ["--data", "D"],
        "train-baseline": ["unet", "--data", "D"], "saliency": ["--model", "M"], "randomize": ["--model", "M"],
        "compare": ["--models", "M", "N"], "score": ["--maps", "S"], "overlay": ["--maps", "S"],
        "faithfulness": ["--maps", "S"],
        "demo": [], "stats": ["--results", "R"], "report": ["--results", "R"], "evaluate": ["--model", "M"],
        "predict-baseline": ["--model", "M"], "adopt": ["--model", "M", "--data", "D"], "merge": ["S"],
        "settings": []}
TYPED = [(n, o) for n, o in _options() if not o.is_flag and o.name not in FREE and n in BASE
         and (n, o.name) != ("prepare", "split")]


def _bad_option_values(opt):
    if isinstance(opt.type, KeyType):
        return outside(SCHEMA[opt.type.key][2]).map(
            lambda v: ",".join(map(str, v)) if isinstance(v, list) else str(v)).filter(
            lambda t: not _accepts_text(opt.type.key, t))
    if isinstance(opt.type, click.IntRange):
        return st.integers(max_value=(opt.type.min or 0) - 1) | st.just("many")
    if isinstance(opt.type, click.Choice):
        return st.text(min_size=1, max_size=8).filter(lambda t: t not in opt.type.choices and not t.startswith("-"))
    if isinstance(opt.type, MethodsType):
        return st.sampled_from(["gradd", "grad,nope", ",", "STUDY"])
    return st.sampled_from(["-1", "x"])          # --shard-index


def _accepts_text(key, text):
    from cxrsal.config import parse_value

    try:
        parse_value(key, text)
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("command, opt", TYPED, ids=[f"{n} {o.opts[0]}" for n, o in TYPED])
@FUZZ
@given(data=st.data())
def test_outside_the_domain_is_one_line_through_the_option(command, opt, data, tmp_path_factory):
    text = str(data.draw(_bad_option_values(opt)))
    out = tmp_path_factory.mktemp("out") / "OUT"
    has_out = any("--out" in p.opts for p in cli.commands[command].params)
    args = [command, *BASE[command], f"{opt.opts[0]}={text}"] + (["--out", out] if has_out else [])
    line = refused(args, out, existing=data.draw(st.booleans()))
    assert opt.opts[0] in line
    if isinstance(opt.type, KeyType):
        assert opt.type.key in line      # the option names its config key


@pytest.mark.parametrize("text", ["0.8:0.1", "a:b:c", "-1:1:1", "0:0:0", "all=foo", "0.8:0.1:nan", ""])
def test_prepare_split_outside_its_domain(text, tmp_path):
    out = tmp_path / "OUT"
    line = refused(["prepare", "--root", tmp_path, f"--split={text}", "--out", out], out)
    assert "--split" in line


def test_settings_lists_every_key_with_a_default_that_reads_back():
    out = CliRunner().invoke(cli, ["settings"]).stdout.splitlines()
    assert len(out) == len(SCHEMA)
    for line, (key, (_, default, domain)) in zip(out, SCHEMA.items()):
        shown = line.split()[1] if line.split()[1] != "''" else '""'
        if isinstance(default, tuple):
            shown = line[line.index("["):line.index("]") + 1]
        assert line.startswith(key + " ") and line.endswith(domain.describe()), line
        # the default as shown, given back as a --set, is the default (a null: what the config resolves it to)
        assert load_config(overrides=[f"{key}={shown}"]).lookup(key) == config.Config().lookup(key), line
    one = CliRunner().invoke(cli, ["settings", "ggcam"])
    assert one.stdout.split() == ["ggcam.order", "processed", "one", "of", "processed,", "raw"]
    assert refused(["settings", "bogus"], Path("/nonexistent/out")).endswith("valid sections: baseline, compare, "
                                                                          "data, emprt, faithfulness, ggcam, model, "
                                                                          "pipeline, pointwise, "
                                                                          "randomization, saliency, score, "
                                                                          "similarity, stats, train (see --help)")


def test_every_saliency_field_is_sorted_into_map_settings_or_not():
    # a new `saliency:` field must say whether it shapes the maps (a resumed folder must share
    # it) or only chooses images / batching; the methods' parameters are their params.json's
    fields = {k for k in SCHEMA if k.startswith("saliency.")} - {f"saliency.{k}" for k in config.DECLARED}
    assert fields == set(config.MAP_SETTINGS) | set(config.NOT_MAP_SETTINGS)
    assert not set(config.MAP_SETTINGS) & set(config.NOT_MAP_SETTINGS)
