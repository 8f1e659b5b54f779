"""Detect what kind of dataset a folder holds and pick task-aware defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from visionforge.errors import DataError

__all__ = ["IMAGE_SUFFIXES", "SIGNAL_SUFFIXES", "detect_layout", "TaskDefaults", "task_defaults"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
SIGNAL_SUFFIXES = {".json", ".csv", ".npy", ".ts"}


def _files(folder: Path, suffixes: set[str]) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes]


def detect_layout(root: str | os.PathLike[str]) -> str:
    """Return ``"segmentation"``, ``"detection"``, ``"folder"`` (classification), ``"osdb"``
    or ``"signals"``.

    Rules, in order: ``images/`` and ``masks/`` sub-folders (also under ``train/``)
    -> segmentation pairs; a COCO detection JSON (``bbox`` annotations), YOLO
    ``images/`` + ``labels/`` or VOC ``Annotations/`` -> detection;
    sub-folders holding images, also ``train/<class>/`` (what ``visionforge data split --copy``
    writes) -> classification folders; ``*.json`` files -> OSDB events;
    ``.csv``/``.npy``/``.ts`` files -> generic signals.
    """
    path = Path(root)
    if not path.exists():
        raise DataError(f"data.root {path} does not exist; point data.root at your dataset folder")
    if not path.is_dir():
        raise DataError(f"data.root {path} is not a folder")
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return "segmentation"
    from visionforge.data.detection import detection_format

    if detection_format(path) is not None:  # a COCO json with boxes, YOLO labels/, VOC XML
        return "detection"
    if (path / "train" / "images").is_dir() and (path / "train" / "masks").is_dir():
        return "segmentation"
    subdirs = [d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if any(_files(d, IMAGE_SUFFIXES) for d in subdirs):
        return "folder"
    train = path / "train"
    if train.is_dir() and any(_files(d, IMAGE_SUFFIXES) for d in train.iterdir() if d.is_dir()):
        return "folder"  # root/{train,val,test}/<class>/: the image_folder datamodule reads it
    files = _files(path, SIGNAL_SUFFIXES)
    if any(f.suffix == ".json" for f in files):
        return "osdb"
    if files:
        return "signals"
    raise DataError(
        f"cannot tell what {path} holds: expected class sub-folders of images, images/ + masks/ "
        "folders, OSDB *.json events or .csv/.npy/.ts signal files (or set data.kind)"
    )


@dataclass(frozen=True)
class TaskDefaults:
    """Model, batch size and epochs chosen for a data kind when the config leaves them out.

    The model's arguments are not here: the chosen model is built with the ``kwargs`` of its
    ``conf/model`` option (:func:`visionforge.config.loader.model_config_kwargs`), as
    ``model=NAME`` would. Nor is the default image size: each datamodule declares its own
    (``default_image_size``, see :func:`visionforge.workflows.data_setup.default_image_size`).
    """

    task: str
    model: str
    batch_size: int
    max_epochs: int


_BY_TASK = {
    "classification": TaskDefaults("classification", "resnet18", 32, 10),
    "segmentation": TaskDefaults("segmentation", "unet", 8, 20),
    "signal": TaskDefaults("signal", "resnet1d", 32, 30),
    "detection": TaskDefaults("detection", "fcos_resnet18_lite", 4, 30),
}


def task_defaults(kind: str) -> TaskDefaults:
    """Sensible defaults for a data kind (printed by ``visionforge train`` when used).

    ``kind`` is ``osdb`` or any registered datamodule name or alias; the datamodule's
    ``task`` picks the defaults, so a plugin datamodule gets them too.
    """
    if kind == "osdb":
        return TaskDefaults("signal", "deepepicnn", 64, 30)
    from visionforge.registry import DATAMODULES
    from visionforge.workflows.data_setup import datamodule_name

    task = getattr(DATAMODULES.get(datamodule_name(kind)), "task", "classification")
    if task not in _BY_TASK:
        raise DataError(f"no defaults for data kind {kind!r} (task {task!r})")
    return _BY_TASK[task]
