"""Choice registries: a YAML name becomes a constructor call.

A config holds ``<kind>: <name>`` and ``<kind>_conf: {...}``; ``REGISTRY.build(name,
**conf)`` calls the registered class or function. As in ESPnet2's class choices, every
kind has one registry, and unknown names fail with the list of known ones.

Example::

    NOISES = Registry("noise")

    @NOISES.register("white")
    def white(n, fs, rng): ...

    NOISES.build("white", n=16000, fs=16000, rng=rng)
"""
from typing import Any, Callable, Dict, Iterator

from avse.errors import InputError


class Registry:
    """Name -> callable map for one kind of component (model, noise, metric, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None):
        """Decorator registering a class or function under ``name`` (default: its own)."""

        def deco(obj):
            key = name or obj.__name__
            if key in self._items and self._items[key] is not obj:
                raise ValueError(f"{self.kind} {key!r} registered twice")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._items[name]
        except KeyError:
            raise InputError(f"unknown {self.kind} {name!r}; choose from: "
                             f"{', '.join(sorted(self._items))}") from None

    def build(self, name: str, *args, **conf) -> Any:
        """Call the registered constructor with ``conf`` as keyword arguments."""
        ctor = self.get(name)
        try:
            return ctor(*args, **conf)
        except TypeError as e:
            raise InputError(f"{self.kind} {name!r}: bad configuration {conf}: {e}") from e

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list:
        return sorted(self._items)
