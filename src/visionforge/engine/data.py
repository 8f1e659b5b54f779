"""Batches and loaders as the engine sees them.

``unpack_batch`` turns any supported batch (our dicts, ``(x, y, *rest)`` tuples)
into one dict with ``image`` and optional ``label``/``mask``. ``ResumableDataLoader``
is a ``DataLoader`` whose sample order is a pure function of ``(seed, epoch)``
and which implements Lightning's ``state_dict``/``load_state_dict`` protocol, so a
run killed mid-epoch resumes on exactly the next batch. Lightning only fast-forwards
loaders that carry such state; a plain ``DataLoader`` restarts the epoch instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler, Sampler, SequentialSampler

from visionforge.errors import DataError

__all__ = ["unpack_batch", "infer_task", "SeededSampler", "ResumableDataLoader", "make_resumable"]


def _is_mask_like(y: torch.Tensor, x: torch.Tensor) -> bool:
    # A per-pixel target has the input's spatial size: x [B,C,H,W] -> y [B,H,W].
    return x.ndim == 4 and y.ndim == 3 and tuple(y.shape[-2:]) == tuple(x.shape[-2:])


def unpack_batch(batch: Any) -> dict[str, Any]:
    """Normalise a batch to ``{"image": x, "label": y?, "mask": m?, "rest": [...]}``.

    Accepts dicts with ``image`` (or ``x``/``input``) and ``label``/``mask`` keys and tuples
    ``(x, y, *rest)`` where ``y`` is a class index per sample or a mask per pixel; a
    third tuple element shaped like a mask after a label makes a multitask batch.
    """
    if isinstance(batch, Mapping):
        x = next((batch[k] for k in ("image", "x", "input", "inputs") if k in batch), None)
        if x is None:
            raise DataError(
                f"batch dict has keys {sorted(batch)}; expected an 'image' key "
                "(plus 'label' and/or 'mask')"
            )
        out: dict[str, Any] = {"image": x, "rest": []}
        for key in ("label", "mask", "targets"):  # targets: detection boxes, one dict per image
            if batch.get(key) is not None:
                out[key] = batch[key]
        if "label" not in out and batch.get("y") is not None:
            out["label"] = batch["y"]
        return out
    if isinstance(batch, list | tuple):
        if not batch:
            raise DataError("empty batch tuple; expected (inputs, targets, ...)")
        x, rest = batch[0], list(batch[1:])
        out = {"image": x, "rest": []}
        if rest and isinstance(rest[0], torch.Tensor):
            y = rest.pop(0)
            if _is_mask_like(y, x):
                out["mask"] = y
            else:
                out["label"] = y
                if rest and isinstance(rest[0], torch.Tensor) and _is_mask_like(rest[0], x):
                    out["mask"] = rest.pop(0)
        out["rest"] = rest
        return out
    if isinstance(batch, torch.Tensor):
        return {"image": batch, "rest": []}
    raise DataError(
        f"unsupported batch type {type(batch).__name__}; yield dicts with 'image'/'label'/'mask' "
        "or tuples (inputs, targets, ...)"
    )


def infer_task(batch: dict[str, Any], output: Any) -> str:
    """The task implied by an unpacked batch and the model's output on it."""
    if isinstance(output, Mapping):
        return "multitask"
    if "label" in batch and "mask" in batch:
        return "multitask"
    if "mask" in batch:
        return "segmentation"
    x = batch["image"]
    if isinstance(output, torch.Tensor) and output.ndim == 4 and x.ndim == 4:
        return "segmentation"
    if x.ndim == 3:
        return "signal"
    return "classification"


class SeededSampler(Sampler[int]):
    """Index order that depends only on ``(seed, epoch)``; shards itself under DDP.

    ``skip`` drops the first indices of the next iteration (used once after a
    mid-epoch resume). Rank and world size are read lazily from
    ``torch.distributed`` so one sampler object works before and after the
    process group exists.
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int = 0) -> None:
        self.n, self.shuffle, self.seed = int(n), bool(shuffle), int(seed)
        self.epoch = 0
        self.skip = 0

    @staticmethod
    def _world() -> tuple[int, int]:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            idx = torch.randperm(self.n, generator=g).tolist()
        else:
            idx = list(range(self.n))
        rank, world = self._world()
        if world > 1:  # pad like DistributedSampler so every rank sees the same count
            per = -(-self.n // world)
            idx = (idx * (1 + per * world // max(self.n, 1)))[: per * world]
            idx = idx[rank::world]
        return idx

    def __iter__(self) -> Iterator[int]:
        # A generator: the order is computed at the first next(), after Lightning
        # has called set_epoch / load_state_dict.
        idx = self._indices()
        skip, self.skip = self.skip, 0
        yield from idx[skip:]

    def __len__(self) -> int:
        rank, world = self._world()
        return -(-self.n // world) if world > 1 else self.n


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` over a map-style dataset with a :class:`SeededSampler`.

    ``state_dict()`` records the epoch and how many batches this epoch has yielded;
    ``load_state_dict()`` makes the next iteration continue from there.
    """

    def __init__(
        self,
        dataset: Any,
        *,
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        sampler = SeededSampler(len(dataset), shuffle=shuffle, seed=seed)
        kwargs.pop("generator", None)
        super().__init__(
            dataset, batch_size=batch_size, sampler=sampler, generator=torch.Generator(), **kwargs
        )
        self._yielded = 0

    def __iter__(self) -> Iterator[Any]:
        # Worker base seeds come from our own generator, reseeded from (seed, epoch): creating
        # an iterator then never draws from the global RNG, whose state a resumed run restores.
        self.generator.manual_seed(self.sampler.seed * 1_000_003 + self.sampler.epoch + 1)
        start = self.sampler.skip // max(self.batch_size or 1, 1)
        self._yielded = start
        for batch in super().__iter__():
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.sampler.epoch), "batches": int(self._yielded)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.set_epoch(int(state.get("epoch", 0)))
        batches = int(state.get("batches", 0))
        if batches >= len(self):  # saved at the end of an epoch: nothing left to skip
            batches = 0
        self.sampler.skip = batches * int(self.batch_size or 1)


def make_resumable(loader: Any, seed: int) -> Any:
    """Rebuild a plain shuffling/sequential ``DataLoader`` as a :class:`ResumableDataLoader`.

    Loaders with custom samplers, batch samplers or iterable datasets are returned
    unchanged (their order is theirs to control).
    """
    if isinstance(loader, ResumableDataLoader) or type(loader) is not DataLoader:
        return loader
    if loader.batch_size is None or not isinstance(
        loader.sampler, RandomSampler | SequentialSampler
    ):
        return loader
    if isinstance(loader.sampler, RandomSampler) and (
        loader.sampler.replacement or loader.sampler._num_samples is not None
    ):
        return loader
    try:
        len(loader.dataset)
    except TypeError:
        return loader
    kwargs = {
        "num_workers": loader.num_workers,
        "collate_fn": loader.collate_fn,
        "pin_memory": loader.pin_memory,
        "drop_last": loader.drop_last,
        "timeout": loader.timeout,
        "worker_init_fn": loader.worker_init_fn,
        "persistent_workers": loader.persistent_workers,
    }
    if loader.num_workers > 0:
        kwargs["prefetch_factor"] = loader.prefetch_factor
    return ResumableDataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        shuffle=isinstance(loader.sampler, RandomSampler),
        seed=seed,
        **kwargs,
    )
