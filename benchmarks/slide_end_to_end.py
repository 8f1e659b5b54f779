"""Whole-slide images end to end on the real IHC slide, through the CLI, with the figures of
issue 12: held-out region mIoU against the rgb2hed labels and slide composition vs reference.

    python benchmarks/slide_end_to_end.py --size 4096 --mpp 0.5 --epochs 8

Steps: `make_ihc_slide` (scikit-image ihc.png mirrored to SIZE², pyramid, Aperio XML) ->
`visionforge slides tiles` (holdout: the right quarter) -> `visionforge train` (UNet) ->
`visionforge slides segment` -> `visionforge slides report`. Prints mIoU on the held-out
quarter and each class's composition (percent of tissue) against the reference labels.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _cli(argv: list[str]) -> None:
    from visionforge.cli.main import main

    code = main(argv)
    if code not in (0, None):
        raise SystemExit(f"visionforge {' '.join(argv[:2])} exited {code}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--mpp", type=float, default=0.5, help="working µm/px (slide is 0.5)")
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--mode", default="simple")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--augment", action="store_true", help="train-time augmentation (colour jitter...)")
    ap.add_argument("--overlap", type=float, default=0.25, help="slides segment tile overlap")
    ap.add_argument("--train-extra", nargs="*", default=[], help="more key=value for train")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    from visionforge.slides.synthetic import make_ihc_slide

    work = Path(args.workdir or tempfile.mkdtemp(prefix="vf_slide_e2e_"))
    t0 = time.perf_counter()
    slide = make_ihc_slide(work / "ihc.svs", size=args.size, mpp=0.5, levels=(1, 4, 16))
    tiles, seg, runs = work / "tiles", work / "seg", work / "runs"
    _cli(["slides", "tiles", str(slide.slide), f"out={tiles}", f"class_map={slide.class_map_path}",
          f"mpp={args.mpp}", f"mode={args.mode}", f"tile_size={args.tile}",
          "holdout=right:0.25", "seed=0"])
    t1 = time.perf_counter()
    _cli(["train", f"data.root={tiles}", "model=unet", f"data.batch_size={args.batch}",
          f"data.augment={str(args.augment).lower()}",
          f"trainer.max_epochs={args.epochs}", f"optimizer.lr={args.lr}", "trainer=cpu",
          "name=slide", f"project_dir={runs}", f"data.image_size={args.tile}", *args.train_extra])
    t2 = time.perf_counter()
    model_dir = next(runs.rglob("model.json")).parent
    _cli(["slides", "segment", str(model_dir), str(slide.slide), f"out={seg}", f"overlap={args.overlap}"])
    t3 = time.perf_counter()
    _cli(["slides", "report", str(seg), f"regions={tiles}"])
    metrics = json.loads((seg / "report_metrics.json").read_text())["evaluation"]
    with open(seg / slide.slide.stem / "composition.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    names = metrics["class_names"]
    ref = np.bincount(slide.labels.ravel(), minlength=len(names)).astype(float)
    print(f"slide {args.size}² at {args.mpp} µm/px, {args.mode} tiles of {args.tile}, "
          f"{args.epochs} epochs  ({work})")
    print(f"held-out quarter: mean IoU {metrics['mean_iou']:.4f}, per class "
          f"{[round(v, 3) for v in metrics['iou']]}, pixel accuracy {metrics['accuracy']:.4f}")
    pcs = np.array([float(row[f"{n} PC"]) for n in names])
    pred_pct, ref_pct = 100 * pcs / pcs.sum(), 100 * ref / ref.sum()
    for n, p, r in zip(names, pred_pct, ref_pct):
        print(f"composition {n:12s} predicted {p:6.2f} %  reference {r:6.2f} %  "
              f"difference {p - r:+.2f} points")
    print(f"time: tiles {t1 - t0:.0f} s, train {t2 - t1:.0f} s, segment {t3 - t2:.0f} s, "
          f"report {time.perf_counter() - t3:.0f} s")


if __name__ == "__main__":
    main()
