"""Named plug-ins (backends, tasks) → classes, imported only when asked for.

Built-in names come first; another package adds its own through an entry-point group
(``name = "module:Class"``), and one run can add more through an environment variable
(``name=module:Class,...``), which is how the tests register throwaway plug-ins from outside.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
from collections.abc import Mapping

from .errors import ConfigError


class Registry:
    def __init__(
        self, kind: str, builtin: Mapping[str, str], entry_point_group: str, variable: str, base
    ) -> None:
        self.kind = kind
        self.builtin = dict(builtin)
        self.entry_point_group = entry_point_group
        self.variable = variable
        self.base = base

    def _from_environment(self) -> dict[str, str]:
        found = {}
        for item in filter(None, (p.strip() for p in os.environ.get(self.variable, "").split(","))):
            name, sep, target = item.partition("=")
            if not sep or ":" not in target:
                raise ConfigError(
                    f"{self.variable}: {item!r} is not name=module:Class: fix the variable"
                )
            found[name.strip()] = target.strip()
        return found

    def registered(self) -> dict[str, str]:
        """Every name and the dotted path of its class."""
        return {
            **self.builtin,
            **_installed(self.entry_point_group),
            **self._from_environment(),
        }

    def names(self) -> list[str]:
        return list(self.registered())

    def get(self, name: str):
        known = self.registered()
        try:
            target = known[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}: choose from {', '.join(known)}"
            ) from None
        return _load(target, self.base, self.kind)


@functools.cache
def _installed(group: str) -> dict[str, str]:
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=group)}


@functools.cache
def _load(target: str, base: type, kind: str) -> type:
    module_name, _, class_name = target.partition(":")
    loaded = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(loaded, type) and issubclass(loaded, base)):
        raise ConfigError(f"{target} is not a deploybench {kind} ({base.__name__} subclass)")
    return loaded
