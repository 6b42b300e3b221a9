"""The docs and the CLI agree: every `cxrsal ...` line of README.md, docs/ and the command's own
help is parsed against the Click app: each option exists, takes as many values as the line gives
it, and each literal value (not a PLACEHOLDER) is one the option accepts."""

import re
import shlex
from pathlib import Path

import click
import pytest

from cxrsal.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(\.\.\.)?$|^\.\.\.$")


def _sources():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))] if (ROOT / "docs").is_dir() else \
        [ROOT / "README.md"]
    for f in files:
        yield f.relative_to(ROOT), f.read_text()
    yield "cxrsal --help", cli.help or ""
    for name, command in cli.commands.items():
        yield f"cxrsal {name} --help", command.help or ""


def examples():
    """(where, text of one `cxrsal ...` command line)."""
    found = []
    for where, text in _sources():
        for span in re.findall(r"`(cxrsal(?: [^`]*)?)`", text):
            found.append((where, span))
        for line in text.splitlines():
            line = line.strip()
            # a command line, or one quoted inside another (sbatch --wrap "cxrsal merge ...")
            for part in re.split(r"&&|;", line) + re.findall(r'"(cxrsal [^"]*)"', line):
                part = part.strip()
                if part.startswith("cxrsal ") and "`" not in part:
                    found.append((where, re.sub(r"\s{2,}\(.*\)$", "", part)))
    return found


def tokens_of(example):
    text = example.replace("\\|", "|").replace("[", " ").replace("]", " ")
    tokens = shlex.split(text)[1:]
    return [t for t in tokens if t not in ("|", "...")]


def check(example):
    tokens = tokens_of(example)
    while tokens and tokens[0] in ("-v", "--verbose"):
        tokens = tokens[1:]
    if not tokens or tokens[0] in ("--help", "-h", "--version"):
        return
    name, rest = tokens[0], tokens[1:]
    assert name in cli.commands, f"no command {name!r}"
    command = cli.commands[name]
    ctx = click.Context(command, info_name=name)
    options = {o: p for p in command.params if isinstance(p, click.Option) for o in p.opts + p.secondary_opts}
    options.update({o: p for o in ("-h", "--help") for p in [None]})
    positional, i = [], 0
    while i < len(rest):
        t = rest[i]
        if t.startswith("-") and not re.fullmatch(r"-\d.*", t):
            flag, eq, inline = t.partition("=")
            assert flag in options, f"{flag}: no such option of cxrsal {name}"
            p = options[flag]
            if p is None or p.is_flag or p.count:
                assert not eq, f"{flag} takes no value"
                i += 1
                continue
            values = [inline] if eq else rest[i + 1:i + 1 + p.nargs]
            if not values and i == len(rest) - 1:
                break        # prose naming an option ("see `cxrsal score --baselines`")
            assert len(values) == p.nargs and not any(v.startswith("--") for v in values), \
                f"{flag} takes {p.nargs} value(s), got {values}"
            for v in values:
                for alternative in v.split("|"):          # a|b: each alternative
                    if not PLACEHOLDER.match(alternative):
                        p.type.convert(alternative, p, ctx)
            i += 1 if eq else 1 + p.nargs
        else:
            positional.append(t)
            i += 1
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    variadic = any(a.nargs == -1 for a in arguments)
    fixed = sum(a.nargs for a in arguments if a.nargs > 0)
    assert len(positional) <= fixed or variadic, f"unexpected argument(s) {positional[fixed:]}"
    for a, v in zip(arguments, positional):
        for alternative in v.split("|") if a.nargs == 1 else ():
            if not PLACEHOLDER.match(alternative):
                a.type.convert(alternative, a, ctx)


EXAMPLES = examples()


def test_the_docs_hold_examples():
    assert len(EXAMPLES) >= 30
    assert {t.split()[1] for _, t in EXAMPLES if len(t.split()) > 1} >= {"demo", "prepare", "train", "saliency",
                                                                        "randomize", "score", "stats", "report"}


@pytest.mark.parametrize("where, example", EXAMPLES, ids=[f"{w}: {e[:60]}" for w, e in EXAMPLES])
def test_example_parses(where, example):
    try:
        check(example)
    except (AssertionError, click.BadParameter) as e:
        pytest.fail(f"{where}: `{example}`: {e}")


def test_the_checker_bites():
    # the README's old line: one value per --results, so a second folder is a stray argument
    with pytest.raises(AssertionError, match="unexpected argument"):
        check("cxrsal report --results A B --out report")
    with pytest.raises(AssertionError, match="no such option"):
        check("cxrsal randomize --model M --sigmaa 1 --out R")
    with pytest.raises(click.BadParameter):
        check("cxrsal randomize --model M --order sideways --out R")
    with pytest.raises(click.BadParameter):     # the second alternative is checked too
        check("cxrsal randomize --model M --order top-down|bottom-upp --out R")
    with pytest.raises(AssertionError, match="takes 2 value"):
        check("cxrsal compare --models A --out R")
    check("cxrsal report --results A --results B --out report")
