"""``visionforge data``: check a dataset folder or write a stratified split manifest."""

from __future__ import annotations

import argparse
from typing import Any

from visionforge.errors import ConfigError

EXAMPLES = """examples:
  visionforge data check data/flowers                  # report + ./data_check.json
  visionforge data check data/seg --num-classes 3 out=runs/check.json
  visionforge data split data/flowers ratios=0.8,0.1,0.1 seed=0 out=data/flowers/splits.csv
  visionforge data split data/flowers seed=1 --copy data/flowers_split
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "data",
        help="check a dataset or split it into train/val/test",
        description="Check a dataset folder or write a stratified split manifest.\n\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    check = sub.add_parser(
        "check",
        help="report counts, sizes, corrupt files, duplicates/leakage, mask histogram",
        description="Check a dataset; exit code 1 when errors are found.\n\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("path", help="dataset folder")
    check.add_argument("overrides", nargs="*", help="out=REPORT.json")
    check.add_argument("--out", help="report JSON path (default ./data_check.json: the "
                       "dataset folder is never written to)")
    check.add_argument("--manifest", help="split manifest (CSV/JSON) to check instead of folders")
    check.add_argument("--num-classes", type=int, help="check mask values are < this")
    check.set_defaults(func=run_check)
    split = sub.add_parser(
        "split",
        help="write a stratified train/val/test manifest (no files copied)",
        description=(
            "Write a stratified split manifest path,label,split for PATH/<class>/*.\n"
            "Overrides: ratios=0.8,0.1,0.1 seed=0 out=PATH/splits.csv copy_to=DIR\n\n" + EXAMPLES
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    split.add_argument("path", help="dataset folder with one sub-folder per class")
    split.add_argument("overrides", nargs="*", help="key=value: ratios, seed, out, copy_to")
    split.add_argument(
        "--copy",
        nargs="?",
        const="",
        metavar="DIR",
        help="also copy files into DIR/<split>/<class>/ (default: copy_to= or PATH_split)",
    )
    split.set_defaults(func=run_split)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from visionforge.cli.options import parse_options
    from visionforge.data.check import REPORT_NAME, check_dataset, format_report

    opts = parse_options(args.overrides, ("out",), "data check")
    out = opts.get("out") or args.out or Path.cwd() / REPORT_NAME
    report = check_dataset(args.path, out, manifest=args.manifest, num_classes=args.num_classes)
    print(format_report(report))
    return 0 if report["ok"] else 1


def run_split(args: argparse.Namespace) -> int:
    from pathlib import Path

    from visionforge.cli.options import parse_options
    from visionforge.data.splits import materialize, read_manifest, split_dataset

    opts = parse_options(args.overrides, ("ratios", "seed", "out", "copy_to"), "data split")
    try:
        ratios = tuple(float(v) for v in opts.get("ratios", "0.8,0.1,0.1").split(","))
        seed = int(opts.get("seed", "0"))
    except ValueError:
        raise ConfigError("ratios must be numbers like 0.8,0.1,0.1 and seed an integer") from None
    manifest = split_dataset(args.path, opts.get("out"), ratios, seed)
    records = read_manifest(manifest)
    counts: dict[str, int] = {}
    for rec in records:
        counts[rec["split"]] = counts.get(rec["split"], 0) + 1
    print(f"wrote {manifest}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    if args.copy is not None or "copy_to" in opts:
        target = Path(args.copy or opts.get("copy_to") or f"{Path(args.path).resolve()}_split")
        materialize(manifest, target, root=args.path, copy=True)
        print(f"copied files into {target}/<split>/<class>/")
    return 0
