"""``visionforge prune MODEL_DIR DATA amount=0.5``: magnitude pruning with an accuracy report."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  visionforge prune runs/digits/model data/digits_val amount=0.5
  visionforge prune runs/seg/model data/seg_val amount=0.3 out=models/seg-pruned
DATA holds labelled images: DATA/<class>/* (classifiers) or DATA/images + DATA/masks
(segmentation). Writes the pruned model dir (default MODEL_DIR-prunedNN) with
prune_report.json: accuracy (or mIoU) before and after, and the sparsity per layer.
keys: amount (fraction of conv/linear weights to zero, default 0.5), out, batch_size"""

KEYS = {"amount": float, "out": str, "batch_size": int}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="prune a model dir (global magnitude pruning) and report accuracy before/after",
        description="Zero the smallest weights of a model dir (global, unstructured, L1) and "
        "score it on labelled data before and after.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_dir", help="model dir (model.json + model.safetensors)")
    parser.add_argument("data", help="labelled folder: DATA/<class>/* or DATA/images + masks")
    parser.add_argument("overrides", nargs="*", help="key=value options: amount=, out=, batch_size=")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from visionforge.cli.options import parse_options
    from visionforge.workflows.prune import prune_model_dir

    opts = parse_options(args.overrides, KEYS, "prune")
    r = prune_model_dir(args.model_dir, args.data, opts.get("amount", 0.5), out=opts.get("out"),
                        batch_size=opts.get("batch_size", 32))
    m = r["metric"]
    print(f"pruned {r['amount']:.0%} of {r['prunable_weights']:,} conv/linear weights "
          f"(sparsity {r['sparsity_before']:.1%} -> {r['sparsity_after']:.1%})")
    print(f"{m} on {r['n_samples']} samples: {r[f'{m}_before']:.2f} -> {r[f'{m}_after']:.2f} "
          f"(drop {r[f'{m}_drop']:.2f} points)")
    print(f"pruned model: {r['out']}  report: {r['out']}/prune_report.json")
    return 0
