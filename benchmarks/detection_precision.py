"""Detection training step time: bf16 autocast vs fp32 on the CPU (fcos_resnet18_lite).

Run: python benchmarks/detection_precision.py [--repeats 5] [--steps 4] [--threads 2]
     [--map-steps 40]

One batch of ``DummyDetectionDataset`` (batch 8, 128x128, 30 random boxes per image) is
trained on repeatedly: forward with the engine's loss (``detection_losses``), backward, AdamW
step, the same thing Lightning's ``bf16-mixed`` precision does around a training step. Each
repeat times ``--steps`` steps in every setting (order rotating between repeats, after one
warm-up step each) and the script prints the median step time per setting and the median
of the per-repeat ratios fp32 / setting (> 1: faster than fp32). ``bf16 (bf16 heads)``
removes the float32 cast on the head outputs (``visionforge.models.detection
.float32_outputs``) to show what that cast costs. The eval-mode forward (decode + NMS) is
timed the same way. ``--map-steps N`` then trains each setting N steps from the same
weights on 64 such images and prints mAP on 16 others (one seed: a smoke check of accuracy,
not a benchmark of it).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from trainer_overhead import machine  # noqa: E402

SETTINGS = ("fp32", "bf16", "bf16 (bf16 heads)")


def _context(setting: str) -> Any:
    if setting == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _model(setting: str) -> torch.nn.Module:
    from visionforge.models import create_model

    torch.manual_seed(0)
    model = create_model("fcos_resnet18_lite", num_classes=1)
    if setting == "bf16 (bf16 heads)":
        model.head._forward_hooks.clear()  # torchvision's behaviour: boxes decoded in bf16
    return model


def _batch(batch_size: int, size: int, boxes: int) -> dict[str, Any]:
    from visionforge.data import DummyDetectionDataset

    ds = DummyDetectionDataset(batch_size, size, boxes_per_image=boxes, seed=0)
    return ds.collate_fn([ds[i] for i in range(batch_size)])


def time_train(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict[str, Any],
               setting: str, steps: int) -> tuple[float, float]:
    """Seconds per training step over ``steps`` steps, and the last loss."""
    from visionforge.engine.detection import detection_losses

    model.train()
    loss = torch.zeros(())
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        with _context(setting):
            losses = detection_losses(model, batch["image"], batch["targets"])
        loss = torch.stack([v.float() for v in losses.values()]).sum()
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / steps, float(loss.detach())


def time_eval(model: torch.nn.Module, batch: dict[str, Any], setting: str, steps: int) -> float:
    """Seconds per eval-mode forward (backbone, heads, decode, NMS) of the batch."""
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(steps):
            with _context(setting):
                model(list(batch["image"]))
    return (time.perf_counter() - start) / steps


def short_run_map(setting: str, steps: int, batch_size: int, size: int, boxes: int,
                  lr: float = 4e-3) -> dict[str, float]:
    """Train from the same initial weights for ``steps`` steps under ``setting`` (64 images,
    same batches in the same order) and return test mAP (16 other images), evaluated under
    the same setting, as Lightning's ``bf16-mixed`` validates under autocast too."""
    from visionforge.data import DummyDetectionDataset
    from visionforge.engine.detection import build_map_metric, map_scalars

    train = DummyDetectionDataset(64, size, boxes_per_image=boxes, seed=1)
    test = DummyDetectionDataset(16, size, boxes_per_image=boxes, seed=2)
    model = _model(setting)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    order = torch.cat([torch.randperm(len(train), generator=g)
                       for _ in range(steps * batch_size // len(train) + 1)])
    for step in range(steps):
        idx = order[step * batch_size:(step + 1) * batch_size].tolist()
        time_train(model, opt, train.collate_fn([train[i] for i in idx]), setting, 1)
    metric = build_map_metric()
    model.eval()
    with torch.no_grad():
        for start in range(0, len(test), batch_size):
            b = test.collate_fn([test[i] for i in range(start, min(start + batch_size,
                                                                   len(test)))])
            with _context(setting):
                preds = model(list(b["image"]))
            metric.update(preds, [{k: t[k] for k in ("boxes", "labels")} for t in b["targets"]])
    return map_scalars(metric.compute())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=4, help="timed steps per setting and repeat")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--boxes", type=int, default=30, help="random boxes per image")
    p.add_argument("--map-steps", type=int, default=0,
                   help="also train this many steps per setting and print test mAP (0: off)")
    a = p.parse_args(argv)
    from visionforge.engine.precision import cpu_native_bf16, cpu_supports_bf16

    torch.set_num_threads(a.threads)
    print(f"threads {a.threads}, batch {a.batch_size}, {a.image_size}x{a.image_size}, "
          f"{a.boxes} boxes/image; native bf16: {cpu_native_bf16()}")
    if not cpu_supports_bf16():
        print("bf16 autocast does not run on this CPU: nothing to compare")
        return 1
    batch = _batch(a.batch_size, a.image_size, a.boxes)
    state = {}
    for s in SETTINGS:
        model = _model(s)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        time_train(model, opt, batch, s, 1)  # warm-up: allocator, oneDNN kernels
        time_eval(model, batch, s, 1)
        state[s] = (model, opt)
    train: dict[str, list[float]] = {s: [] for s in SETTINGS}
    evals: dict[str, list[float]] = {s: [] for s in SETTINGS}
    losses: dict[str, float] = {}
    for r in range(a.repeats):
        order = SETTINGS[r % len(SETTINGS):] + SETTINGS[:r % len(SETTINGS)]
        for s in order:
            model, opt = state[s]
            step, losses[s] = time_train(model, opt, batch, s, a.steps)
            train[s].append(step)
            evals[s].append(time_eval(model, batch, s, a.steps))
        print(f"repeat {r + 1}: " + ", ".join(f"{s} {train[s][-1]:.3f} s" for s in SETTINGS),
              flush=True)
    print(f"\n{'setting':<20} {'train s/step':>12} {'fp32/x':>8} {'eval s/batch':>13} "
          f"{'fp32/x':>8} {'last loss':>10}")
    for s in SETTINGS:
        tr = statistics.median(a0 / b0 for a0, b0 in zip(train["fp32"], train[s], strict=True))
        ev = statistics.median(a0 / b0 for a0, b0 in zip(evals["fp32"], evals[s], strict=True))
        print(f"{s:<20} {statistics.median(train[s]):>12.3f} {tr:>8.2f} "
              f"{statistics.median(evals[s]):>13.3f} {ev:>8.2f} {losses[s]:>10.6f}")
    if a.map_steps:
        print(f"\nshort run: {a.map_steps} steps from the same weights, AdamW lr 4e-3")
        for s in SETTINGS:
            m = short_run_map(s, a.map_steps, a.batch_size, a.image_size, a.boxes)
            print(f"{s:<20} test mAP@.5 {m['map_50']:.3f}  mAP {m['map']:.3f}", flush=True)
    print(machine())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
