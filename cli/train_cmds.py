"""`cxrsal train` and `cxrsal evaluate`."""

import click

from cxrsal.config_schema import SPLIT_NAMES

from .options import (RegistryHelpOption, config_options, echo_run_directory, key_default, key_type, keras_verbosity,
                      natural, progress_options)


def arch_help():
    """--arch: the registered backbones (`cxrsal.models.BACKBONES`)."""
    from cxrsal.models import BACKBONES

    return f"Backbone [default: {key_default('model.arch')}]: {', '.join(natural(BACKBONES.names()))}."


def head_help():
    """--head: the registered heads (`cxrsal.models.HEADS`)."""
    from cxrsal.models import HEADS

    return f"Head [default: {key_default('model.head')}]: {', '.join(HEADS.names())}."


def register(cli):

    @cli.command()
    @click.option("--arch", type=key_type("model.arch"), default=None, cls=RegistryHelpOption, help_from=arch_help)
    @click.option("--head", type=key_type("model.head"), default=None, cls=RegistryHelpOption, help_from=head_help)
    @click.option("--data", "data_dir", type=click.Path(file_okay=False), required=True,
                  help="Run directory of `cxrsal prepare`.")
    @click.option("--out", type=click.Path(file_okay=False), default=None,
                  help="Run directory to write [default: DATA/models/ARCH-HEAD-seedS].")
    @click.option("--weights", type=key_type("model.weights"), default=None,
                  help="imagenet, none or a backbone weights file [default: none].")
    @click.option("--epochs", type=key_type("train.epochs"), default=None, help="At most [default: 20].")
    @click.option("--lr", type=key_type("train.lr"), default=None, help="Adam learning rate [default: 1e-4].")
    @click.option("--batch-size", type=key_type("pipeline.batch_size"), default=None, help="[default: 32]")
    @click.option("--seed", type=key_type("train.seed"), default=None, help="Initialisation seed (train.seed).")
    @click.option("--permute-labels", "permute", type=key_type("train.permute_labels"), default=None, metavar="SEED",
                  help="Data randomization test: train on the training labels permuted with SEED until the model "
                       "fits them (training AUC train.fit_auc, default 0.95); the run card marks the model "
                       "label-permuted. Then `cxrsal compare --models TRUE_RUN THIS_RUN`. Config: "
                       "train.permute_labels.")
    @progress_options
    @config_options
    def train(arch, head, data_dir, out, weights, epochs, lr, batch_size, seed, permute, quiet, progress, config_path,
              overrides):
        """Train a classifier (or WILDCAT) on a prepared data set; resumes when run again."""
        from pathlib import Path

        from cxrsal.config import load_config
        from cxrsal.runs import CARD_FILE
        from cxrsal.training.fit import train as run

        cfg = load_config(config_path, overrides, options={
            "model.arch": arch, "model.head": head, "model.weights": weights, "train.epochs": epochs,
            "train.lr": lr, "pipeline.batch_size": batch_size, "train.seed": seed, "train.permute_labels": permute})
        from cxrsal.models import BACKBONES, HEADS
        BACKBONES.get(cfg.model.arch), HEADS.get(cfg.model.head)   # unknown names: one line with the choices
        permuted = f"-permuted{cfg.train.permute_labels}" if cfg.train.permute_labels >= 0 else ""
        out = out or str(Path(data_dir) / "models" / f"{cfg.model.arch}-{cfg.model.head}-seed{cfg.train.seed}{permuted}")
        written = echo_run_directory(out)
        card = run(cfg, data_dir, out, log=click.echo, verbose=keras_verbosity(quiet, progress))
        fit = card["metrics"].get("train_auc_permuted")
        click.echo(f"run card: {written / CARD_FILE}  (test AUC {card['metrics']['test_auc']:.4f}"
                   + (f"; training AUC on the permuted labels {fit:.4f}" if fit is not None else "") + ")")

    @cli.command()
    @click.option("--model", "run_dir", type=click.Path(file_okay=False), required=True,
                  help="Run directory of `cxrsal train`.")
    @click.option("--split", type=click.Choice(SPLIT_NAMES), default="test", show_default=True)
    @click.option("--checkpoint", type=click.Choice(("best", "last")), default="best", show_default=True)
    @click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
                  help="Another prepared data set [default: the one it was trained on].")
    def evaluate(run_dir, split, checkpoint, data_dir):
        """Re-compute the classification AUC of a trained model on a split."""
        from cxrsal.training.classifier import evaluate as run

        run(run_dir, split, checkpoint, data_dir, log=click.echo)

    @cli.command()
    @click.option("--model", "model_path", type=click.Path(exists=False), required=True,
                  help="A saved Keras classifier: .keras, .h5, or a SavedModel folder (gradient methods only: its inner "
                       "layers cannot be reached).")
    @click.option("--data", "data_dir", type=click.Path(file_okay=False), required=True,
                  help="The `cxrsal prepare` run of the images to audit it on.")
    @click.option("--model-card", "model_card", type=click.Path(dir_okay=False), default=None,
                  help="YAML: logit_layer, class_index, gradcam_layer, input_size, input_channels, "
                       "preprocessing, blocks (every field optional).")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Run directory to write.")
    def adopt(model_path, data_dir, model_card, out):
        """Make a saved Keras classifier a cxrsal run (flat graph, logit, GradCAM layer, blocks)."""
        from cxrsal.models.external import read_model_card
        from cxrsal.training.adopt import adopt as run

        run(model_path, data_dir, out, read_model_card(model_card), log=click.echo)
        click.echo(f"run directory: {out}  (give it as --model to saliency, randomize, compare, evaluate)")
