"""`cxrsal synth` and `cxrsal prepare`."""

import click

from .options import config_options

DATASET_CHOICES = ("rsna", "siim")


def register(cli):

    @cli.command()
    @click.option("--dataset", type=click.Choice(DATASET_CHOICES), required=True)
    @click.option("--n", "n", type=int, required=True, help="Number of images.")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder to write (Kaggle layout).")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--image-size", type=click.IntRange(64, 4096), default=1024, show_default=True,
                  help="Side of the DICOM images (Kaggle's are 1024).")
    def synth(dataset, n, out, seed, image_size):
        """Write a synthetic data set in the exact Kaggle layout (RSNA or SIIM-ACR)."""
        from cxrsal.data.synth import synth as run

        summary = run(dataset, out, n, seed=seed, image_size=image_size)
        click.echo(", ".join(f"{k}: {v}" for k, v in summary.items()))
        click.echo(f"wrote {out}")

    @cli.command()
    @click.option("--dataset", type=click.Choice(DATASET_CHOICES), default=None, help="[default: rsna]")
    @click.option("--root", type=click.Path(), default=None, help="The Kaggle download (or synth output).")
    @click.option("--size", type=int, default=None, help="Cached image side in pixels [default: 320].")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Run directory to write.")
    @click.option("--seed", type=int, default=None, help="Split seed [default: 0].")
    @click.option("--cache", type=click.Path(file_okay=False), default=None,
                  help="Shared decoded-image cache [default: OUT/cache].")
    @click.option("--workers", type=int, default=None, help="Decoding processes [default: one per core].")
    @click.option("--strict", is_flag=True, default=None, help="Stop at the first bad item instead of skipping it.")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    @config_options
    def prepare(dataset, root, size, out, seed, cache, workers, strict, quiet, config_path, overrides):
        """Split, decode and cache a data set; write manifest, arrays, skipped.csv and a summary."""
        from cxrsal.config import load_config
        from cxrsal.data.prepare import format_summary, prepare as run

        cfg = load_config(config_path, overrides, options={
            "data.dataset": dataset, "data.root": root, "data.size": size, "data.seed": seed,
            "data.cache": cache, "data.workers": workers, "data.strict": strict})
        summary = run(cfg, out, progress=not quiet, log=click.echo)
        click.echo(format_summary(summary))
        click.echo(f"prepared {out}")
