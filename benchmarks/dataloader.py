"""Decode + augment throughput: our datasets vs torchvision ImageFolder with the same v2 transforms.

Writes N 512x512 RGB PNGs (and masks) to a temp folder, then times one pass of a
DataLoader (0 and 2 workers) over:

* ours:     ClassificationDataset / SegmentationDataset + train_transforms(...)
* baseline: torchvision.datasets.ImageFolder + the same v2 ops (ToImage first),
            and for segmentation a minimal hand-written pair dataset with the same pipeline.

Run:  python benchmarks/dataloader.py [--n 64] [--size 256] [--repeats 3]
Prints images/s (median of repeats) and the ratio ours / baseline (goal >= 1.0).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from visionforge.data import ClassificationDataset, SegmentationDataset, train_transforms


def make_data(root: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        # smooth content so PNG sizes resemble real photos rather than noise
        base = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((size, size), Image.BILINEAR)
        cls = f"class_{i % 4}"
        (root / "cls" / cls).mkdir(parents=True, exist_ok=True)
        img.save(root / "cls" / cls / f"{i:04d}.png")
        (root / "seg" / "images").mkdir(parents=True, exist_ok=True)
        (root / "seg" / "masks").mkdir(parents=True, exist_ok=True)
        img.save(root / "seg" / "images" / f"{i:04d}.png")
        mask = (np.asarray(img)[..., 0] // 64).astype(np.uint8)
        Image.fromarray(mask).save(root / "seg" / "masks" / f"{i:04d}.png")


class _BaselineSeg(Dataset):
    """The obvious hand-written pair dataset: PIL open, v2 pipeline on tv_tensors."""

    def __init__(self, root: Path, transform) -> None:
        self.images = sorted((root / "images").iterdir())
        self.masks = sorted((root / "masks").iterdir())
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        img = Image.open(self.images[i]).convert("RGB")
        mask = tv_tensors.Mask(torch.from_numpy(np.array(Image.open(self.masks[i]))).long())
        out = self.transform({"image": img, "mask": mask})
        return out["image"], out["mask"]


def throughput(ds, workers: int, repeats: int, batch_size: int = 16) -> float:
    rates = []
    for _ in range(repeats):
        loader = DataLoader(ds, batch_size=batch_size, num_workers=workers, shuffle=False)
        start = time.perf_counter()
        count = 0
        for batch in loader:
            count += len(batch["image"] if isinstance(batch, dict) else batch[0])
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=64, help="number of 512x512 PNGs")
    ap.add_argument("--size", type=int, default=256, help="training crop size")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_data(root, args.n, 512)
        cls_t = train_transforms("classification", args.size)
        seg_t = train_transforms("segmentation", args.size)
        # baseline: same ops with ToImage in front (ImageFolder yields PIL images)
        cls_base = v2.Compose([v2.ToImage(), *cls_t.transforms])
        seg_base = v2.Compose([v2.ToImage(), *seg_t.transforms])
        pairs = {
            "classification": (
                ClassificationDataset(root / "cls", transform=cls_t),
                ImageFolder(str(root / "cls"), transform=cls_base),
            ),
            "segmentation": (
                SegmentationDataset(
                    root / "seg" / "images", root / "seg" / "masks", seg_t, num_classes=4
                ),
                _BaselineSeg(root / "seg", seg_base),
            ),
        }
        print(
            f"{args.n} PNGs 512x512 -> {args.size}px train augmentation, median of {args.repeats} runs"
        )
        print(f"{'task':<16}{'workers':>8}{'ours img/s':>12}{'baseline img/s':>16}{'ratio':>8}")
        for task, (ours, base) in pairs.items():
            for w in args.workers:
                a = throughput(ours, w, args.repeats)
                b = throughput(base, w, args.repeats)
                print(f"{task:<16}{w:>8}{a:>12.1f}{b:>16.1f}{a / b:>8.2f}")


if __name__ == "__main__":
    main()
