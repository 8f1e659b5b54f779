"""``data.batch_size=auto``: the largest batch that fits, found by Lightning's batch-size finder.

Lightning's ``Tuner.scale_batch_size`` (the ``BatchSizeFinder`` callback) doubles the batch
size, running a few training steps each time, until the device runs out of memory, then
restores the weights. On a CPU nothing runs out of memory before the machine swaps, so
there the search is capped at :data:`CPU_MAX_BATCH`: past it a bigger batch makes no step
faster per sample, it only takes optimizer steps away from a short run.
"""

from __future__ import annotations

import logging
import tempfile
from typing import Any

__all__ = ["find_batch_size", "CPU_MAX_BATCH", "GPU_MAX_BATCH"]

_log = logging.getLogger(__name__)

#: the largest batch size tried on a CPU (no out-of-memory signal to stop the search there)
CPU_MAX_BATCH = 128
#: the largest tried on an accelerator (Lightning's own default limit is 8192)
GPU_MAX_BATCH = 4096


def _datamodule(dataset: Any, batch_size: int, loader_kwargs: dict[str, Any]) -> Any:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    class _SizedData(pl.LightningDataModule):
        """``batch_size`` is the attribute Lightning's finder rewrites between trials."""

        def __init__(self) -> None:
            super().__init__()
            self.batch_size = batch_size

        def train_dataloader(self) -> DataLoader:
            return DataLoader(dataset, batch_size=self.batch_size, shuffle=True, **loader_kwargs)

        def val_dataloader(self) -> list:
            return []  # the finder measures training steps only

    return _SizedData()


def find_batch_size(
    trainer: Any,
    dataset: Any,
    *,
    init_val: int = 16,
    max_val: int | None = None,
    loader_kwargs: dict[str, Any] | None = None,
    steps_per_trial: int = 2,
) -> int:
    """The largest batch size (a power of two times ``init_val``) that trains on this device.

    Args:
        trainer: a :class:`visionforge.engine.Trainer` (its model, device and precision are used;
            the model's weights are restored afterwards).
        dataset: the training dataset.
        init_val: the first size tried.
        max_val: the largest size tried (default :data:`CPU_MAX_BATCH` on a CPU,
            :data:`GPU_MAX_BATCH` elsewhere); never more than the dataset's length.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.tuner import Tuner
    from torch.utils.data import DataLoader

    from visionforge.errors import DataError

    if len(dataset) == 0:
        raise DataError("data.batch_size=auto: the training set is empty")
    precision, accelerator, _ = trainer._precision_and_accelerator()
    if max_val is None:
        max_val = CPU_MAX_BATCH if accelerator == "cpu" else GPU_MAX_BATCH
    max_val = max(1, min(int(max_val), len(dataset)))
    init_val = max(1, min(int(init_val), max_val))
    kwargs = dict(loader_kwargs or {})
    module = trainer._ensure_module(DataLoader(dataset, batch_size=min(init_val, 2), **kwargs))
    dm = _datamodule(dataset, init_val, kwargs)
    with tempfile.TemporaryDirectory() as tmp:  # the finder's temporary weights checkpoint
        pl_trainer = pl.Trainer(
            accelerator=accelerator, devices=1, precision=precision, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            default_root_dir=tmp, max_epochs=1, num_sanity_val_steps=0, limit_val_batches=0,
        )
        found = Tuner(pl_trainer).scale_batch_size(
            module, datamodule=dm, mode="power", init_val=init_val, max_val=max_val,
            steps_per_trial=steps_per_trial,
        )
    size = max(1, min(int(found or init_val), max_val))
    _log.info("batch-size finder: %d (tried %d..%d on %s)", size, init_val, max_val, accelerator)
    return size
