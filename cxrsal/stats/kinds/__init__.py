"""The result kinds of the studies, one file each, registered in `cxrsal.stats.results.RESULTS` on
import: `score` (localization utility, [A] and [B]), `randomization` (MPRT, sMPRT, eMPRT in every
order), `compare` (repeatability, reproducibility, data randomization) and `runs` (the run cards
behind Table 1). A new experiment adds its file here (docs/guides/add-experiment.md)."""

from . import compare, randomization, runs, score  # noqa: F401
