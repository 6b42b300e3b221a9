"""Where each result comes from: the result folders under `--results`, their data set, models
and choices, and their tables loaded and tagged with the group (data set x model) they belong to.

A group is never pooled with another: results of different data sets or architectures stay
apart in every test and table (docs/decisions.md, "Statistics").
"""

from pathlib import Path

from ..data.manifest import MANIFEST_FILE, manifest_hash
from ..errors import CxrsalError
from ..files import read_json, read_table
from ..runs import read_card
from .results import RESULTS, kinds, table_names

UNKNOWN = "unknown"
NO_DATA = "no data"


def discover(dirs):
    """Result folders under `dirs` (any depth), per kind: the folders holding its marker file."""
    found = {kind.name: [] for kind in kinds()}
    for d in dirs:
        d = Path(d)
        if not d.exists():
            raise CxrsalError(f"--results {d}: no such folder")
        for kind in kinds():
            found[kind.name] += sorted(p.parent for p in d.rglob(kind.marker))
    if not any(found.values()):
        what = ", ".join(k.command.strip("`").replace("cxrsal ", "") for k in kinds())
        raise CxrsalError(f"--results {', '.join(map(str, dirs))}: no results ({what} outputs) found")
    return found


def read_result_json(path, command="the command that wrote it", keys=()):
    """A JSON file of a result folder (holding `keys`), refused in one line naming the command that
    rewrites it."""
    return read_json(path, keys=keys, remedy=f"run {command} into {Path(path).parent} again to rewrite it")


def read_result_table(path, columns=(), command="the command that wrote it"):
    """A result CSV, refused in one line when damaged or without `columns`; an empty table
    (written from no rows) reads as an empty frame."""
    return read_table(path, columns, remedy=f"run {command} into {Path(path).parent} again to rewrite it")


def model_key(arch, head):
    """The architecture a result belongs to: `arch` for a classification head, f"{arch}-wildcat"
    for a WILDCAT head (f"{arch}-{head}" for any other); "unknown" without an architecture."""
    if not arch or arch == UNKNOWN:
        return UNKNOWN
    return arch if head == "classification" else f"{arch}-{head or UNKNOWN}"


def group_name(dataset, key):
    """A group's name in tests.csv and posthoc.csv: data set (12 hex) / model key."""
    return f"{dataset}/{key}"


def group_model(group):
    """The model key of a group's name."""
    return group.split("/", 1)[-1] if isinstance(group, str) else UNKNOWN


def _known(value):
    """`value` unless missing or "unknown" (then the next fallback is tried)."""
    return value if value and value != UNKNOWN else None


def _card(ref, runs_by_name):
    """The run card of a model a result names (its path, or only its directory's name)."""
    if not ref:
        return None
    for d in (Path(ref), runs_by_name.get(Path(ref).name)):
        card = read_card(d) if d is not None else None
        if card is not None:
            return card
    return None


def result_info(path, kind, runs_by_name=None):
    """Data set, models (name, arch, head, key) and choices of one result folder.

    Reads the result JSON's ``data_hash``, ``arch``/``head`` (``archs``/``heads`` for several
    models) and ``choices``; older folders fall back to the manifest hash of its ``data`` folder
    and to the run cards (``run.json``) of the models it names, else "unknown".
    """
    path = Path(path)
    runs_by_name = runs_by_name or {}
    spec = RESULTS.get(kind)
    meta = read_result_json(path / spec.marker, spec.command)
    refs = spec.model_refs(meta)
    cards = [_card(r, runs_by_name) for r in refs]
    n = len(refs)
    listed = {}
    for field in ("arch", "head"):
        many, one = meta.get(field + "s"), meta.get(field)
        listed[field] = (list(many) if many and len(many) == n else [one] * n if one and n == 1 else None)
    models = []
    for k, (ref, card) in enumerate(zip(refs, cards)):
        card = card or {}
        arch, head = ((_known(listed[f][k]) if listed[f] else None) or _known(card.get(f)) or _known(meta.get(f))
                      or UNKNOWN for f in ("arch", "head"))
        models.append(dict(name=Path(ref).name if ref else UNKNOWN, arch=arch, head=head, key=model_key(arch, head)))
    data = meta.get("data") or next((c["data"].get("dir", "") for c in cards if c and "data" in c), "")
    data_hash = _known(meta.get("data_hash"))
    if not data_hash and data and (Path(data) / MANIFEST_FILE).is_file():
        data_hash = manifest_hash(data)
    if not data_hash:
        data_hash = next((c["data"]["manifest_sha256"] for c in cards
                          if c and c.get("data", {}).get("manifest_sha256")), UNKNOWN)
    return dict(path=path, kind=kind, data_hash=data_hash, dataset=data_hash[:12], data=str(data), models=models,
                choices=dict(meta.get("choices") or {}), check=meta.get("check"), similarity=meta.get("similarity"),
                choices_in_words=meta.get("choices_in_words"))


def source_name(path, roots):
    """A result folder's name relative to the --results folder it was found under (stable across
    machines, unlike the absolute path)."""
    for root in roots:
        try:
            rel = Path(path).resolve().relative_to(Path(root).resolve())
        except ValueError:
            continue
        return str(Path(Path(root).name) / rel)
    return str(path)


def described(found, dirs):
    """The info (`result_info`) of every folder of a kind with tables, with its `source` and the
    `groups` it belongs to (a result of two models: both models' groups, or only the first's when
    its kind says so)."""
    runs_by_name = {p.name: p for p in found.get("runs", [])}
    infos = []
    for kind in kinds():
        if not kind.tables:
            continue
        for path in found[kind.name]:
            info = result_info(path, kind.name, runs_by_name)
            info["source"] = source_name(path, dirs)
            keys = [m["key"] for m in info["models"]] or [UNKNOWN]
            info["groups"] = sorted({group_name(info["dataset"], k) for k in (keys[:1] if kind.first_model_only
                                                                               else keys)})
            infos.append(info)
    return infos


def groups_of(infos):
    """Each group (data set x model key), sorted: its data set, manifest hash, model key, data
    folders and the result folders in it."""
    groups = {}
    for info in infos:
        for group in info["groups"]:
            g = groups.setdefault(group, dict(dataset=info["dataset"], data_hash=info["data_hash"],
                                              model=group_model(group), data=[], sources=[]))
            if info["data"] and info["data"] not in g["data"]:
                g["data"].append(info["data"])
            g["sources"].append(info["source"])
    return {k: groups[k] for k in sorted(groups)}


def _tagged(info, frame, group_of_row):
    frame = frame.copy()
    frame.insert(0, "dataset", info["dataset"])
    frame.insert(1, "group", group_of_row(frame))
    frame["source"] = info["source"]
    return frame


def load_results(infos):
    """Tidy tables of every folder (each kind's `tables`), each row tagged with its data set,
    group and source; {table name: frame} over all folders."""
    import pandas as pd

    out = {name: [] for name in table_names()}
    for info in infos:
        kind, p = RESULTS.get(info["kind"]), info["path"]
        models = info["models"]
        first = group_name(info["dataset"], models[0]["key"]) if models else group_name(info["dataset"], UNKNOWN)
        for name, file in kind.tables.items():
            frame = (read_result_table(p / file, kind.columns.get(name, ()), kind.command) if (p / file).is_file()
                     else pd.DataFrame())
            if len(frame):
                out[name].append(kind.prepare(info, _tagged(info, frame, kind.group_of_rows(info, first))))
    return {k: pd.concat(v, ignore_index=True) if v else pd.DataFrame() for k, v in out.items()}


def store_model_refs(meta):
    """The model of a result made from a map store (score.json, faithfulness.json name the model
    by its directory's name; the store's store.json holds its path)."""
    store = Path(meta.get("maps", "")) / "store.json"
    return [(read_result_json(store).get("model") if store.is_file() else None) or meta.get("model")]
