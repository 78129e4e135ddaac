"""One small generic registry: adding a model, optimizer, data source or strategy is one decorated function.

A registry made with ``discover="package.name"`` imports every module of that package the first time it is
asked for a name, so a new family member (a face detector, say) is one new file there and nothing else.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, discover: Optional[str] = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._discover = discover

    def _load(self) -> None:
        """Import the ``discover`` package's modules once (each registers itself when imported)."""
        if self._discover is None:
            return
        pkg, self._discover = importlib.import_module(self._discover), None
        for mod in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            key = name.lower()
            if key in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[key] = obj
            self._meta[key] = meta
            return obj

        return deco

    def get(self, name: str) -> T:
        self._load()
        key = str(name).lower()
        if key not in self._items:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._items))}"
            )
        return self._items[key]

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._meta[str(name).lower()]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return str(name).lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
