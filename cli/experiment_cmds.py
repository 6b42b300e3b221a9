"""`cxrsal randomize` and `cxrsal compare`."""

import click

from .options import (RegistryHelpOption, bars, config_options, key_default, key_type, methods_option, natural,
                      progress_options, resolve_models, user_model_options)


def order_help():
    """--order: the orders of the config (`cxrsal.config.ORDERS`) and what each randomizes."""
    from cxrsal.config import ORDER_MEANINGS

    from cxrsal.config import CHECK_DEFAULTS

    orders = "; ".join(f"{name}: {meaning}" for name, meaning in ORDER_MEANINGS.items())
    own = ", ".join(f"{d['order']} for {check}" for check, d in CHECK_DEFAULTS.items())
    return (f"Which blocks each step randomizes: {orders} [default: the check's own, {own}]. "
            "Config: randomization.order.")


def check_help():
    """--check: the checks of the config (`cxrsal.config.CHECKS`) and what each sets by default."""
    from cxrsal.config import CHECK_DEFAULTS, CHECK_MEANINGS

    checks = "; ".join(f"{name}: {meaning}, {CHECK_DEFAULTS[name]['order']}"
                       + (f", {CHECK_DEFAULTS[name]['smooth_samples']} noisy copies"
                          if CHECK_DEFAULTS[name]["smooth_samples"] else "")
                       for name, meaning in CHECK_MEANINGS.items())
    return (f"The sanity check: {checks} [default: {key_default('randomization.check')}]. --order and "
            "--smooth-samples change what it sets. Config: randomization.check.")


def bins_help():
    from cxrsal.config import BIN_RULES

    return (f"eMPRT's histogram bins: a count, or a rule ({', '.join(BIN_RULES)}; n = the pixels of a map, clipped "
            f"to 10..200, chosen once per method over the trained model's maps) [default: {key_default('emprt.bins')}, "
            "the authors']. Config: emprt.bins.")


def all_blocks_help():
    """--all-blocks: the blocks the backbones leave out unless asked (`Backbone.randomization_skips`)."""
    from cxrsal.models import BACKBONES
    from cxrsal.models.backbones import Backbone

    common = Backbone.randomization_skips
    own = [f"{name}'s {', '.join(b for b in BACKBONES.get(name).randomization_skips if b not in common)}"
           for name in natural(BACKBONES.names()) if set(BACKBONES.get(name).randomization_skips) - set(common)]
    return f"Also the {' and '.join(common)}" + (f" (and {'; '.join(own)})" if own else "") + "."


def register(cli):

    def common(section):
        return [
            methods_option,
            click.option("--n-images", type=key_type(f"{section}.n_images"), default=None,
                         help=f"Positive test images, in manifest order (default 0: all, as [A]; config "
                              f"{section}.n_images)."),
            click.option("--similarity-maps", type=key_type("similarity.maps"), default=None,
                         help="What SSIM compares: the post-processed maps ([A]'s code, default) or the raw maps, "
                              "channels summed with their signs and min-max scaled ([A]'s text)."),
            click.option("--data-range", type=key_type("similarity.data_range"), default=None,
                         help="SSIM data_range (default 1; 2 reproduces [A]'s code). Config: similarity.data_range."),
            click.option("--maps", multiple=True, type=click.Path(file_okay=False),
                         help="A map store of `cxrsal saliency` to take the trained models' maps from (repeatable). "
                              "Stores listed in the model runs are used anyway; maps are copied only when model "
                              "weights, data, images and method parameters are the same."),
            click.option("--out", type=click.Path(file_okay=False), required=True),
            progress_options,
            config_options,
        ]

    def with_common(section):
        def deco(f):
            for d in reversed(common(section)):
                f = d(f)
            return f
        return deco

    def cfg_from(config_path, overrides, options):
        from cxrsal.config import load_config

        return load_config(config_path, ("saliency.positives_only=true",) + tuple(overrides), options=options)

    @cli.command()
    @click.option("--model", "models", multiple=True, required=True, type=click.Path(),
                  help="Trained run (or a saved Keras model with --data); repeat for replicates (sd band in the "
                       "figure).")
    @user_model_options
    @click.option("--init", type=key_type("randomization.init"), default=None,
                  help="Re-initialisation: truncated normal as [A] (default), or each layer's own.")
    @click.option("--sigma", type=key_type("randomization.sigma"), default=None,
                  help="Truncated normal sigma (default 0.01).")
    @click.option("--order", type=key_type("randomization.order"), default=None, cls=RegistryHelpOption,
                  help_from=order_help)
    @click.option("--independent", is_flag=True, default=None, help="Same as --order independent.")
    @click.option("--check", type=key_type("randomization.check"), default=None, cls=RegistryHelpOption,
                  help_from=check_help)
    @click.option("--smooth-samples", type=key_type("randomization.smooth_samples"), default=None,
                  help="sMPRT: average every map over this many noisy copies of the input, one of them the input "
                       "itself (default: 50 with --check smprt, 0 with mprt). Config: randomization.smooth_samples.")
    @click.option("--smooth-noise", type=key_type("randomization.smooth_noise"), default=None,
                  help="sMPRT noise sigma as a fraction of the image's range (default 0.1). Config: "
                       "randomization.smooth_noise.")
    @click.option("--all-blocks", is_flag=True, default=None, cls=RegistryHelpOption, help_from=all_blocks_help)
    @click.option("--pairs-per-image", type=key_type("randomization.pairs_per_image"), default=None,
                  help="Degradation threshold: random partners per image (default 50, [A]'s code).")
    @click.option("--pairs", type=key_type("randomization.pairs"), default=None,
                  help="Degradation threshold: that many random pairs in all instead ([A]'s text: 50).")
    @click.option("--seed", type=key_type("randomization.seed"), default=None,
                  help="Re-initialisation and threshold pairs (default 0).")
    @click.option("--complexity", type=key_type("emprt.complexity"), default=None,
                  help="eMPRT's complexity: histogram (default, the authors': entropy of the histogram of the raw "
                       "map's values) or spatial (entropy of the normalized |map| over its pixels). Config: "
                       "emprt.complexity.")
    @click.option("--bins", type=key_type("emprt.bins"), default=None, cls=RegistryHelpOption, help_from=bins_help)
    @with_common("randomization")
    def randomize(models, data_dir, model_card, init, sigma, order, independent, check, smooth_samples, smooth_noise,
                  all_blocks, pairs_per_image, pairs, seed, complexity, bins, methods, n_images,
                  similarity_maps, data_range, maps, out, quiet, progress, config_path, overrides):
        """Model parameter randomization (MPRT as [A], sMPRT, eMPRT): degradation curves (SSIM, Spearman),
        thresholds, complexity rise, PASS/FAIL per method."""
        from cxrsal.experiments.randomization import run_randomization

        if independent:
            if order not in (None, "independent"):
                raise click.UsageError(f"--independent contradicts --order {order}")
            order = "independent"

        cfg = cfg_from(config_path, overrides, {
            "randomization.n_images": n_images, "randomization.init": init, "randomization.sigma": sigma,
            "randomization.check": check, "randomization.order": order,
            "randomization.smooth_samples": smooth_samples, "emprt.complexity": complexity, "emprt.bins": bins,
            "randomization.smooth_noise": smooth_noise, "randomization.all_blocks": all_blocks or None,
            "randomization.pairs_per_image": pairs_per_image, "randomization.pairs": pairs,
            "randomization.seed": seed, "similarity.maps": similarity_maps, "similarity.data_range": data_range})
        models = resolve_models(models, data_dir, model_card, out)
        run_randomization(models, out, cfg, methods, progress=bars(quiet, progress), log=click.echo, maps=maps)
        click.echo(f"tables, fig3a.png and fig_emprt.png: {out}")

    @cli.command()
    @click.option("--models", nargs=2, required=True, type=click.Path(),
                  help="Two trained runs or saved Keras models (with --data) (replicates: repeatability; two "
                       "architectures: reproducibility).")
    @user_model_options
    @click.option("--baseline-maps", nargs=2, default=None, type=click.Path(file_okay=False),
                  help="Two folders of localization-network heatmaps (the high baseline).")
    @with_common("compare")
    def compare(models, data_dir, model_card, baseline_maps, methods, n_images, similarity_maps, data_range, maps, out,
                quiet, progress, config_path, overrides):
        """Per-image SSIM between two models' maps (and two localization networks' heatmaps)."""
        from cxrsal.experiments.repeatability import run_compare

        cfg = cfg_from(config_path, overrides, {
            "compare.n_images": n_images, "similarity.maps": similarity_maps, "similarity.data_range": data_range})
        models = resolve_models(models, data_dir, model_card, out, option="--models")
        run_compare(list(models), out, cfg, methods, baseline_maps=baseline_maps, progress=bars(quiet, progress),
                    log=click.echo, maps=maps)
        click.echo(f"tables: {out}")
