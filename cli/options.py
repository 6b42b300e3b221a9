"""Options shared by several commands (imported by the command modules, never by main.py's users)."""

import click


class KeyType(click.ParamType):
    """An option that sets one config key: its value is read and checked as the key's (its type
    and declared domain, `cxrsal.config.schema()`), so the option and the YAML key accept the
    same values, and a bad one is one line naming the option, the key and what is allowed."""

    def __init__(self, key):
        self.key = key
        self.name = key

    def _entry(self):
        from cxrsal.config import schema

        return schema()[self.key]

    def get_metavar(self, param, ctx=None):
        from cxrsal.domains import Number, OneOf, Optional

        tp, _, domain = self._entry()
        if isinstance(domain, Optional):      # null means "the default's own"; the names are what one types
            domain = domain.inner
        if isinstance(domain, OneOf):
            return "[" + "|".join(map(str, domain.choices)) + "]"
        if isinstance(domain, Number):
            return "INTEGER" if domain.integer else "NUMBER"
        return "TEXT"

    def convert(self, value, param, ctx):
        from cxrsal.config import parse_value
        from cxrsal.errors import ConfigError

        if not isinstance(value, str):
            return value
        try:
            return parse_value(self.key, value)
        except ConfigError as e:
            self.fail(str(e), param, ctx)


def key_type(key):
    """The Click type of an option that sets config key `key` (`KeyType`)."""
    return KeyType(key)


def config_options(f):
    """--config FILE and repeatable --set section.key=value, shared by every command."""
    f = click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
                     help="Override one config value (repeatable), e.g. --set data.seed=1.")(f)
    f = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                     help="YAML config file (see configs/).")(f)
    return f


def progress_options(f):
    """--quiet (no progress bar) and --progress (bars even in a log or a pipe); without either a
    bar shows only when stderr is a terminal (`bars`)."""
    f = click.option("--progress", is_flag=True,
                     help="Progress bars even when stderr is not a terminal (a log, a pipe).")(f)
    f = click.option("--quiet", is_flag=True, help="No progress bar.")(f)
    return f


def bars(quiet, progress):
    """The `progress` of the functions behind the commands: False (--quiet), True (--progress), or
    None: a bar only when stderr is a terminal."""
    if quiet and progress:
        raise click.UsageError("--quiet and --progress contradict each other")
    return False if quiet else (True if progress else None)


def keras_verbosity(quiet, progress):
    """Keras' `verbose` for a training command: 0 with --quiet, a progress bar per step on a
    terminal (or with --progress), else one line per epoch (a log stays readable)."""
    import sys

    shown = bars(quiet, progress)
    if shown is None:
        shown = sys.stdout.isatty()
    return 0 if quiet else (1 if shown else 2)


class MethodsType(click.ParamType):
    """--methods: study, controls, all, or a comma list of registered methods and keywords, checked
    when the option is read (before anything is written); whether the model can give them is
    checked on the model."""

    name = "methods"

    def __init__(self, keywords=True):
        self.keywords = keywords

    def convert(self, value, param, ctx):
        from cxrsal.saliency import ordered
        from cxrsal.saliency.base import KEYWORDS

        names = [t.strip() for t in str(value).split(",") if t.strip()]
        valid = (KEYWORDS if self.keywords else ()) + tuple(ordered())
        unknown = [n for n in names if n not in valid]
        if not names or unknown:
            self.fail(f"{(unknown or [value])[0]!r}: valid choices: {', '.join(valid)}, or a comma list of methods "
                      "and keywords", param, ctx)
        return ",".join(names)


class _HelpFromRegistry:
    """Help written from a registry when it is read (`help_from()` -> the text): by `--help` and by
    whatever documents the commands (mkdocs-click), so that the names it lists are the registered
    ones and `cxrsal --help` imports no registry."""

    def __init__(self, *args, help_from, **kw):
        self.help_from = help_from
        super().__init__(*args, **kw)

    @property
    def help(self):
        return self.help_from()

    @help.setter
    def help(self, value):
        pass        # Click sets it (from `help=` or the docstring); the registry's text is the help


class RegistryHelpOption(_HelpFromRegistry, click.Option):
    """An option whose help is written from a registry when it is shown."""


class RegistryHelpCommand(_HelpFromRegistry, click.Command):
    """A command whose help is written from a registry when it is shown (give it a `short_help` so
    that `cxrsal --help` does not read the registry)."""


class RegistryChoice(click.Choice):
    """A choice among a registry's names (`names()` -> them), read when first needed (parsing a
    value, showing the help) rather than when the command is defined, so that importing the CLI
    imports no registry."""

    def __init__(self, names, case_sensitive=True):
        self.names = names
        self.case_sensitive = case_sensitive

    @property
    def choices(self):
        return tuple(self.names())


def methods_help():
    """--methods: the registered methods (`cxrsal.saliency.METHODS`)."""
    from cxrsal.saliency import METHODS, ordered, study_methods

    extra = [n for n in ordered() if not METHODS.get(n).study]
    return (f"study ({', '.join(study_methods())}; wildcat only for WILDCAT heads), all (also "
            f"{', '.join(extra) or 'nothing else'}), or a comma list of methods.")


def methods_option(f):
    return click.option("--methods", cls=RegistryHelpOption, help_from=methods_help, type=MethodsType(),
                        default="study", show_default=True)(f)


def natural(names):
    """`names` sorted with their numbers as numbers: resnet18 before resnet101."""
    import re

    return sorted(names, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


def key_default(key):
    """The default of config key `key` (`cxrsal.config.schema()`)."""
    from cxrsal.config import schema

    return schema()[key][1]


def user_model_options(f):
    """--data and --model-card: what a saved Keras model given as --model needs (the images to
    explain, and what to explain in it)."""
    f = click.option("--model-card", "model_card", type=click.Path(dir_okay=False), default=None,
                     help="A saved Keras model's card (YAML): logit layer and class, GradCAM layer, input, "
                          "preprocessing, randomization blocks; every field has a default.")(f)
    f = click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
                     help="With a saved Keras model as --model: the `cxrsal prepare` run of the images.")(f)
    return f


def is_saved_model(path):
    from pathlib import Path

    p = Path(path)
    return p.is_file() or (p.is_dir() and (p / "saved_model.pb").is_file())


def resolve_models(paths, data_dir, model_card, out, option="--model"):
    """Run directories for `paths`: a cxrsal run as it is; a saved Keras model (.keras, .h5, a
    SavedModel folder) adopted into OUT/adopted/external-<name> (`cxrsal adopt`)."""
    from pathlib import Path

    from cxrsal.errors import CxrsalError

    runs, saved = [], [p for p in paths if is_saved_model(p)]
    if saved and not data_dir:
        raise CxrsalError(f"{option} {saved[0]}: a saved Keras model needs --data PREPARED_RUN (the images to explain)")
    if (data_dir or model_card) and not saved:
        raise CxrsalError(f"--data / --model-card: only with a saved Keras model as {option}; a cxrsal run knows "
                          "its data and layers")
    for p in paths:
        if is_saved_model(p):
            from cxrsal.models.external import read_model_card
            from cxrsal.training.adopt import adopt, external_arch

            runs.append(adopt(p, data_dir, Path(out) / "adopted" / external_arch(p), read_model_card(model_card),
                              log=click.echo))
        else:
            runs.append(p)
    return runs


def echo_run_directory(out):
    """Print the run directory a training command writes and return it (a Path): `out`, or under
    a multi-worker TF_CONFIG, for a worker other than the chief, its twin `OUT.worker-N`."""
    from pathlib import Path

    from cxrsal.training.strategy import worker_dir

    written = worker_dir(out)
    click.echo(f"run directory: {written}" + (f" (this worker's copy; the chief writes {out})"
                                              if written != Path(out) else ""))
    return written
