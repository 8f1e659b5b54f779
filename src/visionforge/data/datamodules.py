"""Lightning ``LightningDataModule``s for folders, segmentation pairs, signals and local
copies of CIFAR-10/100, ImageNet and COCO. Nothing is ever downloaded: a missing
root raises :class:`DataError` saying where to put the files.

DataLoader defaults keep a GPU fed: ``num_workers = min(8, usable CPUs)``,
``pin_memory`` when CUDA is available, persistent workers and ``prefetch_factor=4``
when workers are used; ``num_workers=0`` works too (debugging, tiny data).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Dataset, Subset

from visionforge.data.classification import ClassificationDataset
from visionforge.data.folders import scan_class_folders, split_dirs
from visionforge.data.splits import make_split_records, stratified_assign, write_manifest
from visionforge.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    eval_transforms,
    train_transforms,
)
from visionforge.errors import DataError
from visionforge.models.contract import InputContract
from visionforge.registry import DATAMODULES

__all__ = [
    "loader_kwargs",
    "image_transform_pair",
    "ImageFolderDataModule",
    "SegmentationDataModule",
    "SignalDataModule",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "ImageNetDataModule",
    "COCOSegmentationDataModule",
]


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def loader_kwargs(
    num_workers: int | None = None,
    pin_memory: bool | None = None,
    persistent_workers: bool | None = None,
    prefetch_factor: int | None = None,
) -> dict[str, Any]:
    """DataLoader keyword arguments with GPU-friendly defaults (see the module docstring)."""
    import torch

    nw = min(8, _cpu_count()) if num_workers is None else int(num_workers)
    kw: dict[str, Any] = {
        "num_workers": nw,
        "pin_memory": torch.cuda.is_available() if pin_memory is None else pin_memory,
    }
    if nw > 0:  # these two are invalid with 0 workers
        kw["persistent_workers"] = True if persistent_workers is None else persistent_workers
        kw["prefetch_factor"] = prefetch_factor or 4
    return kw


class _DataModule(L.LightningDataModule):
    """Shared loader plumbing. Subclasses set ``task``, ``default_image_size`` (the one default
    per kind, also used by ``visionforge train``) and ``default_batch_size``, and fill
    ``train_set``/``val_set``/``test_set``/``class_names`` in ``_build``."""

    task = "classification"
    default_image_size: int | None = None
    default_batch_size = 32

    def __init__(
        self,
        batch_size: int | None = None,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        persistent_workers: bool | None = None,
        prefetch_factor: int | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size or self.default_batch_size
        self.loader_options = loader_kwargs(
            num_workers, pin_memory, persistent_workers, prefetch_factor
        )
        self.collate_fn = collate_fn
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.class_names: list[str] = []
        self.manifest_out: str | os.PathLike[str] | None = None
        self._ready = False

    @property
    def num_classes(self) -> int:
        self.setup()
        return len(self.class_names)

    def setup(self, stage: str | None = None) -> None:
        if not self._ready:
            self._build()
            self._ready = True

    def _build(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _write_manifest(self, rows: list[dict[str, Any]]) -> None:
        """Record the split (``path,label,split`` rows) at ``manifest_out`` when one is set."""
        if self.manifest_out is not None and rows:
            write_manifest(rows, self.manifest_out)

    def summary(self) -> dict[str, Any]:
        """What the data holds, for ``dataset.json`` and the run report."""
        self.setup()
        sizes = {s: len(d) for s, d in (("train", self.train_set), ("val", self.val_set),
                                        ("test", self.test_set)) if d is not None}
        root = getattr(self, "root", None)
        return {"root": None if root is None else str(root), "classes": len(self.class_names),
                "split_sizes": sizes}

    def _loader(self, ds: Dataset | None, train: bool, sampler: Any = None) -> DataLoader | None:
        self.setup()
        if ds is None:
            return None
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            drop_last=train and len(ds) > self.batch_size,  # type: ignore[arg-type]
            collate_fn=self.collate_fn if train else None,
            **self.loader_options,
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup()
        return self._loader(self.train_set, True)  # type: ignore[return-value]

    def val_dataloader(self) -> DataLoader | list[Any]:
        return self._loader(self.val_set, False) or []

    def test_dataloader(self) -> DataLoader | list[Any]:
        return self._loader(self.test_set, False) or []


def _need_root(root: Path, what: str, layout: str) -> None:
    if not root.is_dir():
        raise DataError(
            f"{what} not found at {root}. Put the files there as {layout} "
            "(visionforge never downloads datasets)."
        )


def image_transform_pair(
    task: str,
    image_size: int | Sequence[int] | None,
    *,
    contract: InputContract | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    augment: bool = True,
    train_transform: Callable[..., Any] | None = None,
    eval_transform: Callable[..., Any] | None = None,
    ignore_index: int = 0,
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(train, eval)`` transforms of an image datamodule; given ones are kept.

    ``contract`` (the model's :class:`InputContract`) takes the place of ``mean``/``std``;
    ``augment=False`` trains on the deterministic evaluation transform.
    """
    norm = {"contract": contract} if contract is not None else {"mean": mean, "std": std}
    eval_tf = eval_transform or eval_transforms(task, image_size, **norm)
    if train_transform is not None:
        return train_transform, eval_tf
    if not augment:
        return eval_tf, eval_tf
    size = image_size if image_size is not None else 32
    return train_transforms(task, size, ignore_index=ignore_index, **norm), eval_tf


@DATAMODULES.register("image_folder", aliases=("ImageFolderDataModule", "classification", "folder"))
class ImageFolderDataModule(_DataModule):
    """Classification from ``root/<class>/*`` (split by a stratified manifest),
    ``root/{train,val,test}/<class>/*``, or an explicit ``manifest`` file.

    Without split folders or a manifest, the split is made with ``ratios``/``seed``
    and written to ``manifest_out`` when given (e.g. the run directory). ``contract``
    (a model's :class:`InputContract`) replaces ``mean``/``std``. ``cache="memory"|"disk"``
    decodes each image once (:mod:`visionforge.data.cache`; ``cache_dir`` for disk).
    """

    default_image_size = 64
    default_mean: Sequence[float] | None = None
    default_std: Sequence[float] | None = None

    def __init__(
        self,
        root: str | os.PathLike[str],
        batch_size: int | None = None,
        image_size: int | Sequence[int] | None = None,
        *,
        manifest: str | os.PathLike[str] | None = None,
        manifest_out: str | os.PathLike[str] | None = None,
        ratios: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        contract: InputContract | None = None,
        augment: bool = True,
        train_transform: Callable[..., Any] | None = None,
        eval_transform: Callable[..., Any] | None = None,
        channels: int | None = 3,
        on_bad_image: str = "error",
        cache: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        **loader: Any,
    ) -> None:
        from visionforge.data.cache import make_cache

        super().__init__(batch_size, **loader)
        self.root = Path(root)
        self.manifest, self.manifest_out = manifest, manifest_out
        self.ratios, self.seed = ratios, seed
        self.mean = mean if mean is not None or contract is not None else self.default_mean
        self.std = std if std is not None or contract is not None else self.default_std
        self.train_transform, self.eval_transform = image_transform_pair(
            "classification", image_size or self.default_image_size, contract=contract,
            mean=self.mean, std=self.std, augment=augment, train_transform=train_transform,
            eval_transform=eval_transform,
        )
        # one cache shared by the splits: "none" | "memory" | "disk" (data/cache.py)
        self.ds_kwargs = {"channels": channels, "on_bad_image": on_bad_image,
                          "cache": make_cache(cache, cache_dir)}
        self.skipped: list[dict[str, str]] = []

    def _make(self, split: str, manifest: Any) -> ClassificationDataset | None:
        t = self.train_transform if split == "train" else self.eval_transform
        try:
            ds = ClassificationDataset(
                self.root,
                split,
                t,
                manifest=manifest,
                classes=self.class_names or None,
                **self.ds_kwargs,
            )
        except DataError:
            if split == "train":
                raise
            return None  # no val/test part in this layout
        self.skipped.extend(ds.skipped)
        return ds

    def _build(self) -> None:
        _need_root(self.root, "image folder dataset", f"{self.root}/<class_name>/<images>")
        manifest: Any = self.manifest
        if manifest is None and "train" not in split_dirs(self.root):
            classes, items = scan_class_folders(self.root)
            manifest = make_split_records(
                [(p, classes[i]) for p, i in items], self.ratios, self.seed, root=self.root
            )
            self._write_manifest(manifest)
        self.train_set = self._make("train", manifest)
        self.class_names = list(self.train_set.classes)  # type: ignore[union-attr]
        self.val_set = self._make("val", manifest)
        self.test_set = self._make("test", manifest)

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        counts: dict[str, int] = dict.fromkeys(self.class_names, 0)
        for ds in (self.train_set, self.val_set, self.test_set):
            for name, n in (ds.class_counts() if ds is not None else {}).items():
                counts[name] = counts.get(name, 0) + n
        return {**out, "class_counts": counts, "skipped": len(self.skipped)}


def _seg_dirs(root: Path, split: str | None) -> tuple[Path, Path] | None:
    base = root / split if split else root
    if (base / "images").is_dir() and (base / "masks").is_dir():
        return base / "images", base / "masks"
    return None


def mask_class_count(ds: Any) -> int:
    """``1 + the largest class index`` in the masks of a :class:`SegmentationDataset`."""
    from visionforge.data.images import load_mask

    top = 0
    for _, mask_path in ds.samples:
        values = np.unique(load_mask(mask_path, ds.color_map))
        if ds.ignore_index is not None:
            values = values[values != ds.ignore_index]
        if values.size:
            top = max(top, int(values.max()))
    return top + 1


@DATAMODULES.register("segmentation", aliases=("SegmentationDataModule",))
class SegmentationDataModule(_DataModule):
    """Segmentation from ``root/{train,val,test}/{images,masks}`` (a split the user fixed, e.g.
    by region), ``root/{images,masks}`` or explicit ``images_dir``/``masks_dir`` (then split by
    ``ratios``/``seed`` and recorded in ``manifest_out``). ``num_classes=None`` reads it from the
    masks. Extra keyword arguments of :class:`SegmentationDataset` (``color_map``,
    ``mask_suffix``, ``channels``...) go in ``dataset_kwargs``; ``cache="memory"|"disk"``
    decodes each image and mask once (:mod:`visionforge.data.cache`)."""

    task = "segmentation"
    default_image_size = 128
    default_batch_size = 8

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        num_classes: int | None = None,
        batch_size: int | None = None,
        image_size: int | Sequence[int] | None = None,
        *,
        images_dir: str | os.PathLike[str] | None = None,
        masks_dir: str | os.PathLike[str] | None = None,
        manifest_out: str | os.PathLike[str] | None = None,
        ignore_index: int | None = None,
        class_names: Sequence[str] | None = None,
        ratios: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        contract: InputContract | None = None,
        augment: bool = True,
        train_transform: Callable[..., Any] | None = None,
        eval_transform: Callable[..., Any] | None = None,
        dataset_kwargs: dict[str, Any] | None = None,
        cache: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        **loader: Any,
    ) -> None:
        from visionforge.data.cache import make_cache

        super().__init__(batch_size, **loader)
        if root is None and (images_dir is None or masks_dir is None):
            raise DataError("segmentation data needs a root (with images/ and masks/) or "
                            "images_dir and masks_dir")
        self.root = Path(root) if root is not None else None
        self.dirs = (Path(images_dir), Path(masks_dir)) if images_dir and masks_dir else None
        self.manifest_out = manifest_out
        self.n_classes, self.ignore_index = num_classes, ignore_index
        self.given_names = list(class_names) if class_names else None
        self.class_names = self.given_names or (
            [str(i) for i in range(num_classes)] if num_classes else [])
        self.ratios, self.seed = ratios, seed
        self.train_transform, self.eval_transform = image_transform_pair(
            "segmentation", image_size or self.default_image_size, contract=contract, mean=mean,
            std=std, augment=augment, train_transform=train_transform,
            eval_transform=eval_transform, ignore_index=ignore_index or 0,
        )
        self.dataset_kwargs = dataset_kwargs or {}
        self.cache = make_cache(cache, cache_dir)

    def _ds(self, dirs: tuple[Path, Path], transform: Any, validate: bool = False) -> Any:
        from visionforge.data.segmentation import SegmentationDataset

        return SegmentationDataset(
            *dirs,
            transform=transform,
            num_classes=self.n_classes,
            ignore_index=self.ignore_index,
            class_names=self.class_names or None,
            validate=validate,
            cache=self.cache,
            **self.dataset_kwargs,
        )

    def _split_dirs(self) -> dict[str, tuple[Path, Path]] | None:
        """Fixed ``train/val/test`` pair folders under the root, or ``None``."""
        if self.dirs is not None or self.root is None or not _seg_dirs(self.root, "train"):
            return None
        return {s: d for s in ("train", "val", "test") if (d := _seg_dirs(self.root, s))}

    def _set_classes(self, scans: list[Any]) -> None:
        if self.n_classes is None:
            self.n_classes = max(mask_class_count(ds) for ds in scans)
        if self.n_classes < 2:
            raise DataError("masks hold a single class; segmentation needs at least two")
        self.class_names = self.given_names or [str(i) for i in range(self.n_classes)]

    def _build(self) -> None:
        if self.dirs is None:
            assert self.root is not None
            _need_root(self.root, "segmentation dataset",
                       f"{self.root}/images/* + {self.root}/masks/* (same stems)")
        presplit = self._split_dirs()
        if presplit:
            scans = {s: self._ds(d, None, validate=True) for s, d in presplit.items()}
            self._set_classes(list(scans.values()))
            for split, dirs in presplit.items():
                tf = self.train_transform if split == "train" else self.eval_transform
                setattr(self, f"{split}_set", self._ds(dirs, tf))
            self._write_manifest([{"path": Path(img).name, "label": "", "split": s}
                                  for s, ds in scans.items() for img, _ in ds.samples])
            return
        dirs = self.dirs or _seg_dirs(self.root, None)  # type: ignore[arg-type]
        if dirs is None:
            raise DataError(
                f"{self.root}: expected {self.root}/images and {self.root}/masks "
                f"(or {self.root}/train/images and {self.root}/train/masks)"
            )
        scan = self._ds(dirs, None, validate=True)
        self._set_classes([scan])
        assign = np.asarray(stratified_assign([0] * len(scan), self.ratios, self.seed))
        parts = {s: np.nonzero(assign == s)[0].tolist() for s in ("train", "val", "test")}
        self._write_manifest([{"path": Path(scan.samples[i][0]).name, "label": "", "split": s}
                              for s, idx in parts.items() for i in idx])
        if not parts["train"]:
            raise DataError(f"segmentation data in {dirs[0]} has no training pairs")
        for split, idx in parts.items():
            tf = self.train_transform if split == "train" else self.eval_transform
            full = self._ds(dirs, tf)
            full.samples = scan.samples  # the validated list (bad pairs dropped when asked)
            setattr(self, f"{split}_set", Subset(full, idx) if idx else None)

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        if self.dirs is not None:
            out.update(images=str(self.dirs[0]), masks=str(self.dirs[1]))
        return {**out, "num_classes": self.n_classes}


@DATAMODULES.register("signals", aliases=("SignalDataModule",))
class SignalDataModule(_DataModule):
    """1-D signal windows from ``source`` (OSDB JSON/flat CSV, or ``.npy``/``.npz``/``.csv``/``.ts``
    series files: use ``source_kind="osdb"`` or ``"series"``), or given ``train``/``val``/``test``
    :class:`SignalDataset` objects. Splits are by event; ``balanced=True`` draws training
    batches with a class-balanced weighted sampler."""

    task = "signal"
    default_batch_size = 64

    def __init__(
        self,
        source: str | os.PathLike[str] | Sequence[Any] | None = None,
        batch_size: int | None = None,
        *,
        train: Any = None,
        val: Any = None,
        test: Any = None,
        source_kind: str | None = None,
        ratios: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        balanced: bool = False,
        label_map: dict[str, int] | None = None,
        window_kwargs: dict[str, Any] | None = None,
        series_kwargs: dict[str, Any] | None = None,
        manifest_out: str | os.PathLike[str] | None = None,
        **loader: Any,
    ) -> None:
        super().__init__(batch_size, **loader)
        self.manifest_out = manifest_out
        if source is None and train is None:
            raise DataError("SignalDataModule needs a source file or a train dataset")
        self.source, self.source_kind = source, source_kind
        self.train_set, self.val_set, self.test_set = train, val, test
        self.ratios, self.seed, self.balanced = ratios, seed, balanced
        self.label_map = label_map
        self.window_kwargs = window_kwargs or {}
        self.series_kwargs = series_kwargs or {}

    def _build(self) -> None:
        from visionforge.data.signals import SignalDataset, load_series_dataset, split_by_event

        if self.source is not None:
            kind = self.source_kind
            if kind is None and isinstance(self.source, str | os.PathLike):
                kind = (
                    "series"
                    if str(self.source).lower().endswith((".npy", ".npz", ".ts"))
                    else "osdb"
                )
            if kind == "series":
                ds = load_series_dataset(self.source, **self.series_kwargs)  # type: ignore[arg-type]
            else:
                ds = SignalDataset.from_osdb(self.source, self.label_map, **self.window_kwargs)
                if self.label_map is None and ds.num_classes <= 2:  # OSDB's default labels
                    ds.class_names = ["non-seizure", "seizure"][: ds.num_classes]
            parts = split_by_event(ds, self.ratios, self.seed)
            self._write_manifest([{"path": str(ev), "label": int(lab), "split": s}
                                  for s, part in parts.items()
                                  for ev, lab in zip(part.event_ids, part.labels)])
            self.train_set, self.val_set, self.test_set = (
                parts["train"],
                parts.get("val"),
                parts.get("test"),
            )
        self.class_names = list(self.train_set.class_names)

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        ds = self.train_set
        out["root"] = str(self.source) if isinstance(self.source, str | os.PathLike) else None
        windows = sum(out["split_sizes"].values())
        return {**out, "windows": windows, "channels": ds.channels, "length": ds.length}

    def train_dataloader(self) -> DataLoader:
        self.setup()
        if self.balanced:
            from visionforge.data.signals import balanced_sampler

            return self._loader(
                self.train_set, True, balanced_sampler(self.train_set.labels, seed=self.seed)
            )  # type: ignore[return-value]
        return self._loader(self.train_set, True)  # type: ignore[return-value]


class _CIFARDataModule(_DataModule):
    name = "cifar10"
    default_image_size = 32
    default_batch_size = 128

    def __init__(
        self,
        root: str | os.PathLike[str],
        batch_size: int | None = None,
        image_size: int | None = None,
        *,
        val_fraction: float = 0.1,
        seed: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        contract: InputContract | None = None,
        augment: bool = True,
        train_transform: Callable[..., Any] | None = None,
        eval_transform: Callable[..., Any] | None = None,
        manifest_out: str | os.PathLike[str] | None = None,
        **loader: Any,
    ) -> None:
        super().__init__(batch_size, **loader)
        self.root = Path(root)
        self.val_fraction, self.seed = val_fraction, seed
        self.manifest_out = manifest_out
        self.train_transform, self.eval_transform = image_transform_pair(
            "classification", image_size or self.default_image_size, contract=contract,
            mean=mean, std=std, augment=augment, train_transform=train_transform,
            eval_transform=eval_transform,
        )

    def _build(self) -> None:
        from visionforge.data.arrays import ArrayImageDataset
        from visionforge.data.cifar import CIFAR_LAYOUTS, load_cifar_batches

        layout = CIFAR_LAYOUTS[self.name]
        where = f"{self.root}/{layout['folder']}/ (extract {layout['url']}) or {self.root}/train/<class>/ + {self.root}/test/<class>/"
        _need_root(self.root, self.name.upper(), where)
        if (self.root / "train").is_dir():  # an image-folder export
            self.train_set = ClassificationDataset(self.root, "train", self.train_transform)
            self.class_names = list(self.train_set.classes)
            self.test_set = ClassificationDataset(
                self.root, "test", self.eval_transform, classes=self.class_names
            )
            return
        x, y, names = load_cifar_batches(self.root, self.name, "train")
        xt, yt, _ = load_cifar_batches(self.root, self.name, "test")
        self.class_names = names
        assign = np.asarray(
            stratified_assign(y.tolist(), (1 - self.val_fraction, self.val_fraction, 0), self.seed)
        )
        tr, va = assign == "train", assign == "val"
        self._write_manifest(
            [{"path": f"train[{i}]", "label": names[int(y[i])], "split": str(a)}
             for i, a in enumerate(assign)]
            + [{"path": f"test[{i}]", "label": names[int(t)], "split": "test"}
               for i, t in enumerate(yt)])
        self.train_set = ArrayImageDataset(x[tr], y[tr], names, self.train_transform)
        self.val_set = (
            ArrayImageDataset(x[va], y[va], names, self.eval_transform) if va.any() else None
        )
        self.test_set = ArrayImageDataset(xt, yt, names, self.eval_transform)


@DATAMODULES.register("cifar10", aliases=("CIFAR10DataModule",))
class CIFAR10DataModule(_CIFARDataModule):
    """CIFAR-10 from a local ``root`` (python batches or image-folder export); never downloads."""

    name = "cifar10"


@DATAMODULES.register("cifar100", aliases=("CIFAR100DataModule",))
class CIFAR100DataModule(_CIFARDataModule):
    """CIFAR-100 (fine labels) from a local ``root``; never downloads."""

    name = "cifar100"


@DATAMODULES.register("imagenet", aliases=("ImageNetDataModule",))
class ImageNetDataModule(ImageFolderDataModule):
    """ImageNet from ``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG``; never downloads.

    Normalises with the ImageNet mean/std unless given a model ``contract`` (or mean/std).
    """

    default_image_size = 224
    default_batch_size = 256
    default_mean = IMAGENET_MEAN
    default_std = IMAGENET_STD

    def _build(self) -> None:
        layout = f"{self.root}/train/<wnid>/*.JPEG and {self.root}/val/<wnid>/*.JPEG"
        for split in ("train", "val"):
            d = self.root / split
            _need_root(d, f"ImageNet {split} folder", layout)
            if not any(p.is_dir() for p in d.iterdir()):
                raise DataError(
                    f"{d}: no class folders; sort the images into one folder per class (wnid), "
                    "e.g. with the ILSVRC devkit's validation ground truth"
                )
        super()._build()


@DATAMODULES.register("coco_segmentation", aliases=("COCOSegmentationDataModule", "coco"))
class COCOSegmentationDataModule(_DataModule):
    """COCO-style semantic segmentation from a local root; never downloads.

    Layout: ``root/images/<split>/`` (or ``root/<split>/``) and
    ``root/annotations/instances_<split>.json`` for ``train_split``/``val_split``.
    """

    task = "segmentation"
    default_image_size = 512
    default_batch_size = 8

    def __init__(
        self,
        root: str | os.PathLike[str],
        batch_size: int | None = None,
        image_size: int | Sequence[int] | None = None,
        *,
        train_split: str = "train2017",
        val_split: str = "val2017",
        annotation_prefix: str = "instances",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        contract: InputContract | None = None,
        augment: bool = True,
        **loader: Any,
    ) -> None:
        super().__init__(batch_size, **loader)
        self.root = Path(root)
        self.splits = {"train": train_split, "val": val_split}
        self.prefix = annotation_prefix
        train_tf, eval_tf = image_transform_pair(
            "segmentation", image_size or self.default_image_size, contract=contract, mean=mean,
            std=std, augment=augment,
        )
        self.transforms = {"train": train_tf, "val": eval_tf}

    def _build(self) -> None:
        from visionforge.data.coco import CocoSegmentationDataset

        layout = f"{self.root}/images/{self.splits['train']}/ and {self.root}/annotations/{self.prefix}_{self.splits['train']}.json"
        _need_root(self.root, "COCO dataset", layout)
        for key, split in self.splits.items():
            ann = self.root / "annotations" / f"{self.prefix}_{split}.json"
            images = self.root / "images" / split
            images = images if images.is_dir() else self.root / split
            if not ann.is_file() or not images.is_dir():
                if key == "train":
                    raise DataError(
                        f"COCO {split} not found: expected {images}/ and {ann}. Put the files there as {layout}."
                    )
                continue
            ds = CocoSegmentationDataset(images, ann, self.transforms[key])
            setattr(self, f"{key}_set", ds)
            self.class_names = ds.class_names
