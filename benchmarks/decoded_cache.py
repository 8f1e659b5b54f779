"""Epoch time of an image-folder dataset with the decoded-image cache vs. decoding every time.

Baseline: ``data.cache=none`` (decode each PNG every epoch). Ours: ``memory`` and ``disk``
after the first (filling) epoch. Same images, transforms and loader (``num_workers=0``, so
the memory cache lives in the measuring process). Prints the median epoch time of
``--repeats`` epochs and the speed-up over the baseline.

    python benchmarks/decoded_cache.py --images 600 --size 256
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def write_folder(root: Path, n: int, size: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        p = root / f"c{i % 4}" / f"{i:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        # smooth images (PNG decoding cost of real photos, not of noise)
        base = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
        Image.fromarray(base).resize((size, size), Image.BICUBIC).save(p)
    return root


def epoch_times(root: Path, cache: str, cache_dir: Path, repeats: int, out_size: int) -> list[float]:
    from visionforge.data.datamodules import ImageFolderDataModule

    dm = ImageFolderDataModule(root, batch_size=32, image_size=out_size, num_workers=0,
                               ratios=(1.0, 0.0, 0.0), cache=cache, cache_dir=cache_dir)
    loader = dm.train_dataloader()
    for _ in loader:  # first epoch fills the cache (and warms the OS file cache for all)
        pass
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in loader:
            pass
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--size", type=int, default=256, help="stored image side (px)")
    ap.add_argument("--out-size", type=int, default=64, help="training image side (px)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_folder(Path(tmp) / "imgs", args.images, args.size)
        medians = {}
        for cache in ("none", "memory", "disk"):
            ts = epoch_times(root, cache, Path(tmp) / "cache", args.repeats, args.out_size)
            medians[cache] = statistics.median(ts)
        print(f"{args.images} PNGs of {args.size}px -> {args.out_size}px, batch 32, 0 workers, "
              f"median of {args.repeats} epochs after the first")
        for cache, t in medians.items():
            print(f"cache={cache:<6}  {t:7.3f} s/epoch   speed-up vs none: "
                  f"{medians['none'] / t:.2f}x")


if __name__ == "__main__":
    main()
