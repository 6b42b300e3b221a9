"""Generic name -> factory registry; a duplicate name is an error, an unknown one lists the choices."""

from .errors import CxrsalError


class Registry:
    def __init__(self, kind):
        self.kind = kind
        self._items = {}

    def register(self, name):
        def deco(obj):
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name):
        try:
            return self._items[name]
        except KeyError:
            raise CxrsalError(
                f"unknown {self.kind} {name!r}; valid choices: {', '.join(sorted(self._items))}"
            ) from None

    def names(self):
        return sorted(self._items)

    def __contains__(self, name):
        return name in self._items
