"""``visionforge demo``: the main job, offline, on real data shipped inside installed packages.

1. Classification: the 1,797 real handwritten digits of ``sklearn.datasets.load_digits``
   are written as an image-folder dataset and trained through the same code path as
   ``visionforge train`` (stratified 80/10/10 split); accuracy on the held-out test split.
2. Segmentation: scikit-image's ``ihc.png`` (a real immunohistochemistry image). A reference
   label map (background / hematoxylin / DAB) comes from colour deconvolution
   (``skimage.color.rgb2hed``); a UNet is trained on tiles from the left part of the image,
   validated on a middle strip and evaluated on the held-out right part, predicted at full
   resolution with sliding-window inference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "write_digits_folder",
    "ihc_reference_labels",
    "write_ihc_tiles",
    "run_demo",
    "IHC_CLASSES",
    "TRAIN_END",
    "VAL_END",
]

_log = logging.getLogger(__name__)

IHC_CLASSES = ["background", "hematoxylin", "DAB"]
#: columns [0, TRAIN_END) train, [TRAIN_END, VAL_END) validation, [VAL_END, 512) held-out test
TRAIN_END, VAL_END = 320, 384
_PALETTE = np.array([[255, 255, 255], [40, 40, 200], [140, 70, 20]], dtype=np.uint8)


def write_digits_folder(out: str | Path, size: int = 32) -> Path:
    """Write ``load_digits`` as ``out/<digit>/<index>.png`` (upsampled to ``size`` px)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    root = Path(out)
    digits = load_digits()
    for i, (img, target) in enumerate(zip(digits.images, digits.target)):
        folder = root / str(int(target))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:04d}.png"
        if not path.exists():
            pixels = (img * (255.0 / 16.0)).astype(np.uint8)
            Image.fromarray(pixels).resize((size, size), Image.BILINEAR).save(path)
    return root


def ihc_reference_labels(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Label map from colour deconvolution: 0 background, 1 hematoxylin, 2 DAB (the rule
    the synthetic test slides use too: :func:`visionforge.slides.synthetic.ihc_labels`)."""
    from visionforge.slides.synthetic import ihc_labels

    return ihc_labels(image, sigma=sigma)


def _save_pairs(root: Path, split: str, image: np.ndarray, labels: np.ndarray,
                x0: int, x1: int, tile: int, stride: int) -> int:
    from PIL import Image

    (root / split / "images").mkdir(parents=True, exist_ok=True)
    (root / split / "masks").mkdir(parents=True, exist_ok=True)
    count = 0
    height = image.shape[0]
    for y in range(0, height - tile + 1, stride):
        for x in range(x0, x1 - tile + 1, stride):
            stem = f"y{y:03d}_x{x:03d}"
            Image.fromarray(image[y:y + tile, x:x + tile]).save(root / split / "images" / f"{stem}.png")
            Image.fromarray(labels[y:y + tile, x:x + tile]).save(root / split / "masks" / f"{stem}.png")
            count += 1
    return count


def write_ihc_tiles(out: str | Path, tile: int = 64) -> tuple[Path, np.ndarray, np.ndarray]:
    """Write train/val/test tile pairs of ``ihc.png`` by image region; return (root, image, labels)."""
    from skimage import data

    root = Path(out)
    image = data.immunohistochemistry()
    labels = ihc_reference_labels(image)
    _save_pairs(root, "train", image, labels, 0, TRAIN_END, tile, tile // 2)
    _save_pairs(root, "val", image, labels, TRAIN_END, VAL_END, tile, tile)
    _save_pairs(root, "test", image, labels, VAL_END, image.shape[1], tile, tile)
    return root, image, labels


def _ihc_full_image(result: Any, image: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Predict the whole image with sliding windows; score the held-out region; save overlays."""
    import torch
    from PIL import Image

    from visionforge.evaluation import SegmentationMetrics
    from visionforge.inference import Predictor
    from visionforge.io import atomic_write_json

    predictor = Predictor(result.model_dir, backend="torch", device="cpu", batch_size=8)
    pred = predictor.predict_large(image, tile_size=64, overlap=0.5)
    metrics = SegmentationMetrics(len(IHC_CLASSES), class_names=IHC_CLASSES)
    metrics.update(torch.from_numpy(pred[:, VAL_END:].astype(np.int64))[None],
                   torch.from_numpy(labels[:, VAL_END:].astype(np.int64))[None])
    held_out = metrics.compute()
    plots = result.run_dir / "plots"
    plots.mkdir(exist_ok=True)
    overlay = (0.5 * image + 0.5 * _PALETTE[pred]).astype(np.uint8)
    overlay[:, VAL_END - 1: VAL_END + 1] = 0  # mark where the held-out region starts
    panel = np.concatenate([image, _PALETTE[labels], _PALETTE[pred], overlay], axis=1)
    Image.fromarray(panel).save(plots / "full_image_prediction.png")
    summary = {"region": f"columns {VAL_END}..{image.shape[1]} (never seen in training)",
               "mean_iou": held_out["mean_iou"], "per_class_iou": held_out["per_class_iou"],
               "pixel_accuracy": held_out["pixel_accuracy"], "mean_dice": held_out["mean_dice"]}
    atomic_write_json(result.run_dir / "heldout_full_image.json", summary)
    return summary


def run_demo(
    project_dir: str | Path = "runs/demo",
    *,
    jobs: tuple[str, ...] = ("classification", "segmentation", "detection"),
    epochs: dict[str, int] | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo jobs; returns ``{job: {"run_dir", "metrics", ...}}``."""
    from visionforge.config.loader import compose_config
    from visionforge.workflows.summary import print_summary
    from visionforge.workflows.train import train_from_config

    project = Path(project_dir)
    epochs = {"classification": 15, "segmentation": 30, **(epochs or {})}
    out: dict[str, Any] = {}
    common = [f"project_dir={project}", "trainer=cpu", "data.augment=false", "seed=0",
              "trainer.early_stopping_patience=8"]
    if "classification" in jobs:
        echo("== 1/3 classification: handwritten digits (sklearn load_digits, 1,797 images)")
        digits = write_digits_folder(project / "data" / "digits")
        composed = compose_config(common + [
            f"data.root={digits}", "model=small_cnn", "data.image_size=32", "data.batch_size=32",
            f"trainer.max_epochs={epochs['classification']}", "optimizer.lr=0.003", "name=digits",
        ], env={})
        result = train_from_config(composed.cfg, echo=echo)
        print_summary(result, echo)
        out["classification"] = {"run_dir": str(result.run_dir), "accuracy": result.metrics.get("accuracy"),
                                 "metrics": result.metrics}
    if "segmentation" in jobs:
        echo("== 2/3 segmentation: immunohistochemistry (scikit-image ihc.png, rgb2hed labels)")
        root, image, labels = write_ihc_tiles(project / "data" / "ihc")
        composed = compose_config(common + [
            f"data.root={root}", "model=unet", "data.image_size=64", "data.batch_size=8",
            f"trainer.max_epochs={epochs['segmentation']}", "optimizer.lr=0.002", "name=ihc",
            "data.num_classes=3",
        ], env={})
        held: dict[str, Any] = {}

        def full_image(result: Any, trainer: Any, data: Any) -> None:
            held.update(_ihc_full_image(result, image, labels))

        result = train_from_config(composed.cfg, echo=echo, after_train=full_image)
        print_summary(result, echo)
        echo(f"held-out region, full-image sliding-window prediction: mean IoU "
             f"{held.get('mean_iou', float('nan')):.4f} "
             f"(per class {[round(v, 3) for v in held.get('per_class_iou', [])]})")
        echo(f"overlay: {result.run_dir / 'plots' / 'full_image_prediction.png'}")
        out["segmentation"] = {"run_dir": str(result.run_dir), "heldout_full_image": held,
                               "metrics": result.metrics}
    if "detection" in jobs:
        out["detection"] = _detection_job(project, common, epochs.get("detection", 40), echo)
    return out


def _detection_job(project: Path, common: list[str], epochs: int,
                   echo: Callable[[str], None]) -> dict[str, Any]:
    """Nuclei detection on ihc.png: train tiles left, validation tiles below them (where the
    counting score threshold stored in model.json is chosen), test tiles right
    (visionforge.data.nuclei)."""
    from visionforge.config.loader import compose_config
    from visionforge.data.nuclei import build_ihc_nuclei
    from visionforge.workflows.summary import print_summary
    from visionforge.workflows.train import train_from_config

    echo("== 3/3 detection: nuclei in scikit-image's ihc.png (hematoxylin + watershed boxes)")
    root = project / "data" / "nuclei"
    build_ihc_nuclei(root, val=True)  # val tiles: the counting threshold is chosen there
    composed = compose_config(common + [
        f"data.root={root}", "model=fcos_resnet18_lite", "data.image_size=128",
        "data.batch_size=4", f"trainer.max_epochs={epochs}", "optimizer.lr=0.002",
        "name=nuclei",
    ], env={})
    result = train_from_config(composed.cfg, echo=echo)
    print_summary(result, echo)
    m = result.metrics
    return {"run_dir": str(result.run_dir), "map_50": m.get("map_50"),
            "count_error": (m.get("counting") or {}).get("mean_relative_count_error"),
            "metrics": m}
