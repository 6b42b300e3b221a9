"""YAML configuration into checked frozen dataclasses (`cxrsal.config_schema` declares them):
unknown keys are errors, every value is checked against its key's domain and the keys against
each other, `--set a.b=v` overrides; the one line of a bad value names where it was set."""

import dataclasses
import types
import typing
from pathlib import Path

from .config_schema import (  # noqa: F401  (re-exported: `from cxrsal.config import Config, ...`)
    setting, SEED, POSITIVE, DATASETS, ARCHS, EXTERNAL, DILATED_ARCHS, WIDTH_ARCHS, HEADS, BASELINE_KINDS,
    RETINANET_BACKBONES, SPLIT_NAMES, ORDERS, ORDER_MEANINGS, INITS, CHECKS, CHECK_MEANINGS, CHECK_DEFAULTS,
    COMPLEXITIES, BIN_RULES, SCORE_PARTS, BASELINE_KINDS_OF_SCORE,
    SCORE_BASELINE_ARGUMENTS, _Arch, _Baselines, baseline_parts,
    DataConfig, PipelineConfig, ModelConfig, TrainConfig, BaselineConfig, METHOD_PACKAGE, DECLARED,
    DECLARED_DOMAINS, METHOD_KEYS, declare, declared, SaliencyConfig, GgcamConfig, SimilarityConfig,
    RandomizationConfig, EmprtConfig, CompareConfig, ScoreConfig, PointwiseConfig, FaithfulnessConfig, MAP_SETTINGS, NOT_MAP_SETTINGS,
    Config, to_dict)
from .errors import ConfigError
from .files import atomic_write_text

# limits between keys, checked when a config is built: (keys, test, what must hold)
CROSS_CHECKS = (
    # the floor matters only when the rate is cut (train-baseline's own default floor is 1e-6)
    (("train.min_lr", "train.lr", "train.plateau_patience"),
     lambda c: c.train.plateau_patience == 0 or c.train.min_lr <= c.train.lr,
     "train.min_lr must not exceed train.lr when the rate is cut on plateaus"),
    (("randomization.check", "randomization.smooth_samples"),
     lambda c: (c.randomization.check == "smprt") == (c.randomization.smooth_samples > 0),
     "randomization.smooth_samples counts sMPRT's noisy copies: at least 1 with randomization.check smprt, 0 with "
     "mprt"),
    (("baseline.min_level", "baseline.max_level"), lambda c: c.baseline.min_level <= c.baseline.max_level,
     "baseline.min_level must not exceed baseline.max_level"),
    (("baseline.negative_iou", "baseline.positive_iou"),
     lambda c: c.baseline.negative_iou <= c.baseline.positive_iou,
     "baseline.negative_iou must not exceed baseline.positive_iou"),
    (("model.output_stride", "model.arch"),
     lambda c: c.model.output_stride == 32 or c.model.arch in DILATED_ARCHS,
     f"model.output_stride 16 or 8 exists only for {' and '.join(DILATED_ARCHS)} (dilated)"),
    (("model.width", "model.arch"), lambda c: c.model.width == 1 or c.model.arch in WIDTH_ARCHS,
     f"model.width other than 1 exists only for {' and '.join(WIDTH_ARCHS)}"),
    (("model.width", "model.weights"), lambda c: c.model.width == 1 or c.model.weights == "none",
     "model.width other than 1 needs model.weights none (pretrained weights fit width 1)"),
)


def schema():
    """{"section.key": (type, default, domain)} of every config key, the saliency methods'
    declared parameters included: the one declaration behind YAML files, `--set` and the
    options of the commands."""
    out = {}
    for sec in dataclasses.fields(Config):
        cls = sec.type if isinstance(sec.type, type) else typing.get_type_hints(Config)[sec.name]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name == "params" and hasattr(cls, "extra_keys"):
                continue
            out[f"{sec.name}.{f.name}"] = (hints[f.name], f.default, f.metadata["domain"])
        if hasattr(cls, "extra_keys"):
            domains = cls.extra_domains()
            for k, default in cls.extra_keys().items():
                out[f"{sec.name}.{k}"] = (type(default), default, domains[k])
    return out


def _type_name(tp):
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


class _WrongType(ConfigError):
    """A value that does not even have the key's type (the caller names the domain)."""


def _coerce(value, tp, key, source):
    """Check/convert one YAML value to the annotated type `tp`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for a in args[:-1]:      # the first type the value fits
            try:
                return _coerce(value, a, key, source)
            except ConfigError:
                pass
        return _coerce(value, args[-1], key, source)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or (Ellipsis not in args and len(value) != len(args)):
            raise _WrongType(f"{source}: {key} must be a list of {len(args)} values, got {value!r}")
        item_types = [args[0]] * len(value) if Ellipsis in args else args
        return tuple(_coerce(v, t, key, source) for v, t in zip(value, item_types))
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, source, prefix=key + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # PyYAML (YAML 1.1) reads 1e-4 without a dot as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    else:
        return value
    raise _WrongType(f"{source}: {key} must be {_type_name(tp)}, got {value!r}")


def _shown(value):
    return repr(value) if isinstance(value, str) else str(value).replace("None", "null")


def check_value(key, value, tp, domain, source):
    """`value` given the type `tp` of config key `key` and checked against its domain; else one
    line naming where it came from, the key, the value and what the domain allows."""
    try:
        coerced = _coerce(value, tp, key, source)
    except _WrongType:
        coerced, ok = value, False
    else:
        ok = domain.accepts(list(coerced) if isinstance(coerced, tuple) else coerced)
    if not ok:
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}{key} must be {domain.describe()}, got {_shown(value)}")
    return coerced


def parse_value(key, text):
    """A command-line option's text as the value of config key `key` (YAML for numbers, flags
    and lists; text keys as given), checked against its domain; ConfigError when outside."""
    import yaml

    tp, _, domain = schema()[key]
    if typing.get_origin(tp) is tuple and isinstance(text, str) and not text.lstrip().startswith("["):
        value = [t.strip() for t in text.split(",") if t.strip()]    # utility,pointwise
        return check_value(key, value, tp, domain, None)
    if tp is not str and isinstance(text, str):
        try:
            value = yaml.safe_load(text) if text.strip() else text
        except yaml.YAMLError:
            value = text
    else:
        value = text
    return check_value(key, value, tp, domain, None)


def from_mapping(cls, mapping, source="config", prefix="", origins=None):
    """Build dataclass `cls` from a nested mapping, refusing keys it does not have and values
    outside their declared domains. `origins` {"section.key": where it was set} names the file,
    option or `--set` of a bad value (else `source`)."""
    origins = origins or {}
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'the top level'} must be a mapping, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = [n for n in fields if n != "params" or not hasattr(cls, "extra_keys")]
    extra = cls.extra_keys() if hasattr(cls, "extra_keys") else {}
    unknown = [k for k in mapping if k not in names and k not in extra]
    if unknown:
        where = f"section '{prefix.rstrip('.')}'" if prefix else "the top level"
        raise ConfigError(f"{origins.get(prefix + str(unknown[0]), source)}: unknown key '{prefix}{unknown[0]}'; "
                          f"valid keys in {where}: {', '.join(names + sorted(extra))}")
    kwargs, params = {}, {}
    for k, v in mapping.items():
        key = prefix + k
        # where it was set: the key itself, or a deeper key a `--set` gave (data.size.x=1)
        where = origins.get(key) or next((o for d, o in origins.items() if d.startswith(key + ".")), source)
        if k in names and dataclasses.is_dataclass(hints[k]):
            kwargs[k] = from_mapping(hints[k], v, source, prefix=key + ".", origins=origins)
        elif k in names:
            kwargs[k] = check_value(key, v, hints[k], fields[k].metadata["domain"], where)
        else:
            params[k] = check_value(key, v, type(extra[k]), cls.extra_domains()[k], where)
    # a parameter at its default is no setting: a written config loads back equal to the original
    params = {k: v for k, v in params.items() if v != extra[k]}
    built = cls(**kwargs, **({"params": params} if extra else {}))
    if cls is Config:
        for keys, holds, what in CROSS_CHECKS:
            if not holds(built):
                values = ", ".join(f"{k}={_shown(built.lookup(k))}" for k in keys)
                wheres = sorted({origins[k] for k in keys if k in origins}) or [source]
                raise ConfigError(f"{'; '.join(wheres)}: {what} ({values})")
    return built


def checked(cfg, source="the settings"):
    """`cfg` checked as if loaded from YAML (domains and limits between keys): for configs a
    program changed with `dataclasses.replace`, which no domain sees."""
    return from_mapping(Config, to_dict(cfg), source)


def parse_override(text):
    """`section.key=value` -> (["section", "key"], value parsed as YAML)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({e.problem})") from None
    return parts, value


def merge_setting(base, parts, value, origins=None, origin=None):
    """Set the key `parts` (["section", "key"]) of the nested mapping `base` to `value`; with
    `origins` ({"section.key": where it was set}), record `origin` for it and everything under it."""
    node = base
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{origin or '--set'}: '{p}' is not a section")
        node = nxt
    node[parts[-1]] = value
    if origins is not None:
        # the deepest key set here, and everything under it, now comes from `origin`
        dotted = ".".join(parts)
        for k in [k for k in origins if k == dotted or k.startswith(dotted + ".")]:
            del origins[k]
        origins[dotted] = origin


def _file_origins(data, path, prefix=""):
    out = {}
    for k, v in (data.items() if isinstance(data, dict) else ()):
        out[f"{prefix}{k}"] = str(path)
        out.update(_file_origins(v, path, f"{prefix}{k}.") if isinstance(v, dict) else {})
    return out


def read_yaml_mapping(path, name, expected):
    """The mapping a YAML file holds; else ConfigError, one line starting with `name` (how the user
    gave the file: "--config FILE"): it cannot be read, is not valid YAML (where), or its top level
    is not a mapping (`expected` says what it should hold)."""
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"{name}: cannot be read ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{name}: not valid YAML{where} ({what})") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: {expected}")
    return data


def load_config(path=None, overrides=(), options=None, cls=Config, base=None):
    """Defaults < a command's own defaults `base` {"section.key": value} < YAML file `path` <
    command-line `options` {"section.key": value} < `--set` overrides. Every value is checked
    against its key's declared domain, and the keys against each other (`CROSS_CHECKS`); a bad one
    is one line naming where it was set (the file, the option or the `--set`)."""
    data, source = {}, "defaults"
    if path:
        source = str(path)
        data = read_yaml_mapping(path, f"--config {path}", "the top level must be a mapping of sections")
    origins = _file_origins(data, path) if path else {}
    for key, value in reversed(list((base or {}).items())):
        node = data
        for part in key.split(".")[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--config {path}: '{part}' must be a section")
        node.setdefault(key.split(".")[-1], value)
    for key, value in (options or {}).items():
        if value is not None:
            merge_setting(data, key.split("."), value, origins, f"a command-line option ({key})")
    for text in overrides:
        parts, value = parse_override(text)
        merge_setting(data, parts, value, origins, f"--set {text}")
    sources = source + (" with command-line options" if options or overrides else "")
    return from_mapping(cls, data, sources, origins=origins)


def write_config(cfg, run_dir, name="config.yaml"):
    """Write the resolved config into a run directory (atomically) and return its path."""
    import yaml

    path = Path(run_dir) / name
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path
