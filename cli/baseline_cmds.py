"""`cxrsal train-baseline` and `cxrsal predict-baseline`."""

import click

from cxrsal.config_schema import SPLIT_NAMES

from .options import config_options, echo_run_directory, key_type, keras_verbosity, progress_options


def register(cli):

    @cli.command("train-baseline")
    @click.argument("kind", type=key_type("baseline.kind"))
    @click.option("--data", "data_dir", type=click.Path(file_okay=False), required=True,
                  help="Run directory of `cxrsal prepare` (unet: SIIM masks; retinanet: RSNA boxes).")
    @click.option("--out", type=click.Path(file_okay=False), default=None,
                  help="Run directory to write [default: DATA/baselines/KIND-seedS].")
    @click.option("--backbone", type=key_type("baseline.backbone"), default=None,
                  help="RetinaNet's ResNet [default: resnet50].")
    @click.option("--epochs", type=key_type("train.epochs"), default=None, help="At most [default: 50].")
    @click.option("--lr", type=key_type("train.lr"), default=None, help="Adam learning rate [default: 1e-4].")
    @click.option("--batch-size", type=key_type("pipeline.batch_size"), default=None, help="[default: 32]")
    @click.option("--seed", type=key_type("train.seed"), default=None,
                  help="Initialisation seed (train.seed); train two for the repeatability baseline.")
    @progress_options
    @config_options
    def train_baseline(kind, data_dir, out, backbone, epochs, lr, batch_size, seed, quiet, progress, config_path,
                       overrides):
        """Train [A]'s localization network (U-Net or RetinaNet), then write its maps / boxes for
        `cxrsal score --baselines` and `cxrsal compare --baseline-maps`; resumes when run again.

        Unless a config says otherwise: Adam 1e-4, flips, at most 50 epochs, early stopping after 8
        without a better validation loss, learning rate x 0.1 after 3; balanced batches for the U-Net."""
        from pathlib import Path

        from cxrsal.baselines.predict import train_defaults, usage
        from cxrsal.runs import CARD_FILE, TASKS
        from cxrsal.baselines.predict import train_baseline as run
        from cxrsal.config import load_config

        cfg = load_config(config_path, overrides, base=train_defaults(kind), options={
            "baseline.kind": kind, "baseline.backbone": backbone, "train.epochs": epochs, "train.lr": lr,
            "pipeline.batch_size": batch_size, "train.seed": seed})
        if cfg.baseline.kind != kind:
            from cxrsal.errors import CxrsalError

            raise CxrsalError(f"train-baseline {kind}: the config or --set says baseline.kind={cfg.baseline.kind}; "
                              "they must agree")
        out = out or str(Path(data_dir) / "baselines" / f"{kind}-seed{cfg.train.seed}")
        written = echo_run_directory(out)
        card = run(cfg, data_dir, out, log=click.echo, verbose=keras_verbosity(quiet, progress))
        split = cfg.baseline.predict_split
        click.echo(f"run card: {written / CARD_FILE}  ({split} AUC {card['metrics'][f'{split}_auc']:.4f}); "
                   f"predictions: {written / 'predictions' / split}")
        click.echo(usage(TASKS.get(kind), written / "predictions" / split))

    @cli.command("predict-baseline")
    @click.option("--model", "run_dir", type=click.Path(file_okay=False), required=True,
                  help="Run directory of `cxrsal train-baseline`.")
    @click.option("--split", type=click.Choice(SPLIT_NAMES), default=None,
                  help="[default: the run's baseline.predict_split, test]")
    @click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
                  help="Another prepared data set [default: the one it was trained on].")
    @click.option("--checkpoint", type=click.Choice(("best", "last")), default="best", show_default=True)
    @click.option("--out", type=click.Path(file_okay=False), default=None,
                  help="Prediction folder [default: MODEL/predictions/SPLIT].")
    def predict_baseline(run_dir, split, data_dir, checkpoint, out):
        """Write a trained baseline's probability maps / box heatmaps, detections and image scores."""
        from cxrsal.baselines.predict import predict_baseline as run

        run(run_dir, split=split, data_dir=data_dir, out=out, which=checkpoint, log=click.echo)
