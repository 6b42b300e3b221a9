"""`cxrsal adopt`: a user's saved Keras classifier becomes a cxrsal run directory, which every
command that takes a trained run takes (saliency, randomize, compare, evaluate; score through
its maps). The model is wrapped (`cxrsal.models.external.wrap`: one flat graph, nested models
inlined, the logit before its sigmoid/softmax) and saved as the run's best checkpoint, with the
model card and the source file in the run card."""

import dataclasses
import hashlib
import json
import re
from pathlib import Path

from ..config import Config, write_config
from ..errors import CxrsalError
from ..files import atomic_path, atomic_write_text, read_json, remove_stale_tmp
from ..runs import BEST, CARD_FILE, CKPT_DIR, CLASSIFICATION, DATA_FILE, STATE_FILE


def _digest(path):
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for p in files:
        h.update(p.read_bytes())
    return h.hexdigest()


def external_arch(model_path):
    """The run's arch: `external-<file stem>` (two users' models never share a stats group)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(model_path).stem).strip("-") or "model"
    return f"external-{stem}"


def adopt(model_path, data_dir, out, card=None, *, log=print):
    """Write run directory `out` for the saved model at `model_path` on prepared run `data_dir`;
    a second call with the same model, data and card returns the same run untouched."""
    from ..data.prepare import check_prepared
    from ..models.external import ModelCard, is_saved_model, load_user_model, wrap, wrap_saved_model
    from .fit import data_record, versions, with_prepared_data

    card = card or ModelCard()
    out = Path(out)
    source = {"path": str(Path(model_path).resolve()), "sha256": _digest(model_path),
              "model_card": {k: (list(v) if isinstance(v, tuple) else v)
                             for k, v in dataclasses.asdict(card).items()},
              "saved_model": is_saved_model(model_path)}
    data = data_record(data_dir, check_prepared(data_dir))
    if (out / CARD_FILE).exists():
        old = read_json(out / CARD_FILE, remedy=f"delete {out} to adopt the model again")
        if old.get("source") == source and old.get("data", {}).get("manifest_sha256") == data["manifest_sha256"]:
            return out
        raise CxrsalError(f"{out} holds another adopted model, card or data; use a new folder")
    model = (wrap_saved_model(model_path, card) if is_saved_model(model_path)
             else wrap(load_user_model(model_path), card))
    size = model.input_shape[1]
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out, recursive=True)
    cfg = Config()
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, arch=external_arch(model_path),
                                                             input_size=size, blocks=tuple(card.blocks or ())))
    write_config(with_prepared_data(cfg, data_dir), out)
    atomic_write_text(out / DATA_FILE, json.dumps(data, indent=2) + "\n")
    with atomic_path(out / CKPT_DIR / BEST) as tmp:
        model.save(tmp)
    atomic_write_text(out / STATE_FILE, json.dumps({"task": CLASSIFICATION, "epoch": 0, "last": None,
                                                    "adopted": True}, indent=2) + "\n")
    run_card = {"task": CLASSIFICATION, "arch": cfg.model.arch, "head": "classification", "adopted": True,
                "source": source, "data": data, "versions": versions(),
                "layers": len(model.layers), "input_size": size, "metrics": {}}
    atomic_write_text(out / CARD_FILE, json.dumps(run_card, indent=2) + "\n")
    log(f"adopted {model_path} as {out} ({cfg.model.arch}, {len(model.layers)} layers, {size} px)")
    return out
