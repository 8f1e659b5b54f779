"""Accuracy of a pruned digits classifier vs. the unpruned one (global magnitude pruning).

Trains ``small_cnn`` on scikit-learn's real handwritten digits (1,797 images, the first
1,400 for training, the other 397 held out), then prunes the model dir at several amounts
with ``visionforge.workflows.prune.prune_model_dir`` and prints held-out accuracy before
and after. The baseline is the unpruned model on the same held-out images. Not a timing
benchmark: the accuracy numbers do not depend on machine load.

    python benchmarks/prune_digits.py --epochs 8 --amounts 0.3,0.5,0.7,0.8,0.9
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def write_split(root: Path, size: int, n_train: int) -> tuple[Path, Path]:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (img, target) in enumerate(zip(digits.images, digits.target)):
        split = "train" if i < n_train else "test"
        path = root / split / str(int(target)) / f"{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = (img * (255.0 / 16.0)).astype(np.uint8)
        Image.fromarray(pixels).convert("RGB").resize((size, size), Image.BILINEAR).save(path)
    return root / "train", root / "test"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--amounts", default="0.3,0.5,0.7,0.8,0.9")
    args = ap.parse_args()

    import torch

    from visionforge.data.datamodules import ImageFolderDataModule
    from visionforge.engine import Trainer
    from visionforge.models import create_model
    from visionforge.workflows.prune import prune_model_dir

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        train_dir, test_dir = write_split(Path(tmp) / "digits", args.size, 1400)
        dm = ImageFolderDataModule(train_dir, batch_size=32, image_size=args.size,
                                   ratios=(0.9, 0.1, 0.0), num_workers=0, augment=False)
        model = create_model("small_cnn", num_classes=10, width=16, depth=2)
        trainer = Trainer(model, max_epochs=args.epochs, lr=3e-3, device="cpu", progress=False,
                          output_dir=Path(tmp) / "run", loggers=[], seed=0)
        trainer.train(dm)
        model_dir = trainer.model_dir
        print(f"small_cnn (width 16, depth 2), {args.epochs} epochs, {args.size}px; "
              f"held-out: {test_dir}")
        print("| amount | sparsity | accuracy before | accuracy after | drop (points) |")
        print("|---|---|---|---|---|")
        for amount in (float(a) for a in args.amounts.split(",")):
            r = prune_model_dir(model_dir, test_dir, amount, out=Path(tmp) / f"p{amount}")
            print(f"| {amount:.0%} | {r['sparsity_after']:.1%} | {r['accuracy_before']:.2f} | "
                  f"{r['accuracy_after']:.2f} | {r['accuracy_drop']:.2f} |")
        print(f"n = {r['n_samples']} held-out images")


if __name__ == "__main__":
    main()
