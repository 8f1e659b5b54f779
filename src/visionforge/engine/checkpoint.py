"""Training checkpoints: atomic writes and pickle-free reads.

Lightning writes checkpoints through a ``CheckpointIO`` plugin; ours writes to a
temporary file, fsyncs it and renames it over the target, so killing the process
at any moment leaves either the previous checkpoint or the complete new one.
Checkpoints hold only tensors and plain Python data (the engine keeps
hyper-parameters out of them), so they load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from visionforge.io import atomic_torch_save, model_state_from_checkpoint, safe_torch_load

__all__ = [
    "AtomicCheckpointIO",
    "load_checkpoint",
    "model_state_from_checkpoint",
    "LAST",
    "BEST",
    "checkpoint_paths",
]

LAST = "last.ckpt"
BEST = "best.ckpt"


def checkpoint_paths(output_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Where a run keeps its ``last`` and ``best`` checkpoints."""
    root = Path(output_dir) / "checkpoints"
    return {"dir": root, "last": root / LAST, "best": root / BEST}


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a training checkpoint with ``weights_only=True`` (never runs pickled code)."""
    return safe_torch_load(path, map_location=map_location, what="checkpoint")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO with atomic (temp + fsync + rename) saves and safe loads."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if weights_only is False:  # an explicit request for full unpickling (trusted file)
            return super().load_checkpoint(path, map_location=map_location, weights_only=False)
        return load_checkpoint(path, map_location=map_location or "cpu")
