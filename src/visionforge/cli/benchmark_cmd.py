"""``visionforge benchmark``: latency p50/p99 and img/s of a model dir per backend and batch."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  visionforge benchmark runs/seg/model
  visionforge benchmark runs/seg/model backends=eager,onnxruntime,openvino batch=1,4,16
  visionforge benchmark runs/seg/model backends=eager,auto,onnxruntime-int8-static image_size=512
keys: backends (comma list: eager, auto, torch, onnxruntime, openvino, or an INT8 variant
      <runtime>-int8-<mode> recorded by `visionforge export quantize=int8`),
      batch (comma list), image_size (N or HxW, default the model's), calls (>= 3),
      threads (intra-op threads of every runtime; default torch's),
      out (JSON file, default <model_dir>/benchmark.json)
The first backend is the baseline of the ratio column; calls are interleaved across backends.
"""


def _ints(value: str) -> list[int]:
    return [int(v) for v in value.replace("x", ",").split(",") if v.strip()]


KEYS = {
    "backends": lambda v: [b.strip() for b in v.split(",") if b.strip()],
    "batch": _ints,
    "image_size": _ints,
    "calls": int,
    "out": str,
    "threads": int,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="time a model dir per backend and batch size (p50/p99 latency, img/s)",
        description="Time end-to-end Predictor.predict on MODEL_DIR for each backend and batch "
        "size; prints a table and writes JSON.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_dir", help="model dir (model.json + model.safetensors)")
    parser.add_argument("overrides", nargs="*", help="key=value options, e.g. batch=1,4")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from visionforge.cli.options import parse_options
    from visionforge.errors import ConfigError
    from visionforge.inference.benchmark import DEFAULT_BACKENDS, run_benchmark
    from visionforge.io import atomic_write_json

    opts = parse_options(args.overrides, KEYS, "benchmark")
    size = opts.get("image_size")
    if size is not None and len(size) not in (1, 2):
        raise ConfigError(f"benchmark: image_size is N or HxW, got {size}")
    report = run_benchmark(
        args.model_dir,
        backends=opts.get("backends", DEFAULT_BACKENDS),
        batches=opts.get("batch", [1]),
        image_size=(size * 2 if len(size) == 1 else size) if size else None,
        calls=opts.get("calls", 5),
        threads=opts.get("threads"),
    )
    out = Path(opts.get("out") or Path(args.model_dir) / "benchmark.json")
    atomic_write_json(out, report.to_dict())
    m = report.machine
    print(
        f"{report.model_dir}: images {report.image_size}, {m['cpu']}, {m['threads']} threads, "
        f"median/p99 of {report.calls} interleaved calls"
    )
    print(report.table())
    print(f"\nJSON: {out}")
    return 0
