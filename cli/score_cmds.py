"""`cxrsal score` and `cxrsal faithfulness`: what stored maps are worth."""

import click

from .options import (MethodsType, RegistryHelpCommand, RegistryHelpOption, bars, config_options, key_type,
                      progress_options)


def baselines_help():
    """--baselines: the registered baselines (`cxrsal.experiments.score_baselines.SCORE_BASELINES`)."""
    from cxrsal.experiments.score_baselines import baselines_help

    return baselines_help() + " Config: score.baselines."


def score_help():
    """The command's help, naming the registered utility metrics
    (`cxrsal.metrics.utility.UTILITY_METRICS`)."""
    from cxrsal.metrics.utility import utility_metrics

    return (f"Localization utility ({', '.join(m.label for m in utility_metrics())}) and pointwise detection of "
            "every stored map, with bootstrap intervals.")


def register(cli):

    @cli.command(cls=RegistryHelpCommand, help_from=score_help,
                 short_help="Localization utility and pointwise detection of stored maps, with intervals.")
    @click.option("--maps", "store", type=click.Path(file_okay=False), required=True, help="Map store.")
    @click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
                  help="Run of `cxrsal prepare` [default: the one the model was trained on].")
    @click.option("--baselines", type=key_type("score.baselines"), default=None, cls=RegistryHelpOption,
                  help_from=baselines_help)
    @click.option("--centres", type=key_type("pointwise.centres"), default=None,
                  help="Pointwise detection: GradCAM/WILDCAT cells at their receptive-field centres (default) or "
                       "on [B]'s grid. Config: pointwise.centres.")
    @click.option("--parts", type=key_type("score.parts"), default=None,
                  help="What to score: utility (positives), pointwise (every image of the store), or both "
                       "[default: utility,pointwise]. Config: score.parts.")
    @click.option("--validation", type=click.Path(file_okay=False), default=None,
                  help="Map store of the same model on the validation split (`cxrsal saliency --split val`): each "
                       "method's IoU threshold is tuned there (never on test) for the mIoU column. "
                       "Config: score.validation.")
    @click.option("--bootstrap", type=key_type("score.bootstrap"), default=None,
                  help="Image-level bootstrap replicates of every summary interval (95%, paired across methods); "
                       "0: none [default: 1000]. Config: score.bootstrap (seed: score.seed).")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for the tables.")
    @progress_options
    @config_options
    def score(store, data_dir, baselines, centres, parts, validation, bootstrap, out, quiet, progress, config_path,
              overrides):
        """Localization utility and pointwise detection of every stored map (the help names the metrics)."""
        from cxrsal.config import load_config
        from cxrsal.experiments.scoring import score_store

        parts = list(parts) if parts is not None else None
        cfg = load_config(config_path, overrides, options={"pointwise.centres": centres, "score.baselines": baselines,
                                                           "score.parts": parts, "score.validation": validation,
                                                           "score.bootstrap": bootstrap})
        table = score_store(store, out, data_dir=data_dir, cfg=cfg, log=click.echo, progress=bars(quiet, progress))
        click.echo(f"{len(table)} rows: {out}/scores.csv (and .parquet), summary.csv, pointwise.csv, thresholds.csv")

    @cli.command(short_help="Faithfulness of stored maps: ROAD, deletion and insertion curves, with intervals.")
    @click.option("--maps", "store", type=click.Path(file_okay=False), required=True,
                  help="Map store of the trained model (`cxrsal saliency`).")
    @click.option("--methods", type=MethodsType(), default=None,
                  help="Methods and controls of the store to evaluate [default: every one it holds].")
    @click.option("--fractions", type=key_type("faithfulness.fractions"), default=None,
                  help="ROAD: fractions of the pixels removed, most (MoRF) or least (LeRF) relevant first "
                       "[default: 0.1 ... 0.9]. Config: faithfulness.fractions.")
    @click.option("--steps", type=key_type("faithfulness.steps"), default=None,
                  help="Deletion and insertion: 1/steps of the pixels per step [default: 16]. "
                       "Config: faithfulness.steps.")
    @click.option("--batch-size", type=key_type("faithfulness.batch_size"), default=None,
                  help="Images per forward call [default: 32]. Config: faithfulness.batch_size.")
    @click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for the tables.")
    @progress_options
    @config_options
    def faithfulness(store, methods, fractions, steps, batch_size, out, quiet, progress, config_path, overrides):
        """Does each map point at what the model uses? On every positive image of a map store: ROAD
        (Rong et al., ICML 2022: the class probability as the most or least relevant pixels are
        removed and filled by noisy linear imputation; the gap LeRF - MoRF, higher is more faithful)
        and deletion / insertion AUC (Petsiuk et al., BMVC 2018), with bootstrap intervals."""
        from cxrsal.config import load_config
        from cxrsal.experiments.faithfulness import run_faithfulness

        cfg = load_config(config_path, overrides, options={
            "faithfulness.fractions": list(fractions) if fractions is not None else None,
            "faithfulness.steps": steps, "faithfulness.batch_size": batch_size})
        table = run_faithfulness(store, out, cfg, methods=methods, log=click.echo, progress=bars(quiet, progress))
        click.echo(f"{len(table)} rows: {out}/faithfulness.csv (and .parquet), curves.csv, summary.csv")
