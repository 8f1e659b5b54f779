"""GPU throughput of the CODAvision DeepLabV3+ at 512x512: inference variants and training.

Run on a CUDA machine:   python benchmarks/gpu.py [--batches 1,8,32] [--json out.json]
Smoke run on any CPU:    python benchmarks/gpu.py --dry-run     (32x32, batch 1,2, 1 iteration)

Inference img/s (median of --repeats timed runs of --iters forward passes each, after warm-up)
for: fp32 eager (the baseline), bf16 autocast, fp16 autocast, channels_last (fp32 and bf16),
torch.compile (bf16 + channels_last) and TensorRT (torch-tensorrt, else ONNX Runtime's
TensorRT execution provider; skipped with the reason when neither is installed). Training:
img/s of visionforge.Trainer (precision=auto, channels_last=auto) vs a plain fp32 loop, same
model, data and steps. Anchor: 82.33 img/s (Apple M3 Max, the source document); goal
>= 3,000 img/s on an H100. Every skipped variant is listed with why.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

ANCHOR_IMG_S = 82.33  # Apple M3 Max, DeepLabV3+ 512x512 (the document's figure)


def build_model(num_classes: int = 5) -> nn.Module:
    from visionforge.models import create_model

    torch.manual_seed(0)
    return create_model("deeplabv3plus_codavision", num_classes=num_classes)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn: Callable[[], Any], device: str, iters: int, repeats: int) -> float:
    """Median seconds of ``iters`` calls of ``fn`` (after two warm-up calls)."""
    for _ in range(2):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iters):
            fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _autocast(device: str, dtype: torch.dtype | None) -> Any:
    return torch.autocast(device.split(":")[0], dtype=dtype) if dtype else nullcontext()


def _eager(model: nn.Module, device: str, dtype: torch.dtype | None, cl: bool) -> Callable:
    m = model.to(device, memory_format=torch.channels_last if cl else torch.contiguous_format)

    def run(x: torch.Tensor) -> Any:
        with torch.inference_mode(), _autocast(device, dtype):
            return m(x.contiguous(memory_format=torch.channels_last) if cl else x)

    return run


def _compiled(model: nn.Module, device: str, dtype: torch.dtype | None, cl: bool) -> Callable:
    inner = _eager(model, device, dtype, cl)
    return torch.compile(inner, mode="max-autotune-no-cudagraphs" if device != "cpu" else None)


def _tensorrt(model: nn.Module, device: str, size: int, batch: int) -> tuple[Callable | None, str]:
    """A TensorRT runner (fp16 allowed) or ``None`` and why it is skipped."""
    if not device.startswith("cuda"):
        return None, "TensorRT needs a CUDA device"
    try:
        import torch_tensorrt

        example = torch.randn(batch, 3, size, size, device=device)
        trt = torch_tensorrt.compile(model.eval().to(device), ir="dynamo", inputs=[example],
                                     enabled_precisions={torch.float16, torch.float32})
        return (lambda x: trt(x)), "torch-tensorrt"
    except ImportError:
        pass
    except Exception as exc:  # a conversion failure is a result to report, not a crash
        return None, f"torch-tensorrt failed: {str(exc).splitlines()[0][:120]}"
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "neither torch-tensorrt nor onnxruntime is installed"
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        return None, ("onnxruntime has no TensorrtExecutionProvider (needs onnxruntime-gpu "
                      "built with TensorRT) and torch-tensorrt is not installed")
    return _ort_trt(model, size, batch, ort)


def _ort_trt(model: nn.Module, size: int, batch: int, ort: Any) -> tuple[Callable, str]:
    import numpy as np

    path = tempfile.NamedTemporaryFile(suffix=".onnx", delete=False).name
    example = torch.randn(batch, 3, size, size)
    torch.onnx.export(model.eval().cpu(), example, path, input_names=["x"], dynamo=False)
    sess = ort.InferenceSession(path, providers=[
        ("TensorrtExecutionProvider", {"trt_fp16_enable": True}), "CUDAExecutionProvider"])

    def run(x: torch.Tensor) -> Any:
        return sess.run(None, {"x": np.ascontiguousarray(x.cpu().numpy())})

    return run, "onnxruntime TensorRT EP (fp16)"


def inference(device: str, size: int, batches: Sequence[int], iters: int, repeats: int,
              dry_run: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """img/s of every variant at every batch size; plus the skipped variants with reasons."""
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    cuda = device.startswith("cuda")
    bf16_ok = (cuda and torch.cuda.is_bf16_supported()) or not cuda
    variants: list[tuple[str, Callable[[nn.Module], Callable | None]]] = [
        ("fp32", lambda m: _eager(m, device, None, False)),
        ("bf16 autocast", lambda m: _eager(m, device, torch.bfloat16, False) if bf16_ok else None),
        ("fp16 autocast", lambda m: _eager(m, device, torch.float16, False) if cuda else None),
        ("fp32 channels_last", lambda m: _eager(m, device, None, True)),
        ("bf16 channels_last", lambda m: _eager(m, device, torch.bfloat16, True)
         if bf16_ok else None),
        ("torch.compile bf16 channels_last", lambda m: None if dry_run
         else _compiled(m, device, torch.bfloat16 if bf16_ok else None, True)),
    ]
    model = build_model().eval()
    for batch in batches:
        x = torch.rand(batch, 3, size, size, device=device)
        base = None
        for name, make in variants:
            runner = make(model)
            if runner is None:
                why = ("dry run: compiling takes minutes on a CPU" if "compile" in name
                       else "not supported on this device")
                skipped.append(f"{name} @ batch {batch}: {why}")
                continue
            sec = _time(lambda r=runner, xb=x: r(xb), device, iters, repeats)
            ips = batch * iters / sec
            base = base or ips
            rows.append({"variant": name, "batch": batch, "img_s": ips, "vs_fp32": ips / base})
        runner, how = _tensorrt(model, device, size, batch)
        if runner is None:
            skipped.append(f"TensorRT @ batch {batch}: {how}")
        else:
            sec = _time(lambda r=runner, xb=x: r(xb), device, iters, repeats)
            rows.append({"variant": how, "batch": batch, "img_s": batch * iters / sec,
                         "vs_fp32": batch * iters / sec / base})
        model = build_model().eval()  # fresh weights/format for the next batch size
    return rows, skipped


def training(device: str, size: int, batch: int, steps: int) -> dict[str, Any]:
    """img/s of a plain fp32 loop and of visionforge.Trainer(precision/channels_last=auto)."""
    from torch.utils.data import DataLoader, TensorDataset

    from visionforge import Trainer

    g = torch.Generator().manual_seed(0)
    n = batch * steps
    ds = TensorDataset(torch.rand(n, 3, size, size, generator=g),
                       torch.randint(0, 5, (n, size, size), generator=g))
    loader = DataLoader(ds, batch_size=batch, shuffle=True)
    model = build_model().to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    _sync(device)
    start = time.perf_counter()
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x.to(device)), y.to(device)).backward()
        opt.step()
    _sync(device)
    plain = n / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(build_model(), max_epochs=1, optimizer="adamw", lr=1e-4,
                          scheduler="none", loggers=["csv"], device=device, progress=False,
                          output_dir=out, early_stopping_patience=None, save_model=False,
                          precision="auto", channels_last="auto", criterion="cross_entropy")
        start = time.perf_counter()
        trainer.train(loader)
        ours = n / (time.perf_counter() - start)
    choice = trainer.speed_choice.line() if trainer.speed_choice else "-"
    return {"batch": batch, "steps": steps, "plain_fp32_img_s": plain,
            "trainer_auto_img_s": ours, "ratio": ours / plain, "probe": choice,
            "note": "Trainer time includes its setup and the speed probe"}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU, 32x32, batch 1,2, 1 iteration")
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train-batch", type=int, default=16)
    ap.add_argument("--train-steps", type=int, default=30)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    size, batches, iters, repeats = args.size, [int(b) for b in args.batches.split(",")], \
        args.iters, args.repeats
    if args.dry_run:
        device, size, batches, iters, repeats = "cpu", 32, [1, 2], 1, 1
        args.train_batch, args.train_steps = 2, 1
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    print(f"device: {name}; torch {torch.__version__}; DeepLabV3+ (CODAvision) {size}x{size}")
    rows, skipped = inference(device, size, batches, iters, repeats, args.dry_run)
    print(f"{'variant':<36}{'batch':>6}{'img/s':>10}{'vs fp32':>9}")
    for r in rows:
        print(f"{r['variant']:<36}{r['batch']:>6}{r['img_s']:>10.1f}{r['vs_fp32']:>8.2f}x")
    for s in skipped:
        print(f"skipped: {s}")
    train = training(device, size, args.train_batch, args.train_steps)
    print(f"training batch {train['batch']}: plain fp32 {train['plain_fp32_img_s']:.1f} img/s, "
          f"Trainer(auto) {train['trainer_auto_img_s']:.1f} img/s (ratio {train['ratio']:.2f}; "
          f"{train['note']}); {train['probe']}")
    best = max((r["img_s"] for r in rows), default=0.0)
    print(f"best inference {best:.1f} img/s = {best / ANCHOR_IMG_S:.2f}x the M3 Max anchor "
          f"({ANCHOR_IMG_S} img/s); goal >= 3000 img/s on an H100")
    result = {"device": name, "size": size, "inference": rows, "skipped": skipped,
              "training": train, "anchor_img_s": ANCHOR_IMG_S, "dry_run": args.dry_run}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
