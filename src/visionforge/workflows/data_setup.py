"""Turn the ``data`` section of a run config into train/val/test datasets.

Classification folders, segmentation pairs, OSDB events and generic signal files
are split by a seeded, stratified (or event-level) assignment written to the run
dir as a manifest; no file is copied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Subset

from visionforge.errors import ConfigError, DataError
from visionforge.workflows.detect import detect_layout

__all__ = ["PreparedData", "prepare_data", "IMAGENET_PREPROCESSING"]

_log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class PreparedData:
    """Datasets of one run plus what the model and the model dir need to know."""

    kind: str
    task: str
    train: Dataset
    val: Dataset | None
    test: Dataset | None
    class_names: list[str]
    in_chans: int
    input_size: list[int]
    preprocessing: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)


def IMAGENET_PREPROCESSING() -> dict[str, Any]:  # noqa: N802 - a constant built lazily
    from visionforge.data import IMAGENET_MEAN, IMAGENET_STD

    return {"input_range": [0, 1], "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


def _ratios(splits: Any) -> list[float]:
    ratios = [float(r) for r in splits]
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise ConfigError(f"data.splits must be three non-negative fractions summing to 1, got {ratios}")
    return ratios


def _split_indices(labels: list[Any], ratios: list[float], seed: int) -> dict[str, np.ndarray]:
    from visionforge.data import stratified_assign

    assigned = np.asarray(stratified_assign(labels, ratios, seed))
    return {s: np.nonzero(assigned == s)[0] for s in SPLIT_NAMES}


def _write_manifest(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    from visionforge.data import write_manifest

    write_manifest(rows, run_dir / "splits.csv")


def _image_transforms(task: str, image_size: int, dc: Any, preprocessing: dict[str, Any]):
    from visionforge.data import eval_transforms, train_transforms

    mean, std = preprocessing.get("mean"), preprocessing.get("std")
    train_tf = (
        train_transforms(task, image_size, mean=mean, std=std)
        if dc.augment
        else eval_transforms(task, image_size, mean=mean, std=std)
    )
    return train_tf, eval_transforms(task, image_size, mean=mean, std=std)


def _classification(dc: Any, root: Path, run_dir: Path, image_size: int) -> PreparedData:
    from visionforge.data import ClassificationDataset

    preprocessing = IMAGENET_PREPROCESSING() if dc.normalize else {"input_range": [0, 1]}
    train_tf, eval_tf = _image_transforms("classification", image_size, dc, preprocessing)
    common = {"channels": dc.channels, "on_bad_image": dc.on_bad_image}
    scan = ClassificationDataset(root, **common)
    indices = _split_indices(scan.targets, _ratios(dc.splits), dc.seed)
    rows = []
    for split, idx in indices.items():
        for i in idx:
            path, target = scan.samples[i]
            rows.append({"path": Path(path).relative_to(root).as_posix(),
                         "label": scan.classes[target], "split": split})
    _write_manifest(run_dir, rows)
    train_ds = ClassificationDataset(root, transform=train_tf, classes=scan.classes,
                                     manifest=rows, split="train", **common)
    parts = {
        s: ClassificationDataset(root, transform=eval_tf, classes=scan.classes, manifest=rows,
                                 split=s, **common) if len(indices[s]) else None
        for s in ("val", "test")
    }
    counts = {s: int(len(i)) for s, i in indices.items()}
    return PreparedData(
        kind="folder", task="classification", train=train_ds, val=parts["val"], test=parts["test"],
        class_names=list(scan.classes), in_chans=dc.channels,
        input_size=[dc.channels, image_size, image_size], preprocessing=preprocessing,
        summary={"root": str(root), "classes": len(scan.classes), "split_sizes": counts,
                 "class_counts": scan.class_counts(), "skipped": len(scan.skipped)},
    )


def _mask_classes(ds: Any) -> int:
    from visionforge.data import load_mask

    top = 0
    for _, mask_path in ds.samples:
        values = np.unique(load_mask(mask_path, ds.color_map))
        if ds.ignore_index is not None:
            values = values[values != ds.ignore_index]
        if values.size:
            top = max(top, int(values.max()))
    return top + 1


def _presplit_segmentation(dc: Any, root: Path, image_size: int) -> PreparedData:
    """``root/{train,val,test}/{images,masks}``: the user fixed the split (e.g. by region)."""
    from visionforge.data import SegmentationDataset

    common = {"channels": dc.channels, "on_bad_image": dc.on_bad_image}
    scans = {s: SegmentationDataset(root / s / "images", root / s / "masks",
                                    num_classes=dc.num_classes, **common)
             for s in SPLIT_NAMES if (root / s / "images").is_dir()}
    num_classes = dc.num_classes or max(_mask_classes(ds) for ds in scans.values())
    preprocessing = IMAGENET_PREPROCESSING() if dc.normalize else {"input_range": [0, 1]}
    train_tf, eval_tf = _image_transforms("segmentation", image_size, dc, preprocessing)
    parts = {
        s: SegmentationDataset(root / s / "images", root / s / "masks", num_classes=num_classes,
                               transform=train_tf if s == "train" else eval_tf, validate=False,
                               **common)
        for s in scans
    }
    return _segmentation_data(parts.get("train"), parts.get("val"), parts.get("test"),
                              num_classes, dc, image_size, preprocessing,
                              {"root": str(root), "layout": "train/val/test folders",
                               "split_sizes": {s: len(d) for s, d in scans.items()}})


def _segmentation_data(train, val, test, num_classes, dc, image_size, preprocessing, summary):
    if train is None:
        raise DataError("segmentation data has no training pairs")
    if num_classes < 2:
        raise DataError("masks hold a single class; segmentation needs at least two")
    summary["num_classes"] = num_classes
    return PreparedData(
        kind="segmentation", task="segmentation", train=train, val=val, test=test,
        class_names=[str(i) for i in range(num_classes)], in_chans=dc.channels,
        input_size=[dc.channels, image_size, image_size], preprocessing=preprocessing,
        summary=summary,
    )


def _segmentation(dc: Any, root: Path | None, run_dir: Path, image_size: int) -> PreparedData:
    from visionforge.data import SegmentationDataset

    if root is not None and (root / "train" / "images").is_dir() and not dc.images_dir:
        return _presplit_segmentation(dc, root, image_size)
    images_dir = Path(dc.images_dir) if dc.images_dir else (root / "images" if root else None)
    masks_dir = Path(dc.masks_dir) if dc.masks_dir else (root / "masks" if root else None)
    if images_dir is None or masks_dir is None:
        raise ConfigError("segmentation data needs data.root (with images/ and masks/) or "
                          "data.images_dir and data.masks_dir")
    scan = SegmentationDataset(images_dir, masks_dir, num_classes=dc.num_classes,
                               channels=dc.channels, on_bad_image=dc.on_bad_image)
    num_classes = dc.num_classes or _mask_classes(scan)
    preprocessing = IMAGENET_PREPROCESSING() if dc.normalize else {"input_range": [0, 1]}
    train_tf, eval_tf = _image_transforms("segmentation", image_size, dc, preprocessing)
    indices = _split_indices([0] * len(scan), _ratios(dc.splits), dc.seed)  # seeded, one stratum
    rows = [{"path": Path(scan.samples[i][0]).name, "label": "", "split": s}
            for s, idx in indices.items() for i in idx]
    _write_manifest(run_dir, rows)

    def build(tf: Any, split: str) -> Dataset | None:
        if not len(indices[split]):
            return None
        ds = SegmentationDataset(images_dir, masks_dir, transform=tf, num_classes=num_classes,
                                 channels=dc.channels, on_bad_image=dc.on_bad_image,
                                 validate=False)
        ds.samples = scan.samples
        return Subset(ds, indices[split].tolist())

    return _segmentation_data(
        build(train_tf, "train"), build(eval_tf, "val"), build(eval_tf, "test"), num_classes, dc,
        image_size, preprocessing,
        {"images": str(images_dir), "masks": str(masks_dir), "pairs": len(scan),
         "split_sizes": {s: int(len(i)) for s, i in indices.items()}},
    )


def _signals(dc: Any, root: Path, run_dir: Path, kind: str) -> PreparedData:
    from visionforge.data import SignalDataset, load_osdb_events, load_series, split_by_event

    if kind == "osdb":
        files = sorted(root.glob("*.json")) if root.is_dir() else [root]
        ds = SignalDataset.from_osdb(load_osdb_events(files), window=dc.window, step=dc.step,
                                     normalize="window" if dc.normalize else None)
        class_names = ["non-seizure", "seizure"][: ds.num_classes] if ds.num_classes <= 2 else (
            ds.class_names)
        ds.class_names = list(class_names)
    else:
        files = [p for p in sorted(root.iterdir()) if p.suffix in (".npy", ".csv", ".ts")] if (
            root.is_dir()) else [root]
        if len(files) != 1:
            raise DataError(f"{root}: expected one .npy/.csv/.ts series file, found "
                            f"{[f.name for f in files]}; point data.root at the file")
        x, y, class_names = load_series(files[0])
        ds = SignalDataset(x, y, class_names=class_names)
    parts = split_by_event(ds, _ratios(dc.splits), dc.seed)
    rows = [{"path": str(ev), "label": int(lab), "split": s}
            for s, part in parts.items() for ev, lab in zip(part.event_ids, part.labels)]
    _write_manifest(run_dir, rows)
    channels, length = int(ds.x.shape[1]), int(ds.x.shape[2])
    return PreparedData(
        kind=kind, task="signal", train=parts["train"], val=parts.get("val"),
        test=parts.get("test"), class_names=list(ds.class_names), in_chans=channels,
        input_size=[channels, length], preprocessing={"input_range": None, "mean": None, "std": None},
        summary={"root": str(root), "windows": len(ds), "channels": channels, "length": length,
                 "split_sizes": {s: len(p) for s, p in parts.items()}},
    )


def prepare_data(dc: Any, run_dir: Path, image_size: int | None) -> PreparedData:
    """Build the datasets described by the config's ``data`` section (``dc``)."""
    root = Path(dc.root).expanduser() if dc.root else None
    kind = dc.kind
    if kind == "auto":
        if root is None:
            if dc.images_dir and dc.masks_dir:
                kind = "segmentation"
            else:
                raise ConfigError("no data given: set data.root=PATH (a folder of class folders, "
                                  "images/ + masks/, or signal files)")
        else:
            kind = detect_layout(root)
    if root is not None and not root.exists():
        raise DataError(f"data.root {root} does not exist")
    if kind == "folder":
        return _classification(dc, root, run_dir, int(image_size or 64))
    if kind == "segmentation":
        return _segmentation(dc, root, run_dir, int(image_size or 128))
    if kind in ("osdb", "signals"):
        return _signals(dc, root, run_dir, kind)
    raise ConfigError(
        f"data.kind={kind!r} is not trainable from `visionforge train` yet; use the "
        f"{kind} datamodule from Python (visionforge.data) or data.kind=folder|segmentation|"
        "osdb|signals"
    )
