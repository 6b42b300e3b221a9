"""`cxrsal randomize` and `cxrsal compare`."""

import click


def register(cli):
    from .main import config_options

    common = [
        click.option("--methods", default="all", show_default=True, help="all, or a comma list of methods."),
        click.option("--n-images", type=int, default=100, show_default=True,
                     help="Test images (positives, in manifest order)."),
        click.option("--data-range", type=float, default=1.0, show_default=True,
                     help="SSIM data_range (2.0 reproduces [A]'s published numbers)."),
        click.option("--out", type=click.Path(file_okay=False), required=True),
        click.option("--quiet", is_flag=True, help="No progress bar."),
        config_options,
    ]

    def with_common(f):
        for deco in reversed(common):
            f = deco(f)
        return f

    def cfg_from(config_path, overrides):
        from cxrsal.config import load_config

        return load_config(config_path, ("saliency.positives_only=true",) + tuple(overrides))

    @cli.command()
    @click.option("--model", "models", multiple=True, required=True, type=click.Path(file_okay=False),
                  help="Trained run; repeat for replicates (sd band in the figure).")
    @click.option("--init", type=click.Choice(("truncated-normal", "layer")), default="truncated-normal",
                  show_default=True, help="Re-initialisation: truncated normal as [A], or each layer's own.")
    @click.option("--sigma", type=float, default=0.01, show_default=True, help="Truncated normal sigma.")
    @click.option("--independent", is_flag=True, help="Randomize one block at a time instead of cumulatively.")
    @click.option("--all-blocks", is_flag=True, help="Also the stem (and InceptionV3's mixed0).")
    @click.option("--seed", type=int, default=0, show_default=True)
    @with_common
    def randomize(models, init, sigma, independent, all_blocks, seed, methods, n_images, data_range, out, quiet,
                  config_path, overrides):
        """Cascading randomization: SSIM degradation curves, thresholds, PASS/FAIL per method."""
        from cxrsal.experiments.randomization import run_randomization

        run_randomization(models, out, cfg_from(config_path, overrides), methods, n_images=n_images, init=init,
                          sigma=sigma, independent=independent, all_blocks=all_blocks, seed=seed,
                          data_range=data_range, progress=not quiet, log=click.echo)
        click.echo(f"tables and fig3a.png: {out}")

    @cli.command()
    @click.option("--models", nargs=2, required=True, type=click.Path(file_okay=False),
                  help="Two trained runs (replicates: repeatability; two architectures: reproducibility).")
    @click.option("--baseline-maps", nargs=2, default=None, type=click.Path(file_okay=False),
                  help="Two folders of localization-network heatmaps (the high baseline).")
    @with_common
    def compare(models, baseline_maps, methods, n_images, data_range, out, quiet, config_path, overrides):
        """Per-image SSIM between two models' maps, against the 0.5 and localization baselines."""
        from cxrsal.experiments.repeatability import run_compare

        run_compare(list(models), out, cfg_from(config_path, overrides), methods, n_images=n_images,
                    data_range=data_range, baseline_maps=baseline_maps, progress=not quiet, log=click.echo)
        click.echo(f"tables: {out}")
