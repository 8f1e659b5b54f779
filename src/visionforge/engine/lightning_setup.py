"""One-time adjustments of Lightning's per-``Trainer()`` setup cost.

Lightning looks up the entry points of every installed package for callback factories each
time a ``Trainer`` is built: 50-150 ms on an environment with a few hundred packages, the
largest fixed cost of a short run (``benchmarks/trainer_overhead.py`` at 60 steps) and paid
again by every evaluate/predict call. The installed packages do not change while a process
runs, so the lookup is done once per group; the factories themselves still run for every
Trainer, so external callbacks behave exactly as before. Lightning has no option for this,
hence the small wrapper around its module-level function.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import Any

__all__ = ["cache_external_callback_lookup"]


@functools.cache
def _factories(group: str) -> tuple[Any, ...]:
    return tuple(entry_points(group=group))


def _load_external_callbacks(group: str) -> list[Any]:
    """Lightning's ``_load_external_callbacks`` with the entry-point scan cached."""
    out: list[Any] = []
    for factory in _factories(group):
        made = factory.load()()
        out.extend(made if isinstance(made, list) else [made] if made else [])
    return out


def cache_external_callback_lookup() -> None:
    """Install the cached lookup in Lightning's callback connector (idempotent)."""
    from lightning.pytorch.trainer.connectors import callback_connector

    if getattr(callback_connector, "_load_external_callbacks", None) is not None:
        callback_connector._load_external_callbacks = _load_external_callbacks
