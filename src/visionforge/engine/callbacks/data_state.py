"""``LoaderStateRestorer``: put a resumed run's training loader back on the saved batch.

Lightning restores a stateful loader's position only when its own data setup runs
after the checkpoint is loaded; schedulers that ask for
``trainer.estimated_stepping_batches`` (OneCycle, warmup-cosine) set the data up
earlier, and the saved position would be dropped. This callback applies it from
the checkpoint directly.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

__all__ = ["LoaderStateRestorer"]


class LoaderStateRestorer(Callback):
    """Load the saved ``state_dict`` of ``loader`` (a ``ResumableDataLoader``) on resume."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        states = (
            checkpoint.get("loops", {})
            .get("fit_loop", {})
            .get("state_dict", {})
            .get("combined_loader")
        )
        if states:
            self.loader.load_state_dict(states[0])
