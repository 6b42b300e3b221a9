"""`cxrsal synth` and `cxrsal prepare`."""

import click

from cxrsal.config_schema import SPLIT_NAMES

from .options import bars, config_options, key_type, progress_options

DATASET_CHOICES = ("rsna", "siim")                     # what synth writes
SPLITS = SPLIT_NAMES     # the order of the splits (one list: the config's)


def parse_split(ctx, param, text):
    """`TRAIN:VAL:TEST` fractions (e.g. 0.8:0.1:0.1), or `all=SPLIT` (e.g. all=test, for a set
    too small to split, audited only) -> three fractions."""
    if text is None:
        return None
    if text.startswith("all="):
        name = text[4:]
        if name not in SPLITS:
            raise click.BadParameter(f"{text!r}: all= takes one of {', '.join(SPLITS)}")
        return tuple(1.0 if s == name else 0.0 for s in SPLITS)
    try:
        fractions = tuple(float(v) for v in text.split(":"))
    except ValueError:
        fractions = ()
    from cxrsal.config import schema

    if len(fractions) != 3 or not schema()["data.split"][2].accepts(list(fractions)):
        raise click.BadParameter(f"{text!r}: give TRAIN:VAL:TEST fractions, each a number >= 0 and not all 0 (e.g. "
                                 "0.8:0.1:0.1), or all=test")
    return fractions


def register(cli):

    @cli.command()
    @click.option("--dataset", type=click.Choice(DATASET_CHOICES), required=True)
    @click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of images.")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder to write (Kaggle layout).")
    @click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
    @click.option("--image-size", type=click.IntRange(64, 4096), default=1024, show_default=True,
                  help="Side of the DICOM images (Kaggle's are 1024).")
    def synth(dataset, n, out, seed, image_size):
        """Write a synthetic data set in the exact Kaggle layout (RSNA or SIIM-ACR)."""
        from cxrsal.data.synth import synth as run

        summary = run(dataset, out, n, seed=seed, image_size=image_size)
        click.echo(", ".join(f"{k}: {v}" for k, v in summary.items()))
        click.echo(f"wrote {out}")

    @cli.command()
    @click.option("--dataset", type=key_type("data.dataset"), default=None,
                  help="[default: rsna]; folder: labels.csv (+ boxes.csv or masks/) and images under --root; "
                       "coco: images under --root, lesions in --annotations.")
    @click.option("--root", type=click.Path(), default=None,
                  help="The Kaggle download (or synth output); folder/coco: the images' folder.")
    @click.option("--annotations", type=click.Path(dir_okay=False), default=None,
                  help="coco: the annotation file (JSON).")
    @click.option("--positive", multiple=True, help="coco: a category that makes an image positive "
                                                    "(repeatable) [default: any annotation].")
    @click.option("--split", callback=parse_split, default=None,
                  help="TRAIN:VAL:TEST fractions, or all=test to audit every image [default: the dataset's].")
    @click.option("--size", type=key_type("data.size"), default=None, help="Cached image side in pixels [default: 320].")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Run directory to write.")
    @click.option("--seed", type=key_type("data.seed"), default=None, help="Split seed [default: 0].")
    @click.option("--cache", type=click.Path(file_okay=False), default=None,
                  help="Shared decoded-image cache [default: OUT/cache].")
    @click.option("--workers", type=key_type("data.workers"), default=None,
                  help="Decoding processes [default: 0, one per core].")
    @click.option("--strict", is_flag=True, default=None, help="Stop at the first bad item instead of skipping it.")
    @progress_options
    @config_options
    def prepare(dataset, root, annotations, positive, split, size, out, seed, cache, workers, strict, quiet, progress,
                config_path, overrides):
        """Split, decode and cache a data set; write manifest, arrays, skipped.csv and a summary."""
        from cxrsal.config import load_config
        from cxrsal.data.prepare import format_summary, prepare as run

        cfg = load_config(config_path, overrides, options={
            "data.dataset": dataset, "data.root": root, "data.annotations": annotations,
            "data.positive": list(positive) or None, "data.split": list(split) if split else None,
            "data.size": size, "data.seed": seed,
            "data.cache": cache, "data.workers": workers, "data.strict": strict})
        summary = run(cfg, out, progress=bars(quiet, progress), log=click.echo)
        click.echo(format_summary(summary))
        click.echo(f"prepared {out}")
