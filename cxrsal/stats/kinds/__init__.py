"""The result kinds, one file each, registered in `cxrsal.stats.results.RESULTS` on import: the
study's `score` (localization utility, [A] and [B]), `randomization` (MPRT, sMPRT, eMPRT in every
order), `compare` (repeatability, reproducibility, data randomization) and `runs` (the run cards
behind Table 1).

Every module of the package is imported here, so a kind's file registers it: adding an
experiment's kind touches no other file (docs/guides/add-experiment.md).
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
