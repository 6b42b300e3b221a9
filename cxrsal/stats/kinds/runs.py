"""`cxrsal train` / `train-baseline`: the run cards (run.json) behind Table 1 ([B]) and the
models every other result names."""

from ...runs import CARD_FILE
from ..results import ResultKind, register_result


@register_result
class RunCard(ResultKind):
    """`cxrsal train` / `train-baseline`: the run card (Table 1)."""
    name, marker, order = "runs", CARD_FILE, 3
    command = "`cxrsal train`"
    sections = ("data", "model", "train", "pipeline", "baseline")

    def provenance_files(self, folder):
        # a model's config shows the prepared data it learnt from
        return super().provenance_files(folder) + [folder / "data.json"]
