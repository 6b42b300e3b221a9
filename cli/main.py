"""Click group of the `cxrsal` command; heavy modules are imported inside the commands."""

import sys

import click

from cxrsal.console import quiet_native_logs
from cxrsal.errors import CxrsalError


# Click >= 8.2 raises this for a group called without a command (8.1 prints the help itself)
_NO_ARGS = getattr(click.exceptions, "NoArgsIsHelpError", ())


class Group(click.Group):
    """Turns a user mistake (CxrsalError, or an option Click refuses) into one line on stderr
    instead of a traceback or a usage block."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS as e:   # `cxrsal` alone: the help, as Click gives it
            click.echo(e.format_message(), err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            where = f"cxrsal {e.ctx.info_name}: " if getattr(e, "ctx", None) and e.ctx.parent else ""
            click.echo(f"error: {where}{e.format_message()} (see --help)", err=True)
            sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CxrsalError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except OSError as e:     # a full disk, a folder we may not write: the file and the reason
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"error: {where}{e.strerror or e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: finished work is kept; run the same command again to resume", err=True)
            sys.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cxrsal")
@click.option("-v", "--verbose", is_flag=True,
              help="Show TensorFlow's own log lines and warnings too (hidden by default).")
def cli(verbose):
    """cxrsal: can this chest X-ray heat map be trusted?

    A typical session:

    \b
        cxrsal synth --dataset rsna --n 200 --out data/rsna     (or your Kaggle download)
        cxrsal prepare --dataset rsna --root data/rsna --size 320 --out runs/rsna
        cxrsal train --arch inceptionv3 --data runs/rsna --config configs/a_rsna_inceptionv3.yaml
        cxrsal saliency --model runs/rsna/models/inceptionv3-classification-seed0 --out maps/
    """


def _register():
    from . import (baseline_cmds, config_cmds, data_cmds, experiment_cmds, saliency_cmds, score_cmds, study_cmds,
                   train_cmds)

    data_cmds.register(cli)
    train_cmds.register(cli)
    baseline_cmds.register(cli)
    saliency_cmds.register(cli)
    score_cmds.register(cli)
    experiment_cmds.register(cli)
    study_cmds.register(cli)
    config_cmds.register(cli)


_register()


def verbose_requested(argv):
    """True when -v/--verbose comes before the command's name (`cxrsal -v train ...`)."""
    for arg in argv:
        if arg in ("-v", "--verbose"):
            return True
        if not arg.startswith("-"):
            return False
    return False


def main():
    # TensorFlow's C++ log lines and Python warnings are not for our users (cxrsal/console.py);
    # decided before Click parses, since the filter must be in place before TensorFlow starts
    if not verbose_requested(sys.argv[1:]):
        quiet_native_logs()
    cli(prog_name="cxrsal")
