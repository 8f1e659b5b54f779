"""Trainer overhead: visionforge.Trainer vs a plain PyTorch loop, same model/data/steps.

Run: OMP_NUM_THREADS=1 python benchmarks/trainer_overhead.py [--epochs 10] [--repeats 3]
(20 batches an epoch: --epochs 10 = 200 steps, --epochs 3 = 60 steps). Prints the median wall
time and process CPU time of each, the ratio of the medians and the median of the per-repeat
ratios (goal <= 1.05 at 200 steps and <= 1.10 at 60, CPU, small CNN, batch 64).
The Trainer time is the whole ``train()`` call (setup, CSV/TensorBoard logging,
checkpoints each epoch) with no validation set; the loop does forward/backward/step only.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def plain_loop(loader: DataLoader, epochs: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of a hand-written loop."""
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    start, cpu = time.perf_counter(), time.process_time()
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
    return time.perf_counter() - start, time.process_time() - cpu


def ours(loader: DataLoader, epochs: int) -> tuple[float, float]:
    from visionforge import Trainer

    model = make_model()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            model,
            max_epochs=epochs,
            lr=1e-3,
            # the same work as the plain loop: Adam at a constant LR, CSV log only
            optimizer="adam",
            weight_decay=0.0,
            scheduler="none",
            loggers=["csv"],
            device="cpu",
            progress=False,
            output_dir=out,
            early_stopping_patience=None,
            save_model=False,
        )
        start, cpu = time.perf_counter(), time.process_time()
        trainer.train(loader)
        return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    n = 64 * args.batches
    ds = TensorDataset(
        torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    )
    loader = DataLoader(ds, batch_size=64, shuffle=True)
    ours(loader, 1)  # warm-up: imports, first Lightning setup
    plain_loop(loader, 1)
    t_plain, t_ours = [], []
    for _ in range(args.repeats):  # interleaved so machine noise hits both alike
        t_plain.append(plain_loop(loader, args.epochs))
        t_ours.append(ours(loader, args.epochs))
    steps = args.epochs * args.batches
    print(f"machine: {machine()}")
    print(f"steps={steps} batch=64 threads={torch.get_num_threads()} repeats={args.repeats}")
    for i, what in enumerate(("wall", "CPU")):
        mp = statistics.median(t[i] for t in t_plain)
        mo = statistics.median(t[i] for t in t_ours)
        pairs = [o[i] / p[i] for p, o in zip(t_plain, t_ours)]
        print(f"{what:>4} time: plain loop {mp:.3f} s ({1000 * mp / steps:.2f} ms/step), "
              f"Trainer {mo:.3f} s ({1000 * mo / steps:.2f} ms/step); ratio of medians "
              f"{mo / mp:.3f}; per repeat {', '.join(f'{r:.3f}' for r in pairs)}; "
              f"median {statistics.median(pairs):.3f}")
    print("CPU time (this process, all threads) is the steadier figure on a shared machine;"
          " wall time is what a user waits on an idle one")


def machine() -> str:
    """CPU model, core count and load (the benchmark is only comparable on the same one)."""
    import os
    import platform

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            name = next(li.split(":", 1)[1].strip() for li in fh if li.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{name}, {os.cpu_count()} cores, load average {load:.1f} at the end"


if __name__ == "__main__":
    main()
