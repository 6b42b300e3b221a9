"""Click group of the `cxrsal` command; heavy modules are imported inside the commands."""

import sys

import click

from cxrsal.console import quiet_native_logs
from cxrsal.errors import CxrsalError


class Group(click.Group):
    """Turns a user mistake (CxrsalError) into one line on stderr instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CxrsalError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: finished work is kept; run the same command again to resume", err=True)
            sys.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cxrsal")
def cli():
    """cxrsal: can this chest X-ray heat map be trusted?

    \b
    Typical session:
      cxrsal synth --dataset rsna --n 200 --out data/rsna     (or your Kaggle download)
      cxrsal prepare --dataset rsna --root data/rsna --size 320 --out runs/rsna
      cxrsal train --arch inceptionv3 --data runs/rsna --config configs/a_rsna_inceptionv3.yaml
      cxrsal saliency --model runs/rsna/models/inceptionv3-classification-seed0 --out maps/
    """


def _register():
    from . import baseline_cmds, data_cmds, experiment_cmds, saliency_cmds, score_cmds, study_cmds, train_cmds

    data_cmds.register(cli)
    train_cmds.register(cli)
    baseline_cmds.register(cli)
    saliency_cmds.register(cli)
    score_cmds.register(cli)
    experiment_cmds.register(cli)
    study_cmds.register(cli)


_register()


def main():
    quiet_native_logs()   # TensorFlow's C++ log lines are not for our users (cxrsal/console.py)
    cli(prog_name="cxrsal")
