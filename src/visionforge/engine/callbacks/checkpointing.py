"""The ``best`` and ``last`` checkpoint callbacks of a run.

Both are Lightning ``ModelCheckpoint`` objects with fixed file names (no version
suffixes), so ``checkpoints/best.ckpt`` and ``checkpoints/last.ckpt`` are always
the current ones; atomicity comes from :class:`~visionforge.engine.checkpoint.AtomicCheckpointIO`.
"""

from __future__ import annotations

import os

from lightning.pytorch.callbacks import ModelCheckpoint

__all__ = ["best_checkpoint", "last_checkpoints"]


def best_checkpoint(dirpath: str | os.PathLike[str], monitor: str, mode: str) -> ModelCheckpoint:
    """Keep ``best.ckpt``: the checkpoint with the best ``monitor`` value so far."""
    return ModelCheckpoint(
        dirpath=dirpath,
        filename="best",
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        save_last=False,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )


def last_checkpoints(
    dirpath: str | os.PathLike[str], every_n_train_steps: int | None = None
) -> list[ModelCheckpoint]:
    """Keep ``last.ckpt`` up to date every epoch (and every N optimizer steps if asked)."""
    common = dict(
        dirpath=dirpath,
        filename="last",
        monitor=None,
        save_top_k=1,
        save_last=False,
        enable_version_counter=False,
    )
    out = [ModelCheckpoint(**common)]
    if every_n_train_steps:
        out.append(ModelCheckpoint(**common, every_n_train_steps=int(every_n_train_steps)))
    return out
