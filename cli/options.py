"""Options shared by several commands (imported by the command modules, never by main.py's users)."""

import click


def config_options(f):
    """--config FILE and repeatable --set section.key=value, shared by every command."""
    f = click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
                     help="Override one config value (repeatable), e.g. --set data.seed=1.")(f)
    f = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                     help="YAML config file (see configs/).")(f)
    return f


class MethodsOption(click.Option):
    """--methods: its help lists the registered methods, read from the registry only when the
    help is shown (`cxrsal --help` imports no method)."""

    def get_help_record(self, ctx):
        from cxrsal.saliency import METHODS, ordered, study_methods

        extra = [n for n in ordered() if not METHODS.get(n).study]
        self.help = (f"study ({', '.join(study_methods())}; wildcat only for WILDCAT heads), all (also "
                     f"{', '.join(extra) or 'nothing else'}), or a comma list of methods.")
        return super().get_help_record(ctx)


def methods_option(f):
    return click.option("--methods", cls=MethodsOption, default="study", show_default=True)(f)
