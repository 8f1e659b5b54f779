"""``key=value`` options of the subcommands that do not use the run-config tree."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from visionforge.errors import ConfigError

__all__ = ["parse_options", "flag_hint"]


def parse_options(
    items: Iterable[str],
    allowed: Mapping[str, Callable[[str], Any]] | Iterable[str],
    command: str,
) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": ..., "b": ...}``.

    ``allowed`` names the valid keys; as a mapping it also gives each key's type
    (``int``, ``float``, ``str`` or any converter). Anything else raises
    :class:`ConfigError` naming the command, the bad item and the valid keys.
    """
    types = dict(allowed) if isinstance(allowed, Mapping) else {k: str for k in allowed}
    valid = ", ".join(types)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{command}: expected key=value, got {item!r}; keys: {valid}")
        if key not in types:
            close = difflib.get_close_matches(key, list(types), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{command}: unknown option {key!r}{hint}; keys: {valid}")
        try:
            out[key] = types[key](value)
        except ValueError:
            kind = getattr(types[key], "__name__", "value")
            raise ConfigError(f"{command}: {key}={value!r} is not a valid {kind}") from None
    return out


def flag_hint(flag: str, value: str | None = None) -> str:
    """How to write an unknown ``--flag [VALUE]`` as a run-config override.

    ``--epochs 3`` -> ``trainer.max_epochs=3`` (the closest real config keys, in CLI
    spelling); a flag naming no config key gets the general ``key=value`` advice.
    """
    from visionforge.config.loader import config_keys, suggest_keys

    name, _, inline = flag.lstrip("-").partition("=")
    value = inline or value or "VALUE"
    key = name.replace("-", "_")
    close = [key] if key in config_keys() else suggest_keys(key, n=2)
    if close:
        return (f"{flag}: settings are key=value overrides; did you mean "
                + " or ".join(f"{k}={value}" for k in close) + "?")
    return (f"{flag}: settings are key=value overrides, e.g. trainer.max_epochs=3 "
            "(see `visionforge config show`)")
