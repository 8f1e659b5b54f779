"""The ``best`` and ``last`` checkpoint callbacks of a run.

Both are Lightning ``ModelCheckpoint`` objects with fixed file names (no version
suffixes), so ``checkpoints/best.ckpt`` and ``checkpoints/last.ckpt`` are always
the current ones; atomicity comes from :class:`~visionforge.engine.checkpoint.AtomicCheckpointIO`.
A kill during a write leaves a hidden temporary file (never a half checkpoint); those
are removed when the next run or resume in the folder starts.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

from visionforge.io import remove_stale_temp_files

__all__ = ["RunCheckpoint", "best_checkpoint", "last_checkpoints"]

_log = logging.getLogger(__name__)


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that clears interrupted atomic writes from its folder at start."""

    def _generate_state_key(self, **kwargs: Any) -> str:
        # Keep ModelCheckpoint's key so checkpoints written before this subclass still resume.
        return f"ModelCheckpoint{kwargs!r}"

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if self.dirpath and trainer.is_global_zero:
            for p in remove_stale_temp_files(self.dirpath):
                _log.info("removed %s, left by an interrupted checkpoint write", p)


def best_checkpoint(dirpath: str | os.PathLike[str], monitor: str, mode: str) -> ModelCheckpoint:
    """Keep ``best.ckpt``: the checkpoint with the best ``monitor`` value so far."""
    return RunCheckpoint(
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
    out = [RunCheckpoint(**common)]
    if every_n_train_steps:
        out.append(RunCheckpoint(**common, every_n_train_steps=int(every_n_train_steps)))
    return out
