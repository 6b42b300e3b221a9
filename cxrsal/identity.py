"""What made an output folder, so that a rerun resumes only the same work.

A command that resumes records, before it writes anything else, `OUT/identity.json`: the
command, the settings that shape what it writes (`settings`: {"section.key": value}) and the
digests of its inputs (`inputs`: model weights, manifests, stores). Run again on the same folder
with other settings or changed inputs, it refuses in one line naming what changed, instead of
mixing results made two ways (or reusing stale ones). Settings that only shape what is
recomputed on every run (a table drawn from resumable maps) are left out, so changing them just
rewrites those files.
"""

import json
from pathlib import Path

from .errors import CxrsalError
from .files import atomic_write_text, read_json

IDENTITY_FILE = "identity.json"


def flatten(mapping, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1} (lists stay values)."""
    out = {}
    for k, v in mapping.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _plain(value):
    """As JSON gives it back (tuples as lists), so a recorded value compares equal to a new one."""
    return json.loads(json.dumps(value))


def _shown(value):
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return f"sha256 {value[:12]}..."     # a digest
    if isinstance(value, list) and len(value) > 2:
        return f"[{len(value)} values: {', '.join(json.dumps(v) for v in value[:2])}, ...]"
    return json.dumps(value)


def differences(old, new, *, skip_missing=True):
    """[(key, old value, new value)] of two flat mappings, in `new`'s order (`old`'s extra keys
    last); with `skip_missing`, a key `old` lacks (written by an older cxrsal) is no difference."""
    old, new = _plain(old), _plain(new)
    keys = list(new) + [k for k in old if k not in new]
    return [(k, old.get(k), new.get(k)) for k in keys
            if old.get(k) != new.get(k) and not (skip_missing and k not in old)]


def describe(diffs, limit=3, theirs="this run"):
    """"randomization.sigma 0.01 (this run: 1.0)", the first `limit` of them; `theirs` names
    where the second values come from."""
    shown = [f"{k} {_shown(a)} ({theirs}: {_shown(b)})" for k, a, b in diffs[:limit]]
    more = len(diffs) - limit
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def claim(out, command, settings, inputs=None, *, option="--out"):
    """Record what `out` is made from, or refuse (CxrsalError, one line) when it already holds
    the output of another command, other `settings` or other `inputs`."""
    out = Path(out)
    path = out / IDENTITY_FILE
    mine = {"command": command, "settings": _plain(settings), "inputs": _plain(inputs or {})}
    if path.exists():
        old = read_json(path, keys=("command",), remedy=f"delete {out} to start again, or use a new {option}")
        if old["command"] != command:
            raise CxrsalError(f"{option} {out} holds the output of `cxrsal {old['command']}`, not of "
                              f"`cxrsal {command}`; use a new {option} directory")
        # a setting an older cxrsal did not record is no difference; the inputs must be the same
        # ones, none added (a replicate more changes what every table means)
        diffs = differences(old.get("settings") or {}, mine["settings"]) + differences(
            flatten(old.get("inputs") or {}), flatten(mine["inputs"]), skip_missing=False)
        if diffs:
            raise CxrsalError(f"{option} {out} was made with other settings or inputs: {describe(diffs)}; resuming "
                              f"it would mix the two: use a new {option} directory (or delete it to start again)")
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(mine, indent=2, sort_keys=True) + "\n")
