"""The study file (`cxrsal study STUDY.yaml`): one YAML file declaring a whole audit, checked
against the schema below before anything runs. A wrong key or value is one line naming the file
and the key (as every config); the cxrsal settings it holds (`config:` files and `settings:`
mappings) are checked against `cxrsal settings`' domains when the study's jobs are built.

    name: my-audit
    seed: 0                        # replicate k of a model trains with seed + k
    config: a_rsna_inceptionv3.yaml  # cxrsal settings shared by every job (paths: beside this file)
    settings: {saliency: {batch_size: 16}}
    experiments: {mapped: inceptionv3, ...}   # see Experiments; a data set may override keys
    datasets:
      rsna:
        kind: rsna                 # rsna | siim | folder | coco
        root: /data/rsna           # a download to prepare; or `prepared: runs/rsna`
        settings: {data: {size: 320}}
        models:
          inceptionv3: {arch: inceptionv3, replicates: 2, config: a_rsna_inceptionv3.yaml}
          densenet121: {arch: densenet121, config: a_rsna_densenet121.yaml}
          mine: {path: model.keras, card: card.yaml, maps: true}   # a user's model, adopted
        localization: {kind: retinanet, replicates: 2, config: a_rsna_retinanet.yaml}
    stats: {posthoc: multcomp, min_images: 5, test: satterthwaite, alpha: 0.05}
    executor: {slurm: {partition: gpu}, resources: {train: {gpus: 1, time_min: 720}}}
"""

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..config_schema import ALPHA_DOMAIN, DATASETS, HEADS, MIN_IMAGES, MIN_IMAGES_DOMAIN, MIXED_TESTS, ORDERS, POSTHOCS, RETINANET_BACKBONES, SEED, setting
from ..domains import Domain, Flag, Number, OneOf, Optional, Seq, Text
from ..errors import ConfigError

LOCALIZATION_KINDS = ("unet", "retinanet")
# the localization network a data set kind's ground truth trains ([A]: U-Net on SIIM's masks,
# RetinaNet on RSNA's boxes); a folder or COCO set has masks
DEFAULT_LOCALIZATION = {"rsna": "retinanet", "siim": "unet", "folder": "unet", "coco": "unet"}
# the kinds of job, each with its own resources on a cluster
JOB_KINDS = ("prepare", "train", "localization", "choose", "maps", "score", "faithfulness", "randomization", "compare",
             "report")


class Mapping(Domain):
    """A mapping of cxrsal config sections (as in a config file)."""

    def accepts(self, value):
        return isinstance(value, dict)

    def describe(self):
        return "a mapping of config sections, e.g. {saliency: {batch_size: 16}}"


def _count(lo=1):
    return Number(lo=lo, integer=True)


@dataclass(frozen=True)
class ModelSpec:
    """A classifier of a data set: trained by the study (`arch`, `head`, `config`, `settings`,
    `replicates`), or a user's saved model (`path` .keras/.h5/SavedModel, `card` its model card)
    adopted as it is. `maps`: compute its maps and score them (utility, pointwise detection); the
    mapped model of the experiments always is."""
    arch: str = setting("", Text())
    head: str = setting("classification", OneOf(*HEADS))
    config: str = setting("", Text())
    settings: dict = setting(None, Optional(Mapping()))
    replicates: int = setting(1, _count())
    seed: typing.Optional[int] = setting(None, Optional(SEED))       # null: the study's seed
    epochs: int = setting(0, _count(0))                              # 0: the config's train.epochs
    path: str = setting("", Text())
    card: str = setting("", Text())
    maps: bool = setting(False, Flag())


@dataclass(frozen=True)
class LocalizationSpec:
    """The localization networks of a data set ([A]'s high baseline: two of them, the one of
    lowest validation loss scored for utility, both for repeatability's)."""
    kind: str = setting("", OneOf("", *LOCALIZATION_KINDS))          # "": the data set kind's
    # RetinaNet backbones, each its own networks ([B]: one per ResNet); (): the config's baseline.backbone
    backbones: tuple[str, ...] = setting((), Seq(OneOf(*RETINANET_BACKBONES), unique=True))
    replicates: int = setting(2, _count())
    seed: typing.Optional[int] = setting(None, Optional(SEED))
    epochs: int = setting(0, _count(0))
    config: str = setting("", Text())
    settings: dict = setting(None, Optional(Mapping()))


@dataclass(frozen=True)
class Experiments:
    """What the study runs on each data set's mapped model (`mapped`: a model name; Table 1's
    rules choose which of its replicates is mapped, the others are its repeatability replicates)."""
    mapped: str = setting("", Text())
    # as --methods: study, controls, all, or a list; the control maps cost nothing and show whether each check can fail
    methods: str = setting("study,controls", Text(nonempty=True))
    images: int = setting(0, _count(0))                              # positive test images mapped; 0 = all
    validation: bool = setting(True, Flag())                         # validation maps (mIoU's threshold)
    utility: bool = setting(True, Flag())
    # ROAD, deletion and insertion of the mapped models' test positives (`cxrsal faithfulness`)
    faithfulness: bool = setting(True, Flag())
    pointwise: str = setting("gcam", Text())                         # grid methods mapped on every test image; "" = none
    orders: tuple[str, ...] = setting(("top-down",), Seq(OneOf(*ORDERS), unique=True))
    randomization_images: int = setting(0, _count(0))                # 0: `images`
    # > 0: an sMPRT run (bottom-up, Spearman, as Hedstroem et al.) with this many noisy copies (theirs: 50)
    smprt: int = setting(0, _count(0))
    data_randomization: bool = setting(True, Flag())
    twin_epochs: int = setting(0, _count(0))                         # the permuted twin's epochs; 0: twice the model's
    twin_patience: int = setting(0, _count(0))                       # 0: its epochs
    repeatability: bool = setting(True, Flag())
    reproducibility: str = setting("", Text())                       # the other architecture's model; "" = none
    compare_images: int = setting(0, _count(0))                      # 0: `images`


@dataclass(frozen=True)
class PlanImages:
    """Image counts `--plan` uses where the data set is not prepared yet."""
    train: int = setting(0, _count(0))
    val: int = setting(0, _count(0))
    val_positives: int = setting(0, _count(0))
    test: int = setting(0, _count(0))
    test_positives: int = setting(0, _count(0))


@dataclass(frozen=True)
class DatasetSpec:
    kind: str = setting("rsna", OneOf(*DATASETS))
    root: str = setting("", Text())
    prepared: str = setting("", Text())
    settings: dict = setting(None, Optional(Mapping()))
    images: PlanImages = field(default_factory=PlanImages)
    # filled by `load_study`
    localization: typing.Optional[LocalizationSpec] = field(default_factory=LocalizationSpec)
    models: dict = field(default_factory=dict)
    experiments: Experiments = field(default_factory=Experiments)


@dataclass(frozen=True)
class Resources:
    """What a job of one kind asks the cluster for."""
    gpus: int = setting(0, _count(0))
    cpus: int = setting(4, _count())
    mem_gb: int = setting(16, _count())
    time_min: int = setting(240, _count())


DEFAULT_RESOURCES = {"prepare": Resources(cpus=8, time_min=120), "train": Resources(gpus=1, cpus=8, mem_gb=32, time_min=720),
                     "localization": Resources(gpus=1, cpus=8, mem_gb=32, time_min=720),
                     "choose": Resources(cpus=1, mem_gb=2, time_min=10), "maps": Resources(gpus=1, cpus=8, mem_gb=32),
                     "score": Resources(cpus=4), "faithfulness": Resources(gpus=1, cpus=8, mem_gb=32),
                     "randomization": Resources(gpus=1, cpus=8, mem_gb=32, time_min=720),
                     "compare": Resources(gpus=1, cpus=8, mem_gb=32), "report": Resources(cpus=4, time_min=60)}


@dataclass(frozen=True)
class Slurm:
    partition: str = setting("", Text())
    account: str = setting("", Text())
    qos: str = setting("", Text())
    # shell lines run before each job (module load, conda activate)
    setup: tuple[str, ...] = setting((), Seq(Text()))


@dataclass(frozen=True)
class Executor:
    slurm: Slurm = field(default_factory=Slurm)
    resources: dict = field(default_factory=lambda: dict(DEFAULT_RESOURCES))


@dataclass(frozen=True)
class Stats:
    posthoc: str = setting("multcomp", OneOf(*POSTHOCS))
    # below it a question is undefined (the cxrsal config's stats.min_images, for every job)
    min_images: int = setting(MIN_IMAGES, MIN_IMAGES_DOMAIN)
    test: str = setting("satterthwaite", MIXED_TESTS)     # the cxrsal config's stats.test
    alpha: float = setting(0.05, ALPHA_DOMAIN)             # the level of every test


@dataclass(frozen=True)
class Report:
    published: bool = setting(True, Flag())          # the papers' figures beside this run's


@dataclass(frozen=True)
class Study:
    name: str = setting("study", Text(nonempty=True))
    seed: int = setting(0, SEED)
    config: str = setting("", Text())
    settings: dict = setting(None, Optional(Mapping()))
    stats: Stats = field(default_factory=Stats)
    report: Report = field(default_factory=Report)
    # filled by `load_study`
    datasets: dict = field(default_factory=dict)
    experiments: Experiments = field(default_factory=Experiments)
    executor: Executor = field(default_factory=Executor)
    path: str = ""          # the study file (relative paths in it are beside it)

    def seed_of(self, spec):
        """The first seed of a model's or localization network's replicates: its own, else the study's."""
        return self.seed if spec.seed is None else spec.seed

    def resolve(self, path):
        """A path the study file gives, relative to the file's folder."""
        if not path:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() else (Path(self.path).parent / p).resolve()


def _checked(cls, mapping, source, prefix):
    """`cls` from `mapping`, every key and value checked (one line naming `source` and the key)."""
    from ..config import from_mapping

    return from_mapping(cls, mapping, source, prefix=prefix)


def _section(data, key, source, what="a mapping"):
    value = data.pop(key, None)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {key} must be {what}, got {value!r}")
    return value


def parse_study(data, source="study file", path=""):
    """The `Study` a mapping (the YAML file's content) declares; ConfigError (one line) when a key
    or value is wrong or a name refers to nothing."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (name, datasets, experiments, ...)")
    data = dict(data)
    datasets = _section(data, "datasets", source, "a mapping of data set names")
    experiments = _section(data, "experiments", source)
    executor = _section(data, "executor", source)
    allowed = [f.name for f in dataclasses.fields(Study) if f.name not in ("path",)]
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise ConfigError(f"{source}: unknown key '{unknown[0]}'; valid keys at the top level: {', '.join(allowed)}")
    study = _checked(Study, data, source, "")
    base_exp = _checked(Experiments, experiments, source, "experiments.")
    resources = dict(DEFAULT_RESOURCES)
    res = _section(executor, "resources", source)
    for kind, value in res.items():
        if kind not in JOB_KINDS:
            raise ConfigError(f"{source}: unknown key 'executor.resources.{kind}'; valid job kinds: {', '.join(JOB_KINDS)}")
        resources[kind] = _checked(Resources, {**dataclasses.asdict(DEFAULT_RESOURCES[kind]), **(value or {})}, source,
                                   f"executor.resources.{kind}.")
    execu = Executor(slurm=_checked(Executor, executor, source, "executor.").slurm, resources=resources)
    if not datasets:
        raise ConfigError(f"{source}: datasets: declare at least one data set (kind, root or prepared, models)")
    sets = {}
    for name, d in datasets.items():
        where = f"datasets.{name}"
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: {where} must be a mapping (kind, root, models, ...), got {d!r}")
        _name_ok(name, source, "datasets")
        if name in RESERVED:
            raise ConfigError(f"{source}: datasets.{name}: a data set may not be named {name!r} (a folder of the "
                              f"study's own: {', '.join(RESERVED)})")
        d = dict(d)
        models = _section(d, "models", source + f" ({where})")
        exp = _section(d, "experiments", source + f" ({where})")
        loc = d.pop("localization", {})
        ds = _checked(DatasetSpec, d, source, where + ".")
        # `localization: null`: none (no high baseline)
        ds = dataclasses.replace(ds, localization=None if loc is None else _checked(
            LocalizationSpec, loc, source, where + ".localization."))
        if bool(ds.root) == bool(ds.prepared):
            raise ConfigError(f"{source}: {where}: give either root (a download to prepare) or prepared (a `cxrsal "
                              "prepare` folder), not both or neither")
        specs = {}
        for mname, m in models.items():
            _name_ok(mname, source, f"{where}.models")
            spec = _checked(ModelSpec, m or {}, source, f"{where}.models.{mname}.")
            if bool(spec.arch) == bool(spec.path):
                raise ConfigError(f"{source}: {where}.models.{mname}: give either arch (a model to train) or path (your "
                                  "saved model), not both or neither")
            if spec.path and spec.replicates != 1:
                raise ConfigError(f"{source}: {where}.models.{mname}.replicates: a saved model is one replicate")
            specs[mname] = spec
        if not specs:
            raise ConfigError(f"{source}: {where}.models: declare at least one model")
        e = _checked(Experiments, {**_plain(base_exp), **exp}, source, f"{where}.experiments.")
        mapped = e.mapped or next(iter(specs))
        if mapped not in specs:
            raise ConfigError(f"{source}: {where}.experiments.mapped: {mapped!r} is not one of its models "
                              f"({', '.join(specs)})")
        e = dataclasses.replace(e, mapped=mapped)
        if e.reproducibility and e.reproducibility not in specs:
            raise ConfigError(f"{source}: {where}.experiments.reproducibility: {e.reproducibility!r} is not one of its "
                              f"models ({', '.join(specs)})")
        if e.reproducibility == mapped:
            raise ConfigError(f"{source}: {where}.experiments.reproducibility: another architecture than the mapped "
                              f"model {mapped!r}")
        if e.repeatability and specs[mapped].replicates < 2:
            raise ConfigError(f"{source}: {where}.experiments.repeatability needs two replicates of {mapped!r} "
                              f"(models.{mapped}.replicates: 2), or repeatability: false")
        if e.data_randomization and specs[mapped].path:
            raise ConfigError(f"{source}: {where}.experiments.data_randomization trains a twin of {mapped!r} on "
                              "permuted labels: the mapped model must be one the study trains (arch), or "
                              "data_randomization: false")
        _methods_ok(e.methods, source, f"{where}.experiments.methods", keywords=True)
        _methods_ok(e.pointwise, source, f"{where}.experiments.pointwise", keywords=False)
        _names_apart(name, specs, e, source, where)
        if ds.localization is not None and ds.localization.backbones and (ds.localization.kind or
                                                                           DEFAULT_LOCALIZATION[ds.kind]) != "retinanet":
            raise ConfigError(f"{source}: {where}.localization.backbones: only a RetinaNet has a backbone")
        sets[name] = dataclasses.replace(ds, models=specs, experiments=e)
    return dataclasses.replace(study, datasets=sets, experiments=base_exp, executor=execu, path=str(path))


# folders of the study's output folder that no data set may be named after
RESERVED = ("report", "data", ".study", ".replaced")


def _methods_ok(text, source, key, *, keywords):
    """`text` (as --methods takes it) names registered methods; else one line naming the key."""
    from ..saliency import METHODS
    from ..saliency.base import KEYWORDS

    names = [t.strip() for t in str(text).split(",") if t.strip()]
    for n in names:
        if n not in METHODS and not (keywords and n in KEYWORDS):
            valid = (KEYWORDS if keywords else ()) + tuple(METHODS.names())
            raise ConfigError(f"{source}: {key}: {n!r} is no method; valid choices: {', '.join(valid)}")


def _names_apart(d, models, exp, source, where):
    """The folders a data set's models make (replicates NAME-a, NAME-b, ..., the permuted twin)
    must not meet."""
    seen = {}
    runs = [(m, r) for m, spec in models.items() for r in replicate_names(m, spec)]
    if exp.data_randomization:
        runs.append((exp.mapped, twin_name(exp.mapped)))
    for m, r in runs:
        if r in seen and seen[r] != m:
            raise ConfigError(f"{source}: {where}.models: {m!r} and {seen[r]!r} would both write models/{r} (a "
                              "replicate is NAME-a, NAME-b, ...; the permuted twin NAME-permuted): rename one")
        seen[r] = m


def replicate_names(name, spec):
    """NAME for one replicate, else NAME-a, NAME-b, ... (seed, seed + 1, ...)."""
    if spec.replicates == 1:
        return [name]
    return [f"{name}-{chr(ord('a') + k)}" if k < 26 else f"{name}-{k}" for k in range(spec.replicates)]


def twin_name(mapped):
    return f"{mapped}-permuted"


def _plain(exp):
    return {f.name: getattr(exp, f.name) for f in dataclasses.fields(exp)}


def _name_ok(name, source, where):
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"{source}: {where}: name {name!r} must be letters, digits, '-', '_' or '.' (it names folders)")


def set_key(data, dotted, value, source):
    """`--set datasets.rsna.root=/data` into the study mapping `data`."""
    parts = dotted.split(".")
    node = data
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"{source}: '{p}' in {dotted} is not a section")
        node = nxt
    node[parts[-1]] = value


def load_study(path, overrides=()):
    """The study file at `path` with `--set key=value` overrides (study keys, dotted); ConfigError
    (one line naming the file or the override) when it is wrong."""
    from ..config import parse_override, read_yaml_mapping

    path = Path(path)
    data = read_yaml_mapping(path, str(path), "the top level must be a mapping (name, datasets, experiments, ...)")
    for text in overrides:
        parts, value = parse_override(text)
        set_key(data, ".".join(parts), value, f"--set {text}")
    source = str(path) + (" with --set" if overrides else "")
    return parse_study(data, source, path.resolve())
