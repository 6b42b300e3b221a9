"""What every result file records of where its numbers came from: the data set (manifest hash),
the models (architecture, head) and the choices where [A]'s text and code disagree."""

import json
from pathlib import Path

import yaml


def model_facts(model_dir):
    """{"arch", "head", "data_hash", "data"} of a `cxrsal train` run directory ("unknown" where
    the run does not say)."""
    model_dir = Path(model_dir)
    facts = {"arch": "unknown", "head": "unknown", "data_hash": "unknown", "data": ""}
    cfg = model_dir / "config.yaml"
    if cfg.exists():
        model = (yaml.safe_load(cfg.read_text()) or {}).get("model", {})
        facts.update(arch=model.get("arch", "unknown"), head=model.get("head", "classification"))
    data = model_dir / "data.json"
    if data.exists():
        d = json.loads(data.read_text())
        facts.update(data_hash=d.get("manifest_sha256", "unknown"), data=d.get("dir", ""))
    return facts


def result_meta(model_dirs, cfg):
    """The provenance block of a result JSON: data hash, architectures, heads and choices."""
    facts = [model_facts(d) for d in model_dirs]
    return {"data_hash": facts[0]["data_hash"], "archs": [f["arch"] for f in facts],
            "heads": [f["head"] for f in facts], "arch": facts[0]["arch"], "head": facts[0]["head"],
            "choices": cfg.choices()}
