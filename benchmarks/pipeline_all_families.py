"""The disease pipeline over all 15 classification families on the digits data.

Runs ``visionforge pipeline`` (verify -> stratified split -> head + fine-tune -> test
metrics -> exports with smoke tests) for every family and prints the comparison table,
plus each family's inference throughput relative to a named baseline family
(``--baseline``, default ``custom_resnet_mish``; img/s is a median of 3 timed batches).
The run is resumable: run the same command again and finished families are skipped, so
it can be spread over several sessions on a busy machine.

    python benchmarks/pipeline_all_families.py --out runs/pipeline_bench
    python benchmarks/pipeline_all_families.py --size small --image-size 224 --epochs 40 25
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="image folder (default: sklearn digits written as PNGs)")
    parser.add_argument("--out", default="runs/pipeline_bench", help="pipeline dir (resumable)")
    parser.add_argument("--models", default="all", help="comma-separated names or 'all' (the 15)")
    parser.add_argument("--size", default="tiny", help="model size variant (tiny/small/base/...)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, nargs=2, default=(1, 1), metavar=("HEAD", "FINETUNE"))
    parser.add_argument("--max-per-class", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--formats", default="all", help="export formats (all = the six)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline", default="custom_resnet_mish", help="throughput baseline family")
    args = parser.parse_args()

    from visionforge.cli.main import setup_logging
    from visionforge.workflows.pipeline import run_pipeline
    from visionforge.workflows.pipeline_settings import parse_pipeline_args

    setup_logging(0)
    data = args.data
    if data is None:
        from visionforge.workflows.demo import write_digits_folder

        data = str(write_digits_folder(Path(tempfile.mkdtemp()) / "digits", size=args.image_size))
    settings, overrides = parse_pipeline_args([
        f"data.root={data}", f"models={args.models}", f"size={args.size}",
        f"head_epochs={args.epochs[0]}", f"finetune_epochs={args.epochs[1]}",
        f"max_per_class={args.max_per_class}", f"formats={args.formats}", f"out={args.out}",
        f"data.image_size={args.image_size}", f"data.batch_size={args.batch_size}",
        f"trainer.device={args.device}", "logger.tensorboard=false",
    ])
    start = time.perf_counter()
    result = run_pipeline(settings, overrides)
    print(result.tables[1].read_text(encoding="utf-8"))
    rows = {r["backbone"]: r.get("row") or {} for r in result.records}
    base = (rows.get(args.baseline) or {}).get("img_per_s")
    if base:
        print(f"inference img/s relative to {args.baseline} ({base} img/s):")
        for name, row in rows.items():
            if row.get("img_per_s"):
                print(f"  {name:<26} {row['img_per_s'] / base:6.2f}x")
    print(f"wall time this session: {time.perf_counter() - start:.0f} s; "
          f"{len(result.records) - len(result.failed)} of {len(result.records)} families without failure")
    return 1 if result.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
