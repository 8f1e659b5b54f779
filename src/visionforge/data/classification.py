"""Image classification dataset over class folders, split folders or a split manifest."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from visionforge.data.folders import find_classes, scan_class_folders, split_dirs
from visionforge.data.images import check_image_headers, decode_image, verify_image
from visionforge.data.splits import DEFAULT_MANIFEST, read_manifest
from visionforge.data.transforms import finish_sample, sample_tuple, to_sample
from visionforge.errors import ConfigError, DataError
from visionforge.registry import DATASETS

__all__ = ["ClassificationDataset", "check_policy"]
_log = logging.getLogger(__name__)
POLICIES = ("error", "skip")


def check_policy(on_bad_image: str) -> str:
    """Validate an ``on_bad_image`` policy name."""
    if on_bad_image not in POLICIES:
        raise ConfigError(f"on_bad_image={on_bad_image!r}; choose 'error' or 'skip'")
    return on_bad_image


@DATASETS.register("image_folder", aliases=("classification", "ClassificationDataset"))
class ClassificationDataset(Dataset):
    """Images in ``root/<class>/*`` (png, jpg, jpeg, bmp, tif, tiff); yields ``{"image", "label"}``.

    Where the samples come from:

    * ``manifest`` (CSV/JSON file ``path,label,split`` with paths relative to ``root``, or
      a list of such records) filtered by ``split``;
    * ``root/<split>/<class>/*`` when ``split`` is given and that folder exists;
    * ``root/splits.csv`` (written by ``visionforge data split``) when ``split`` is given;
    * otherwise every image under ``root/<class>/``.

    Images are decoded by the rule in :mod:`visionforge.data.images` to ``channels``
    channels; ``image`` is float32 ``[C, H, W]`` in [0, 1] after ``transform`` (a
    callable on the sample dict, e.g. a ``transforms.v2`` pipeline).

    ``on_bad_image="error"`` raises :class:`DataError` naming the file and the reason
    when a file cannot be decoded; ``"skip"`` decodes every file once up front, drops
    unreadable ones and lists them in ``skipped`` and :meth:`report`. ``verify=True``
    runs that up-front check in ``"error"`` mode too.

    ``cache`` (``"memory"``, ``"disk"`` or a :class:`~visionforge.data.cache.DecodedCache`)
    keeps decoded images so each file is decoded once (:mod:`visionforge.data.cache`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        *,
        manifest: str | os.PathLike[str] | list[dict[str, Any]] | None = None,
        classes: list[str] | None = None,
        channels: int | None = 3,
        on_bad_image: str = "error",
        verify: bool | None = None,
        return_path: bool = False,
        return_tuple: bool = False,
        cache: Any = None,
    ) -> None:
        from visionforge.data.cache import make_cache

        self.root = Path(root)
        self.cache = make_cache(cache)
        self.split = split
        self.transform = transform
        self.channels = channels
        self.on_bad_image = check_policy(on_bad_image)
        self.return_path = return_path
        self.return_tuple = return_tuple  # yield (image, target) tuples instead of dicts
        self.skipped: list[dict[str, str]] = []
        self.source = ""
        self.classes, self.samples = self._find_samples(manifest, classes)
        self._check_headers()
        if verify or (verify is None and on_bad_image == "skip"):
            self._verify()
        if not self.samples:
            raise DataError(f"{self.root}: dataset{f' split {split!r}' if split else ''} is empty")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.targets = [t for _, t in self.samples]

    # -- discovery ----------------------------------------------------------
    def _find_samples(
        self,
        manifest: str | os.PathLike[str] | list[dict[str, Any]] | None,
        classes: list[str] | None,
    ) -> tuple[list[str], list[tuple[Path, int]]]:
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset folder not found")
        if manifest is None and self.split is not None:
            dirs = split_dirs(self.root)
            if self.split in dirs:
                if classes is None:  # union over splits keeps indices equal across splits
                    classes = sorted({c for d in dirs.values() for c in find_classes(d)})
                self.source = str(dirs[self.split])
                return scan_class_folders(dirs[self.split], classes, allow_missing=True)
            for name in (DEFAULT_MANIFEST, "splits.json"):
                if (self.root / name).is_file():
                    manifest = self.root / name
                    break
            else:
                raise DataError(
                    f"{self.root}: no {self.split!r} split: neither {self.root / self.split}/ nor a "
                    f"manifest exists; run `visionforge data split {self.root}` or pass manifest="
                )
        if manifest is not None:
            return self._from_manifest(manifest, classes)
        if "train" in split_dirs(self.root) and find_classes(self.root / "train"):
            raise DataError(
                f"{self.root}: has train/val/test folders; pass split='train' (or 'val'/'test')"
            )
        self.source = str(self.root)
        return scan_class_folders(self.root, classes)

    def _from_manifest(
        self, manifest: str | os.PathLike[str] | list[dict[str, Any]], classes: list[str] | None
    ) -> tuple[list[str], list[tuple[Path, int]]]:
        if isinstance(manifest, list):  # records in memory, e.g. from make_split_records
            records, manifest = manifest, "<manifest records>"
        else:
            records = read_manifest(manifest)
        self.source = str(manifest)
        if classes is None:
            classes = sorted({str(r["label"]) for r in records})
        index = {c: i for i, c in enumerate(classes)}
        samples = []
        for rec in records:
            if self.split is not None and rec.get("split") != self.split:
                continue
            label = str(rec["label"])
            if label not in index:
                raise DataError(f"{manifest}: label {label!r} of {rec['path']} is not in {classes}")
            p = Path(rec["path"])
            samples.append((p if p.is_absolute() else self.root / p, index[label]))
        missing = [str(p) for p, _ in samples if not p.is_file()]
        if missing:
            raise DataError(
                f"{manifest}: {len(missing)} listed files do not exist, e.g. {missing[0]}; "
                "re-create the manifest with `visionforge data split`"
            )
        return classes, samples

    def _check_headers(self) -> None:
        # Decompression bombs are named now, from headers alone, not mid-training.
        _, skipped = check_image_headers([p for p, _ in self.samples], self.on_bad_image)
        bad = {r["path"] for r in skipped}
        for record in skipped:
            _log.warning("skipping image: %s", record["reason"])
        self.skipped.extend(skipped)
        self.samples = [(p, t) for p, t in self.samples if str(p) not in bad]

    def _verify(self) -> None:
        good = []
        for path, target in self.samples:
            reason = verify_image(path)
            if reason is None:
                good.append((path, target))
                continue
            if self.on_bad_image == "error":
                raise DataError(reason)
            self.skipped.append({"path": str(path), "reason": reason})
            _log.warning("skipping unreadable image: %s", reason)
        self.samples = good

    # -- access -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any] | tuple[Any, Any]:
        path, target = self.samples[index]
        # A file that breaks after the up-front check still raises: never a substitute sample.
        sample = to_sample(self._decode(path), label=target)
        if self.transform is not None:
            sample = self.transform(sample)
        sample = finish_sample(sample)
        if self.return_path:
            sample["path"] = str(path)
        return sample_tuple(sample) if self.return_tuple else sample

    def _decode(self, path: Path) -> Any:
        if self.cache is None:
            return decode_image(path, self.channels)
        import torch

        hwc = self.cache.get(path, lambda: decode_image(path, self.channels).permute(1, 2, 0)
                             .numpy(), variant=f"image:{self.channels}")
        return torch.from_numpy(hwc).permute(2, 0, 1)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> dict[str, int]:
        """Number of samples per class name."""
        counts = Counter(self.targets)
        return {c: counts.get(i, 0) for i, c in enumerate(self.classes)}

    def report(self) -> dict[str, Any]:
        """Summary: source, split, classes, counts per class, skipped files with reasons."""
        return {
            "source": self.source,
            "split": self.split,
            "num_samples": len(self),
            "classes": list(self.classes),
            "class_counts": self.class_counts(),
            "skipped": list(self.skipped),
        }

    def __repr__(self) -> str:
        return (
            f"ClassificationDataset({self.source!r}, split={self.split!r}, "
            f"{len(self)} samples, {self.num_classes} classes)"
        )
