"""Training throughput: Trainer(precision=auto, channels_last=auto) vs a plain fp32 eager loop.

Run: python benchmarks/train_throughput.py [--repeats 3] [--models resnet18,small_cnn]
     python benchmarks/train_throughput.py --accuracy   # + the demo's digits run with auto

Models: resnet18 at 128x128 (synthetic data, batch 16) and small_cnn on the digits demo data
(32x32, batch 32). Each repeat times the plain loop and the Trainer side by side; the
Trainer's img/s counts its training loop only (from the first training batch to the end of
fit: setup and the speed probe are reported apart). Prints the median img/s and the median
of the per-repeat ratios (goal >= 1.3x). ``--accuracy`` trains the demo's digits job
(small_cnn, 15 epochs, seed 0) with precision=auto channels_last=auto and prints its test
accuracy next to the demo's 0.9944 (goal: within 0.3 points).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).parent))
from trainer_overhead import machine  # noqa: E402

DEMO_DIGITS_ACCURACY = 0.9944


def _data(name: str, quick: bool, limit: int | None = None) -> tuple[TensorDataset, int]:
    g = torch.Generator().manual_seed(0)
    if name == "resnet18":
        n, size, batch = (16, 32, 8) if quick else (limit or 128, 128, 16)
        x = torch.rand(n, 3, size, size, generator=g)
        return TensorDataset(x, torch.randint(0, 10, (n,), generator=g)), batch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).div(16).unsqueeze(1)
    x = nn.functional.interpolate(x, size=32, mode="bilinear").repeat(1, 3, 1, 1)
    n = 64 if quick else min(limit or len(x), len(x))
    return TensorDataset(x[:n], torch.tensor(d.target[:n])), 32


def _model(name: str) -> nn.Module:
    from visionforge.models import create_model

    torch.manual_seed(0)
    return create_model(name, num_classes=10)


def plain_loop(name: str, loader: DataLoader) -> float:
    """img/s of forward/backward/AdamW step in fp32, NCHW, eager."""
    model = _model(name).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    seen, start = 0, time.perf_counter()
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        seen += len(x)
    return seen / (time.perf_counter() - start)


class _LoopClock:
    """Lightning callback timing the training loop alone (first batch to the end of fit)."""

    def __new__(cls):  # built lazily so importing this script does not import Lightning
        from lightning.pytorch.callbacks import Callback

        class Clock(Callback):
            start: float | None = None
            seen = 0

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                if self.start is None:
                    self.start = time.perf_counter()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                self.seen += len(batch[0])

            def on_train_end(self, trainer, pl_module):
                self.seconds = time.perf_counter() - (self.start or time.perf_counter())

        return Clock()


def ours(name: str, loader: DataLoader) -> tuple[float, float, str]:
    """(img/s of the Trainer's loop, seconds of setup + probe, what the probe chose)."""
    from visionforge import Trainer

    clock = _LoopClock()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(_model(name), max_epochs=1, optimizer="adamw", lr=1e-3,
                          scheduler="none", loggers=["csv"], device="cpu", progress=False,
                          output_dir=out, early_stopping_patience=None, save_model=False,
                          precision="auto", channels_last="auto", callbacks=[clock])
        start = time.perf_counter()
        trainer.train(loader)
        total = time.perf_counter() - start
    choice = trainer.speed_choice.line() if trainer.speed_choice else "-"
    return clock.seen / clock.seconds, total - clock.seconds, choice


def digits_accuracy() -> float:
    """Test accuracy of the demo's digits job trained with precision/channels_last=auto."""
    from visionforge.config.loader import compose_config
    from visionforge.workflows.demo import write_digits_folder
    from visionforge.workflows.train import train_from_config

    with tempfile.TemporaryDirectory() as tmp:
        digits = write_digits_folder(Path(tmp) / "digits")
        cfg = compose_config([
            f"project_dir={tmp}", "trainer=cpu", "data.augment=false", "seed=0",
            "trainer.early_stopping_patience=8", f"data.root={digits}", "model=small_cnn",
            "data.image_size=32", "data.batch_size=32", "trainer.max_epochs=15",
            "optimizer.lr=0.003", "name=digits", "trainer.precision=auto",
            "trainer.channels_last=auto",
        ], env={}).cfg
        return float(train_from_config(cfg, echo=lambda s: None).metrics["accuracy"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="resnet18,small_cnn")
    ap.add_argument("--quick", action="store_true", help="tiny data (a smoke run, no figures)")
    ap.add_argument("--limit", type=int, default=None,
                    help="training images per model (default: resnet18 128, all 1,797 digits)")
    ap.add_argument("--accuracy", action="store_true", help="also the demo digits accuracy")
    args = ap.parse_args()
    print(f"machine: {machine()}; torch {torch.__version__}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, threads "
          f"{torch.get_num_threads()}")
    for name in args.models.split(","):
        ds, batch = _data(name, args.quick, args.limit)
        loader = DataLoader(ds, batch_size=batch, shuffle=True)
        plain_loop(name, loader)  # warm-up (oneDNN primitives, allocator)
        p, o, ratios, setup, choice = [], [], [], [], "-"
        for _ in range(args.repeats):  # interleaved: machine noise hits both alike
            p.append(plain_loop(name, loader))
            ips, extra, choice = ours(name, loader)
            o.append(ips)
            setup.append(extra)
            ratios.append(o[-1] / p[-1])
        print(f"{name}: plain fp32 {statistics.median(p):.1f} img/s, Trainer(auto) "
              f"{statistics.median(o):.1f} img/s, ratio {statistics.median(ratios):.3f} "
              f"(per repeat {', '.join(f'{r:.2f}' for r in ratios)}); setup+probe "
              f"{statistics.median(setup):.1f}s; {choice}")
    if args.accuracy:
        acc = digits_accuracy()
        print(f"digits test accuracy with auto: {acc:.4f} (demo {DEMO_DIGITS_ACCURACY}; "
              f"difference {100 * (acc - DEMO_DIGITS_ACCURACY):+.2f} points)")


if __name__ == "__main__":
    main()
