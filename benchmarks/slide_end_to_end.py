"""Whole-slide images end to end on the real IHC slide, through the CLI, with the figures of
issue 12: held-out region mIoU against the rgb2hed labels and slide composition vs reference.

    python benchmarks/slide_end_to_end.py          # defaults: 2048², 1 µm/px, 8 epochs

Defaults follow the IHC demo (``visionforge demo``): no train-time augmentation (the labels are
a colour rule: colour jitter and blur teach the model to ignore exactly what defines them),
64-px tiles, batch 8, lr 0.002, overlap 0.5 at inference; a ResNet-10t U-Net to keep the run
within minutes on 2 CPU cores.

Steps: `make_ihc_slide` (scikit-image ihc.png mirrored to SIZE², pyramid, Aperio XML) ->
`visionforge slides tiles` (holdout: the right quarter) -> `visionforge train` (UNet) ->
`visionforge slides calibrate` (per-class logit offsets fitted on the train/val tiles; skipped
with ``--no-calibrate``) -> `visionforge slides segment` (``class_bias=auto``, or ``none``
without calibration) -> `visionforge slides report`. Prints mIoU on the held-out
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
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--mpp", type=float, default=1.0, help="working µm/px (slide is 0.5)")
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--backbone", default="resnet10t", help="U-Net encoder (timm name)")
    ap.add_argument("--mode", default="simple")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--augment", action="store_true", help="train-time augmentation (colour jitter...)")
    ap.add_argument("--overlap", type=float, default=0.5, help="slides segment tile overlap")
    ap.add_argument("--train-extra", nargs="*", default=[], help="more key=value for train")
    ap.add_argument("--segment-extra", nargs="*", default=[],
                    help="more key=value for slides segment (e.g. tissue=false)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the tiles and model already in --workdir (re-segment only)")
    ap.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=True,
                    help="fit class offsets on the tiles after training (slides calibrate) and "
                         "segment with class_bias=auto; --no-calibrate: class_bias=none")
    args = ap.parse_args()
    from visionforge.slides.synthetic import make_ihc_slide

    work = Path(args.workdir or tempfile.mkdtemp(prefix="vf_slide_e2e_"))
    tiles, seg, runs = work / "tiles", work / "seg", work / "runs"
    reuse = args.reuse and any(runs.rglob("model.json"))
    t0 = time.perf_counter()
    slide = make_ihc_slide(work / "ihc.svs", size=args.size, mpp=0.5, levels=(1, 4, 16))
    if not reuse:
        _cli(_tiles_argv(args, slide, tiles))
    t1 = time.perf_counter()
    if not reuse:
        _cli(["train", f"data.root={tiles}", "model=unet", f"model.kwargs.backbone={args.backbone}",
              f"data.batch_size={args.batch}",
              f"data.augment={str(args.augment).lower()}", f"trainer.max_epochs={args.epochs}",
              f"optimizer.lr={args.lr}", "trainer=cpu", "name=slide", f"project_dir={runs}",
              f"data.image_size={args.tile}", *args.train_extra])
    t2 = time.perf_counter()
    model_dir = next(runs.rglob("model.json")).parent
    if args.calibrate:
        _cli(["slides", "calibrate", str(model_dir), str(tiles)])
    t_cal = time.perf_counter()
    _cli(["slides", "segment", str(model_dir), str(slide.slide), f"out={seg}",
          f"overlap={args.overlap}", "resume=false",
          f"class_bias={'auto' if args.calibrate else 'none'}", *args.segment_extra])
    t3 = time.perf_counter()
    _cli(["slides", "report", str(seg), f"regions={tiles}"])
    t4 = time.perf_counter()
    _print_figures(args, work, slide, seg)
    print(f"time: tiles {t1 - t0:.0f} s, train {t2 - t1:.0f} s{' (reused)' if reuse else ''}, "
          f"calibrate {t_cal - t2:.0f} s, segment {t3 - t_cal:.0f} s, report {t4 - t3:.0f} s")


def _tiles_argv(args: argparse.Namespace, slide, tiles: Path) -> list[str]:
    return ["slides", "tiles", str(slide.slide), f"out={tiles}", f"class_map={slide.class_map_path}",
            f"mpp={args.mpp}", f"mode={args.mode}", f"tile_size={args.tile}",
            "holdout=right:0.25", "seed=0"]


def _iou(pred: np.ndarray, ref: np.ndarray, n: int) -> list[float]:
    return [float(np.sum((pred == c) & (ref == c)) / max(1, np.sum((pred == c) | (ref == c))))
            for c in range(n)]


def _print_figures(args: argparse.Namespace, work: Path, slide, seg: Path) -> None:
    """mIoU on the held-out quarter (vs the rasterised annotations, as the report computes it,
    and vs the rgb2hed label array itself) and composition vs the reference labels."""
    import tifffile

    metrics = json.loads((seg / "report_metrics.json").read_text())["evaluation"]
    with open(seg / slide.slide.stem / "composition.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    names = metrics["class_names"]
    n = len(names)
    pred = tifffile.imread(seg / slide.slide.stem / "labels.tif")
    step = max(1, round(args.size / pred.shape[0]))  # working px per level-0 px: nearest
    ref_work = slide.labels[step // 2 :: step, step // 2 :: step][: pred.shape[0], : pred.shape[1]]
    x0 = pred.shape[1] - round(pred.shape[1] * 0.25)
    direct = _iou(pred[:, x0:], ref_work[:, x0:], n)
    print(f"slide {args.size}² at {args.mpp} µm/px, {args.mode} tiles of {args.tile}, "
          f"{args.epochs} epochs, {args.backbone} U-Net, augment {args.augment}, overlap {args.overlap}, "
          f"calibrate {args.calibrate}"
          f"{' ' + ' '.join(args.segment_extra) if args.segment_extra else ''}  ({work})")
    print(f"held-out quarter vs rasterised annotations (report): mean IoU {metrics['mean_iou']:.4f}, "
          f"per class {[round(v, 3) for v in metrics['iou']]}, pixel accuracy {metrics['accuracy']:.4f}")
    print(f"held-out quarter vs rgb2hed label array:             mean IoU {np.mean(direct):.4f}, "
          f"per class {[round(v, 3) for v in direct]}")
    ref = np.bincount(slide.labels.ravel(), minlength=n).astype(float)
    pcs = np.array([float(row[f"{c} PC"]) for c in names])
    pred_pct, ref_pct = 100 * pcs / pcs.sum(), 100 * ref / ref.sum()
    bg = names.index("background")
    tissue_ref = 100 * ref / (ref.sum() - ref[bg])
    worst = 0.0
    for i, (c, p, r) in enumerate(zip(names, pred_pct, ref_pct, strict=True)):
        line = f"composition {c:12s} of slide: predicted {p:6.2f} %  reference {r:6.2f} %  ({p - r:+.2f})"
        worst = max(worst, abs(p - r))
        if i != bg:
            tc = float(row[f"{c} TC(%)"])
            worst = max(worst, abs(tc - tissue_ref[i]))
            line += (f";  TC(%) of tissue: predicted {tc:6.2f}  reference {tissue_ref[i]:6.2f}  "
                     f"({tc - tissue_ref[i]:+.2f})")
        print(line)
    print(f"largest composition difference: {worst:.2f} points")


if __name__ == "__main__":
    main()
