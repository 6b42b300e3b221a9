"""Declared domains of settings: the values a config key or a command-line option accepts.

Every config key declares one (`cxrsal.config.schema()`), every saliency method one per
parameter, and the command-line options that map onto no key take a Click type of the same
meaning. A value outside its domain is one line naming the key (or option), the value and what
is allowed, before anything is written.

    >>> Number(lo=1, integer=True).describe()
    'an integer >= 1'
    >>> Number(lo=0, hi=1, lo_open=True).accepts(0.0)
    False
    >>> Optional(Number(lo=0)).describe()
    'a number >= 0, or null'
"""

import math


class Domain:
    """What a setting accepts: `accepts(value)` after the value has its type, `describe()` for
    the error line ("must be ...")."""

    def accepts(self, value):
        raise NotImplementedError

    def describe(self):
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__}: {self.describe()}>"


def _fmt(x):
    return f"{x:g}" if isinstance(x, float) else str(x)


class Number(Domain):
    """A finite int or float within bounds (`lo`/`hi` inclusive unless `lo_open`/`hi_open`);
    `integer` refuses floats. Booleans are never numbers."""

    def __init__(self, lo=None, hi=None, *, lo_open=False, hi_open=False, integer=False):
        self.lo, self.hi, self.lo_open, self.hi_open, self.integer = lo, hi, lo_open, hi_open, integer

    def accepts(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))

    def describe(self):
        what = "an integer" if self.integer else "a number"
        lo, hi = self.lo, self.hi
        if lo is None and hi is None:
            return f"a finite {what.split()[-1]}"
        if hi is None:
            return f"{what} {'>' if self.lo_open else '>='} {_fmt(lo)}"
        if lo is None:
            return f"{what} {'<' if self.hi_open else '<='} {_fmt(hi)}"
        if self.integer and not self.lo_open and not self.hi_open:
            return f"{what} from {lo} to {hi}"
        return f"{what} in {'(' if self.lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if self.hi_open else ']'}"


class OneOf(Domain):
    """One of a fixed set of values (names, or numbers such as 1 and 3)."""

    def __init__(self, *choices):
        self.choices = tuple(choices)

    def accepts(self, value):
        return any(value == c and type(value) is type(c) for c in self.choices)

    def describe(self):
        if len(self.choices) == 1:
            return str(self.choices[0])
        return "one of " + ", ".join(map(str, self.choices))


class Text(Domain):
    """Any text (a path, a name checked where it is used); `nonempty` refuses ""."""

    def __init__(self, *, nonempty=False):
        self.nonempty = nonempty

    def accepts(self, value):
        return isinstance(value, str) and (bool(value.strip()) or not self.nonempty)

    def describe(self):
        return "non-empty text" if self.nonempty else "text"


class Flag(Domain):
    def accepts(self, value):
        return isinstance(value, bool)

    def describe(self):
        return "true or false"


class Optional(Domain):
    """`inner`, or null (None: the setting's "not set")."""

    def __init__(self, inner):
        self.inner = inner

    def accepts(self, value):
        return value is None or self.inner.accepts(value)

    def describe(self):
        return f"{self.inner.describe()}, or null"


class AnyOf(Domain):
    """A value any of `domains` accepts (e.g. a batch size or `auto`)."""

    def __init__(self, *domains):
        self.domains = domains

    def accepts(self, value):
        return any(d.accepts(value) for d in self.domains)

    def describe(self):
        return " or ".join(d.describe() for d in self.domains)


class NumberText(Domain):
    """One of some names, or text that reads as a finite number within `number` (ig's baseline:
    black, white or a value)."""

    def __init__(self, names, number):
        self.names, self.number = tuple(names), number

    def accepts(self, value):
        if not isinstance(value, str):
            return False
        if value in self.names:
            return True
        try:
            return self.number.accepts(float(value))
        except ValueError:
            return False

    def describe(self):
        return f"{', '.join(self.names)} or {self.number.describe()}"


class Seq(Domain):
    """A list whose items `item` accepts; `length` fixes its size, `nonempty` and `unique` refuse
    an empty list and repeats, `total` bounds the sum of its (number) items from below (exclusive)."""

    def __init__(self, item, *, length=None, nonempty=False, unique=False, positive_total=False):
        self.item, self.length, self.nonempty, self.unique = item, length, nonempty, unique
        self.positive_total = positive_total

    def accepts(self, value):
        if not isinstance(value, (list, tuple)) or not all(self.item.accepts(v) for v in value):
            return False
        if self.length is not None and len(value) != self.length:
            return False
        if (self.nonempty and not value) or (self.unique and len(set(value)) != len(value)):
            return False
        return not (self.positive_total and not sum(value) > 0)

    def describe(self):
        n = f"{self.length} " if self.length is not None else ""
        extra = [w for w, on in (("not empty", self.nonempty), ("no repeats", self.unique),
                                 ("summing to more than 0", self.positive_total)) if on]
        item = self.item.describe()
        return f"a list of {n}values, each {item}" + (f" ({', '.join(extra)})" if extra else "")
