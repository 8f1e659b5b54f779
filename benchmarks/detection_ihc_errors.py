"""Where a saved IHC nuclei detector errs: recall ceiling at IoU 0.5 and a picture of two tiles.

Run: python benchmarks/detection_ihc.py --save DIR (one seed), then
python benchmarks/detection_ihc_errors.py DIR/seed0 [--picture docs/img/ihc_nuclei_test_boxes.png]

Rebuilds the IHC nuclei test tiles (``visionforge.data.nuclei.build_ihc_nuclei``), predicts
them with the saved model (its ``score_threshold`` from the validation tiles) and prints, per
tile and in total: true boxes, detections at the threshold, true boxes with a detection of
IoU >= 0.5 at any score (the recall no threshold can beat), and detections at the threshold
matching no true box at IoU 0.5. Then the test AP@.5 of all detections as the model scores
them and re-ranked by their true IoU with the labels (an oracle score, same boxes): the gap
is what ranking costs. With ``--picture``, the top and third test tiles are drawn three times
enlarged: true boxes green, detections red with their scores.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch


def _tile_rows(root: Path) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(file name, image, true xyxy boxes) of the test tiles, read as training reads them."""
    from visionforge.data.detection_datamodule import DetectionDataModule

    dm = DetectionDataModule(root, batch_size=1, num_workers=0)
    dm.setup()
    test = dm.test_set
    return [(rec.path.name, item["image"], item["target"]["boxes"])
            for rec, item in ((test.records[i], test[i]) for i in range(len(test)))]


def _draw(image: torch.Tensor, truth: torch.Tensor, det: dict, zoom: int = 3):
    from PIL import Image, ImageDraw

    arr = (image.permute(1, 2, 0).clamp(0, 1) * 255).byte().numpy()
    pic = Image.fromarray(arr).resize((arr.shape[1] * zoom, arr.shape[0] * zoom), Image.NEAREST)
    draw = ImageDraw.Draw(pic)
    for box in truth.tolist():
        draw.rectangle([v * zoom for v in box], outline=(0, 200, 0), width=1)
    for box, score in zip(det["boxes"].tolist(), det["scores"].tolist(), strict=True):
        draw.rectangle([v * zoom for v in box], outline=(230, 0, 0), width=1)
        draw.text((box[0] * zoom + 2, box[1] * zoom + 1), f"{score:.2f}", fill=(230, 0, 0))
    return pic


def _map_50(preds: list[dict], targets: list[dict]) -> float:
    from visionforge.evaluation.detection import build_map_metric

    metric = build_map_metric()
    metric.update(preds, targets)
    return float(metric.compute()["map_50"])


def main() -> None:
    from PIL import Image
    from torchvision.ops import box_iou

    from visionforge.data.nuclei import build_ihc_nuclei
    from visionforge.inference.detection import BoxPredictor

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--picture", default="", help="write the two-tile picture here (PNG)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    every = BoxPredictor(args.model_dir, score_threshold=0.0)
    threshold = every.default_score_threshold
    totals = {"true": 0, "found": 0, "reachable": 0, "unmatched": 0}
    pictures = []
    with tempfile.TemporaryDirectory() as tmp:
        build_ihc_nuclei(tmp, val=True, train_crop=192)
        rows = _tile_rows(Path(tmp))
    dets, oracle, targets = [], [], []
    for name, image, truth in rows:
        det = every.predict([image])[0]
        dets.append(det)
        targets.append({"boxes": truth, "labels": torch.ones(len(truth), dtype=torch.long)})
        # IoU of every detection with every true box, computed once for all three figures
        iou = box_iou(det["boxes"], truth)  # [detections, true boxes]; empty sides allowed
        best = iou.max(1).values if iou.numel() else torch.zeros(len(det["boxes"]))
        # ties (IoU 0) keep the model's order
        oracle.append({**det, "scores": best + 1e-3 * det["scores"]})
        above = det["scores"] >= threshold
        kept = {k: v[above] for k, v in det.items()}
        reachable = int((iou.max(0).values >= 0.5).sum()) if iou.numel() else 0
        unmatched = int((best[above] < 0.5).sum())
        row = {"true": len(truth), "found": len(kept["boxes"]), "reachable": reachable,
               "unmatched": unmatched}
        totals = {k: totals[k] + row[k] for k in totals}
        print(f"{name}: true {row['true']}, detections {row['found']} (score >= {threshold}), "
              f"true boxes with an IoU >= 0.5 detection at any score {reachable}, "
              f"detections matching no true box {unmatched}")
        pictures.append(_draw(image, truth, kept))
    print(f"all tiles: true {totals['true']}, detections {totals['found']}, recall ceiling at "
          f"IoU 0.5 {totals['reachable'] / totals['true']:.3f}, unmatched detections "
          f"{totals['unmatched']}")
    as_scored, reranked = (_map_50(p, targets) for p in (dets, oracle))
    print(f"test AP@.5 as scored {as_scored:.3f}, re-ranked by true IoU (oracle) {reranked:.3f}")
    if args.picture:
        a, b = pictures[0], pictures[2]
        out = Image.new("RGB", (a.width + b.width + 6, a.height), "white")
        out.paste(a, (0, 0))
        out.paste(b, (a.width + 6, 0))
        out.save(args.picture)
        print(f"picture: {args.picture}")


if __name__ == "__main__":
    main()
