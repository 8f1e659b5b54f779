"""Name -> factory registries shared by every part of visionforge.

One small :class:`Registry` serves models, datasets, transforms, callbacks,
exporters and explainers. Lookup is case-insensitive, names may have aliases,
``list`` accepts shell-style wildcards, and an unknown name raises an error
that lists the closest valid names. Third-party packages add entries through
the ``visionforge.plugins`` entry-point group: each entry point is a callable
(or module) that registers its objects when loaded.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib.metadata
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from visionforge.errors import UnknownNameError

__all__ = [
    "closest_names",
    "Registry",
    "RegistryEntry",
    "MODELS",
    "DATASETS",
    "DATAMODULES",
    "TRANSFORMS",
    "CALLBACKS",
    "EXPORTERS",
    "EXPLAINERS",
    "load_plugins",
    "PLUGIN_GROUP",
]

PLUGIN_GROUP = "visionforge.plugins"
_log = logging.getLogger(__name__)


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def closest_names(name: str, candidates: Iterable[str], n: int = 5,
                  cutoff: float = 0.6) -> list[str]:
    """The candidates closest to ``name``, best first.

    Case and separators are ignored first (``resnet_18`` finds ``resnet18``, ``ResNet-18``
    too), then :func:`difflib.get_close_matches` ranks by similarity, then candidates
    containing ``name`` follow (``epochs`` finds ``max_epochs``).
    """
    groups: dict[str, list[str]] = {}
    for cand in candidates:
        groups.setdefault(_squash(cand), []).append(cand)
    key = _squash(name)
    keys = list(groups.get(key, []) and [key])
    keys += difflib.get_close_matches(key, list(groups), n=n, cutoff=cutoff)
    if key:
        keys += sorted((k for k in groups if key in k), key=len)
    out: list[str] = []
    for k in keys:
        out.extend(c for c in groups[k] if c not in out)
    return out[:n]


@dataclass(frozen=True)
class RegistryEntry:
    """A registered object with its canonical name, aliases and metadata."""

    name: str
    obj: Callable[..., Any]
    aliases: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


class Registry:
    """A case-insensitive mapping from names (and aliases) to factories.

    Example:
        >>> REG = Registry("widget")
        >>> @REG.register("small_widget", aliases=("SmallWidget",))
        ... def small_widget(size=1):
        ...     return ("widget", size)
        >>> REG.get("smallwidget")(size=2)
        ('widget', 2)
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, RegistryEntry] = {}
        self._lookup: dict[str, str] = {}

    # -- registration -------------------------------------------------------
    def register(
        self,
        name: str | Callable[..., Any] | None = None,
        *,
        aliases: tuple[str, ...] | list[str] = (),
        override: bool = False,
        **metadata: Any,
    ) -> Any:
        """Register a factory; usable as ``@reg.register``, ``@reg.register("name")``
        or ``reg.register("name", obj=...)`` via :meth:`add`."""
        if callable(name):  # bare decorator
            obj = name
            self.add(obj.__name__, obj, aliases=aliases, override=override, **metadata)
            return obj

        def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
            self.add(name or obj.__name__, obj, aliases=aliases, override=override, **metadata)
            return obj

        return decorator

    def add(
        self,
        name: str,
        obj: Callable[..., Any],
        *,
        aliases: tuple[str, ...] | list[str] = (),
        override: bool = False,
        **metadata: Any,
    ) -> None:
        """Register ``obj`` under ``name`` and ``aliases``."""
        keys = [name, *aliases]
        if not override:
            for key in keys:
                existing = self._lookup.get(key.lower())
                if existing is not None and existing != name:
                    raise ValueError(
                        f"{self.kind} name {key!r} is already registered for {existing!r}; "
                        "pass override=True to replace it"
                    )
                if existing == name and key == name:
                    raise ValueError(
                        f"{self.kind} {name!r} is already registered; pass override=True to replace it"
                    )
        elif name in self._entries:
            self.remove(name)
        self._entries[name] = RegistryEntry(name, obj, tuple(aliases), dict(metadata))
        for key in keys:
            self._lookup[key.lower()] = name

    def remove(self, name: str) -> None:
        """Remove an entry and its aliases."""
        canonical = self.canonical(name)
        entry = self._entries.pop(canonical)
        for key in (entry.name, *entry.aliases):
            self._lookup.pop(key.lower(), None)

    # -- lookup -------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """Return the canonical name for ``name`` or an alias of it."""
        key = str(name).lower()
        if key not in self._lookup:
            raise UnknownNameError(self._unknown_message(name))
        return self._lookup[key]

    def entry(self, name: str) -> RegistryEntry:
        """Return the :class:`RegistryEntry` for ``name``."""
        return self._entries[self.canonical(name)]

    def get(self, name: str) -> Callable[..., Any]:
        """Return the registered factory for ``name`` (case-insensitive)."""
        return self.entry(name).obj

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the factory registered as ``name``."""
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def list(self, pattern: str | None = None, *, include_aliases: bool = False) -> list[str]:
        """Sorted canonical names matching the wildcard ``pattern`` (case-insensitive).

        With ``include_aliases`` an entry matches when any alias matches.
        """
        names = []
        for name, entry in self._entries.items():
            candidates = [name, *entry.aliases] if include_aliases else [name]
            if pattern is None or any(
                fnmatch.fnmatchcase(c.lower(), pattern.lower()) for c in candidates
            ):
                names.append(name)
        return sorted(names, key=str.lower)

    def suggestions(self, name: str, n: int = 5) -> list[str]:
        """Closest registered names (canonical names and aliases) to ``name``."""
        out: list[str] = []
        for key in closest_names(name, self._lookup, n=3 * n, cutoff=0.4):
            canonical = self._lookup[key]
            if canonical not in out:
                out.append(canonical)
        return out[:n]

    def _unknown_message(self, name: str) -> str:
        close = self.suggestions(name)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return (
            f"Unknown {self.kind} {name!r}.{hint} "
            f"({len(self._entries)} {self.kind}s are registered; list them with list_{self.kind}s().)"
        )

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"


MODELS = Registry("model")
DATASETS = Registry("dataset")
DATAMODULES = Registry("datamodule")
TRANSFORMS = Registry("transform")
CALLBACKS = Registry("callback")
EXPORTERS = Registry("exporter")
EXPLAINERS = Registry("explainer")

_plugins_loaded = False


def load_plugins(*, force: bool = False) -> list[str]:
    """Load every ``visionforge.plugins`` entry point once; return their names.

    An entry point may name a callable (called with no arguments) or a module
    (imported, so its ``register`` decorators run). A broken plugin is logged
    and skipped so that it cannot stop the rest of the package from working.
    """
    global _plugins_loaded
    if _plugins_loaded and not force:
        return []
    _plugins_loaded = True
    loaded = []
    for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        try:
            obj = ep.load()
            if callable(obj):
                obj()
            loaded.append(ep.name)
        except Exception as exc:  # a third party's bug must not break us
            _log.warning("visionforge plugin %r failed to load: %s", ep.name, exc)
    return loaded
