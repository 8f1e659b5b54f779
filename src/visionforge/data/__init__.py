"""Everything a user's data goes through before a model sees it.

Datasets yield dicts ``{"image": float32 [C, H, W] in [0, 1], "label": int64}``
(classification) or ``{"image", "mask": int64 [H, W]}`` (segmentation); signal
datasets yield ``(window [C, L], label, event_id)``. Importing this package
registers the datasets, transforms and datamodules in :mod:`visionforge.registry`.
"""

from visionforge.data.arrays import ArrayImageDataset
from visionforge.data.check import check_dataset, format_report
from visionforge.data.classification import ClassificationDataset
from visionforge.data.coco import CocoSegmentationDataset
from visionforge.data.datamodules import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    COCOSegmentationDataModule,
    ImageFolderDataModule,
    ImageNetDataModule,
    SegmentationDataModule,
    SignalDataModule,
    loader_kwargs,
)
from visionforge.data.detection import DetectionDataset, detection_collate
from visionforge.data.detection_datamodule import DetectionDataModule
from visionforge.data.images import (
    IMAGE_EXTENSIONS,
    decode_image,
    load_image,
    load_mask,
    read_array,
    to_float_image,
)
from visionforge.data.lazy import LazyImage
from visionforge.data.segmentation import SegmentationDataset
from visionforge.data.signals import (
    SignalDataset,
    balanced_sampler,
    events_from_csv,
    events_to_csv,
    load_basic_motions,
    load_osdb_events,
    load_series,
    split_by_event,
    windows_from_events,
)
from visionforge.data.splits import (
    kfold_indices,
    kfold_manifest,
    make_split_records,
    materialize,
    read_manifest,
    split_dataset,
    stratified_assign,
    write_manifest,
)
from visionforge.data.synthetic import (
    DummyClassificationDataset,
    DummyDetectionDataset,
    DummySegmentationDataset,
)
from visionforge.data.tiles import TilingResult, make_tiles
from visionforge.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ContractNormalize,
    CutMix,
    MixUp,
    MixUpOrCutMix,
    RandomRot90,
    eval_transforms,
    mixing_collate,
    train_transforms,
)

__all__ = [
    "DetectionDataset",
    "DetectionDataModule",
    "detection_collate",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "ArrayImageDataset",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "COCOSegmentationDataModule",
    "ClassificationDataset",
    "CocoSegmentationDataset",
    "ContractNormalize",
    "CutMix",
    "DummyClassificationDataset",
    "DummyDetectionDataset",
    "DummySegmentationDataset",
    "ImageFolderDataModule",
    "ImageNetDataModule",
    "LazyImage",
    "MixUp",
    "MixUpOrCutMix",
    "RandomRot90",
    "SegmentationDataModule",
    "SegmentationDataset",
    "SignalDataModule",
    "SignalDataset",
    "TilingResult",
    "balanced_sampler",
    "check_dataset",
    "decode_image",
    "eval_transforms",
    "events_from_csv",
    "events_to_csv",
    "format_report",
    "kfold_indices",
    "kfold_manifest",
    "load_basic_motions",
    "load_image",
    "load_mask",
    "load_osdb_events",
    "load_series",
    "loader_kwargs",
    "make_split_records",
    "make_tiles",
    "materialize",
    "mixing_collate",
    "read_array",
    "read_manifest",
    "split_by_event",
    "split_dataset",
    "stratified_assign",
    "to_float_image",
    "train_transforms",
    "windows_from_events",
    "write_manifest",
]
