"""`cxrsal saliency` and `cxrsal overlay`."""

import click

from .options import config_options, methods_option, resolve_models, user_model_options


def register(cli):

    @cli.command()
    @click.option("--model", "model_dir", type=click.Path(), required=True,
                  help="Run directory of `cxrsal train`, or a saved Keras model (.keras, .h5) with --data.")
    @user_model_options
    @methods_option
    @click.option("--split", type=click.Choice(("train", "val", "test")), default=None, help="[default: test]")
    @click.option("--positives-only", is_flag=True, default=None, help="Only images with disease.")
    @click.option("--limit", type=int, default=None, help="At most N images (after --positives-only).")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Map store directory.")
    @click.option("--batch-size", type=int, default=None, help="Model evaluations per call [default: 32].")
    @click.option("--seed", type=int, default=None, help="SmoothGrad noise seed [default: 0].")
    @click.option("--num-shards", type=click.IntRange(min=1), default=1, show_default=True,
                  help="Split the job over K machines (any scheduler); all write into one store.")
    @click.option("--shard-index", type=click.IntRange(min=0), default=0, show_default=True)
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    @config_options
    def saliency(model_dir, data_dir, model_card, methods, split, positives_only, limit, out, batch_size, seed, num_shards, shard_index,
                 quiet, config_path, overrides):
        """Compute saliency maps of a trained model into a resumable map store."""
        from cxrsal.config import load_config
        from cxrsal.saliency.runner import run_saliency

        cfg = load_config(config_path, overrides, options={
            "saliency.split": split, "saliency.positives_only": positives_only, "saliency.limit": limit,
            "saliency.batch_size": batch_size, "saliency.seed": seed})
        model_dir, = resolve_models([model_dir], data_dir, model_card, out)
        written = run_saliency(model_dir, out, cfg, methods, num_shards=num_shards, shard_index=shard_index,
                               progress=not quiet, log=click.echo)
        click.echo(f"map store: {out}  ({sum(written.values())} maps written this run)")

    @cli.command()
    @click.option("--maps", "store", type=click.Path(file_okay=False), required=True, help="Map store.")
    @click.option("--methods", default=None, help="Comma list [default: every method in the store].")
    @click.option("--images", default=None, help="Comma list of image ids [default: all].")
    @click.option("--limit", type=int, default=0, help="At most N images per method.")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for the PNGs.")
    def overlay(store, methods, images, limit, out):
        """Draw stored maps over their radiographs with the box/mask outline (PNG)."""
        from cxrsal.saliency.overlay import write_overlays

        paths = write_overlays(store, out, methods=methods.split(",") if methods else None,
                               image_ids=images.split(",") if images else None, limit=limit)
        click.echo(f"wrote {len(paths)} overlays under {out}")
