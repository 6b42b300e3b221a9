"""What every result file records of where its numbers came from: the data set (manifest hash),
the models (architecture, head) and the choices where [A]'s text and code disagree."""

from ..errors import CxrsalError
from ..runs import UNKNOWN_FACTS, Run


def model_facts(model_dir):
    """{"arch", "head", "data_hash", "data"} of a `cxrsal train` run directory ("unknown" where
    the run does not say)."""
    try:
        return Run(model_dir).facts()
    except CxrsalError:
        return dict(UNKNOWN_FACTS)


def result_meta(model_dirs, cfg):
    """The provenance block of a result JSON: data hash, architectures, heads and choices."""
    facts = [model_facts(d) for d in model_dirs]
    return {"data_hash": facts[0]["data_hash"], "archs": [f["arch"] for f in facts],
            "heads": [f["head"] for f in facts], "arch": facts[0]["arch"], "head": facts[0]["head"],
            "choices": cfg.choices()}


def refuse_repeats(dirs, option, why, digests=None):
    """One line when a model is given twice: the same run folder, or (`digests`, one per model)
    two runs holding the same weights (a copy); `why` says what the command compares."""
    from pathlib import Path

    paths = [str(Path(d).resolve()) for d in dirs]
    twice = next((d for d, p in zip(dirs, paths) if paths.count(p) > 1), None)
    if twice is not None:
        raise CxrsalError(f"{option} {twice} given twice; {why}")
    for k, digest in enumerate(digests or ()):
        if digest in digests[:k]:
            raise CxrsalError(f"{option} {dirs[digests.index(digest)]} and {dirs[k]} hold the same weights (a copy of "
                              f"one run?); {why}")
