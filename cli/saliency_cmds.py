"""`cxrsal saliency` and `cxrsal overlay`."""

import click

from .options import (MethodsType, bars, config_options, key_type, methods_option, progress_options, resolve_models,
                      user_model_options)


class ShardIndex(click.ParamType):
    """--shard-index: a shard number (0, 1, ...) or auto."""

    name = "shard"

    def convert(self, value, param, ctx):
        if value == "auto" or isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            number = -1
        if number < 0:
            self.fail(f"{value!r}: a shard number (0, 1, ...) or auto", param, ctx)
        return number


def register(cli):

    @cli.command()
    @click.option("--model", "model_dir", type=click.Path(), required=True,
                  help="Run directory of `cxrsal train`, or a saved Keras model (.keras, .h5) with --data.")
    @user_model_options
    @methods_option
    @click.option("--split", type=key_type("saliency.split"), default=None, help="[default: test]")
    @click.option("--positives-only", is_flag=True, default=None, help="Only images with disease.")
    @click.option("--limit", type=key_type("saliency.limit"), default=None,
                  help="At most N images (after --positives-only) [default: 0, every image].")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Map store directory.")
    @click.option("--batch-size", type=key_type("saliency.batch_size"), default=None,
                  help="Model evaluations per call, or auto (the largest that fits the GPU) [default: 32]. An "
                       "out-of-memory error halves it and computes the same images again.")
    @click.option("--jit", "jit_compile", is_flag=True, default=None,
                  help="XLA-compile the gradient functions (saliency.jit_compile).")
    @click.option("--precision", type=key_type("saliency.precision"), default=None,
                  help="mixed: bfloat16/float16 forward and backward, float32 variables and sums (saliency.precision).")
    @click.option("--seed", type=key_type("saliency.seed"), default=None, help="SmoothGrad noise seed [default: 0].")
    @click.option("--num-shards", type=click.IntRange(min=1), default=None,
                  help="Split the job over K machines [default: 1, or what --shard-index auto finds]; the shards "
                       "write into one store, or each into its own (then `cxrsal merge`).")
    @click.option("--shard-index", type=ShardIndex(), default="0", show_default=True,
                  help="This machine's shard, 0..K-1, or `auto`: from a SLURM array job, a Kubernetes Indexed Job "
                       "(with --num-shards or CXRSAL_NUM_SHARDS) or TF_CONFIG.")
    @progress_options
    @config_options
    def saliency(model_dir, data_dir, model_card, methods, split, positives_only, limit, out, batch_size, jit_compile,
                 precision, seed, num_shards, shard_index, quiet, progress, config_path, overrides):
        """Compute saliency maps of a trained model into a resumable map store."""
        from cxrsal.config import load_config
        from cxrsal.saliency.runner import run_saliency

        cfg = load_config(config_path, overrides, options={
            "saliency.split": split, "saliency.positives_only": positives_only, "saliency.limit": limit,
            "saliency.batch_size": batch_size,
            "saliency.jit_compile": jit_compile, "saliency.precision": precision, "saliency.seed": seed})
        if shard_index == "auto":
            from cxrsal.saliency.shards import shard_from_environment

            shard_index, num_shards = shard_from_environment(num_shards)
        else:
            num_shards = num_shards or 1
        model_dir, = resolve_models([model_dir], data_dir, model_card, out)
        written = run_saliency(model_dir, out, cfg, methods, num_shards=num_shards, shard_index=shard_index,
                               progress=bars(quiet, progress), log=click.echo)
        click.echo(f"map store: {out}  ({sum(written.values())} maps written this run)")

    @cli.command()
    @click.argument("shards", nargs=-1, required=True, type=click.Path(file_okay=False))
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="The merged map store.")
    def merge(shards, out):
        """Merge the map stores of the shards of one `cxrsal saliency` job (each shard its own --out)
        into one store: every map of the run exactly once, copied byte for byte."""
        from cxrsal.saliency.shards import merge_stores

        copied = merge_stores(shards, out, log=click.echo)
        click.echo(f"map store: {out}  ({sum(copied.values())} maps copied this run)")

    @cli.command()
    @click.option("--maps", "store", type=click.Path(file_okay=False), required=True, help="Map store.")
    @click.option("--methods", type=MethodsType(keywords=False), default=None,
                  help="Comma list [default: every method in the store].")
    @click.option("--images", default=None, help="Comma list of image ids [default: all].")
    @click.option("--limit", type=click.IntRange(min=0), default=0, help="At most N images per method (0: all).")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for the PNGs.")
    def overlay(store, methods, images, limit, out):
        """Draw stored maps over their radiographs with the box/mask outline (PNG)."""
        from cxrsal.saliency.overlay import write_overlays

        paths = write_overlays(store, out, methods=methods.split(",") if methods else None,
                               image_ids=images.split(",") if images else None, limit=limit)
        click.echo(f"wrote {len(paths)} overlays under {out}")
