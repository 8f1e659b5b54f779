"""torchmetrics' MeanAveragePrecision agrees with pycocotools' COCOeval on the same predictions."""

from __future__ import annotations

import torch

from visionforge.evaluation.detection import (
    build_map_metric,
    cocoeval_stats,
    count_errors,
    map_scalars,
)


def _case(seed: int):
    g = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for _ in range(6):
        n = int(torch.randint(1, 8, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * 80
        wh = 5 + torch.rand(n, 2, generator=g) * 30
        boxes = torch.cat([xy, xy + wh], 1)
        labels = torch.randint(1, 3, (n,), generator=g)
        targets.append({"boxes": boxes, "labels": labels, "iscrowd": torch.zeros(n, dtype=torch.long)})
        jitter = boxes + torch.randn(n, 4, generator=g) * 3  # near misses and hits
        extra = torch.rand(2, 2, generator=g) * 80
        pb = torch.cat([jitter, torch.cat([extra, extra + 10], 1)])
        preds.append({"boxes": pb, "scores": torch.rand(n + 2, generator=g),
                      "labels": torch.cat([labels, torch.randint(1, 3, (2,), generator=g)])})
    return preds, targets


def test_torchmetrics_map_equals_cocoeval():
    for seed in range(3):
        preds, targets = _case(seed)
        metric = build_map_metric()
        metric.update(preds, targets)
        ours = map_scalars(metric.compute())
        ref = cocoeval_stats(preds, targets)
        assert 0.05 < ref["map_50"] < 1.0  # a non-trivial case
        for key in ("map", "map_50", "map_75", "mar_100"):
            assert abs(ours[key] - ref[key]) <= 1e-3, (seed, key, ours[key], ref[key])


def test_map_matches_cocoeval_when_recall_hits_a_threshold_exactly():
    """40 true boxes: recalls of k/40 equal recall thresholds such as 0.1, where float32
    thresholds (torchmetrics' defaults) sample the precision one step late."""
    g = torch.Generator().manual_seed(0)
    preds, targets = [], []
    for _ in range(4):
        xy = torch.rand(10, 2, generator=g) * 100
        true = torch.cat([xy, xy + 8 + torch.rand(10, 2, generator=g) * 6], 1)
        false = torch.cat([xy[:5] + 40, xy[:5] + 50], 1)
        boxes = torch.cat([true + torch.randn(10, 4, generator=g) * 2.0, false])
        preds.append({"boxes": boxes, "scores": torch.rand(15, generator=g),
                      "labels": torch.ones(15, dtype=torch.long)})
        targets.append({"boxes": true, "labels": torch.ones(10, dtype=torch.long)})
    metric = build_map_metric()
    metric.update(preds, targets)
    ours, ref = map_scalars(metric.compute()), cocoeval_stats(preds, targets)
    for key in ("map", "map_50"):  # float32 results: equal to ~1e-7 (was 3e-4 off)
        assert abs(ours[key] - ref[key]) <= 1e-5, (key, ours[key], ref[key])


def test_count_errors():
    out = count_errors([9, 11, 0], [10, 10, 0])
    assert out["mean_absolute_count_error"] == 2 / 3
    assert abs(out["mean_relative_count_error"] - 0.1) < 1e-9  # the empty image is left out
