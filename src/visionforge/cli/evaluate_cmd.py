"""``visionforge evaluate MODEL_DIR DATA``: metrics, plots and a report for a saved model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from visionforge.errors import DataError

EXAMPLE = """example:
  visionforge evaluate runs/digits/model data/digits_test out=runs/digits/eval --pdf
DATA is a classification folder (DATA/<class>/*.png) or a segmentation folder
holding DATA/images and DATA/masks (masks paired by file stem).
options (key=value): out=DIR (default MODEL_DIR/../evaluation) batch_size=16 device=cpu
  ignore_index=N num_samples=8"""

_KEYS = {"out": str, "batch_size": int, "device": str, "ignore_index": int, "num_samples": int}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a saved model dir on a data folder (metrics, plots, report)",
        description="Evaluate a model dir and write metrics.json, plots/*.png and report.html.\n\n"
        + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model_dir", help="model directory (model.json + model.safetensors)")
    p.add_argument("data", help="classification folder or folder with images/ and masks/")
    p.add_argument("--pdf", action="store_true", help="also write report.pdf")
    p.add_argument("overrides", nargs="*", help="key=value options (out=, batch_size=, device=)")
    p.set_defaults(func=run)


def model_transform(meta: dict[str, Any], task: str) -> Any:
    """The evaluation transform a model dir's metadata implies: resize, then its recorded
    input contract (range, channel order, mean/std, interpolation)."""
    from visionforge.data.transforms import eval_transforms
    from visionforge.models.contract import contract_from_meta

    size = meta.get("input_size")
    return eval_transforms(
        "segmentation" if task == "segmentation" else "classification",
        image_size=list(size[-2:]) if size and len(size) >= 3 else None,
        contract=contract_from_meta(meta),
    )


def build_dataset(data: Path, meta: dict[str, Any]) -> tuple[Any, str, dict[str, Any]]:
    """Dataset for ``data`` matching the model's task; returns (dataset, task, summary)."""
    task = meta.get("task") or "classification"
    size = meta.get("input_size")
    channels = int(size[0]) if size and len(size) >= 3 else 3
    if not data.is_dir():
        raise DataError(f"{data}: data folder not found")
    if (data / "images").is_dir() and (data / "masks").is_dir():
        from visionforge.data.segmentation import SegmentationDataset

        if task not in ("segmentation", "multitask"):
            raise DataError(f"{data} holds images/ and masks/ but the model's task is {task!r}")
        ds = SegmentationDataset(
            data / "images",
            data / "masks",
            model_transform(meta, "segmentation"),
            num_classes=meta.get("num_classes"),
            channels=channels,
        )
        return (
            ds,
            "segmentation",
            {"root": str(data), "layout": "images/ + masks/", "samples": len(ds)},
        )
    if task not in ("classification",):
        raise DataError(
            f"{data}: a {task} model needs a folder with images/ and masks/ sub-folders"
            if task == "segmentation"
            else f"{data}: evaluating {task!r} models from the CLI is "
            "not supported; use visionforge.evaluation.Evaluator in Python"
        )
    from visionforge.data.classification import ClassificationDataset

    ds = ClassificationDataset(
        data,
        transform=model_transform(meta, "classification"),
        classes=meta.get("class_names"),
        channels=channels,
    )
    return (
        ds,
        "classification",
        {
            "root": str(data),
            "layout": "class folders",
            "samples": len(ds),
            "classes": ", ".join(meta.get("class_names") or []),
        },
    )


def run(args: argparse.Namespace) -> int:
    import time

    from torch.utils.data import DataLoader

    from visionforge.cli.options import parse_options
    from visionforge.evaluation import Evaluator
    from visionforge.evaluation.report import render_report
    from visionforge.models import load_model, read_model_meta

    opts = parse_options(args.overrides, _KEYS, "evaluate")
    model_dir = Path(args.model_dir)
    meta = read_model_meta(model_dir)
    out = Path(opts.get("out") or model_dir.resolve().parent / "evaluation")
    device = opts.get("device", "cpu")
    t0 = time.perf_counter()
    model = load_model(model_dir, device=device)
    load_s = time.perf_counter() - t0
    ds, task, summary = build_dataset(Path(args.data), meta)
    loader = DataLoader(ds, batch_size=opts.get("batch_size", 16), shuffle=False)
    ev = Evaluator(
        model,
        device,
        task=task if meta.get("task") != "multitask" else "multitask",
        class_names=meta.get("class_names"),
        ignore_index=opts.get("ignore_index"),
        num_samples=opts.get("num_samples", 8),
    )
    metrics = ev.evaluate(loader)
    written = ev.save(out)
    config = {k: meta.get(k) for k in ("name", "kwargs", "task", "input_size", "preprocessing")}
    config["model_dir"] = str(model_dir)
    report = render_report(
        out / "report.html",
        title=f"visionforge evaluation: {meta['name']}",
        config=config,
        dataset=summary,
        metrics=metrics,
        figures=[p for k, p in written.items() if k != "metrics"],
        runtimes={"load_model_seconds": round(load_s, 3)},
        run_dir=out,
        pdf=args.pdf,
    )
    head = metrics.get("classification", metrics) if task != "segmentation" else metrics
    key = "mean_iou" if task == "segmentation" else "accuracy"
    print(f"{key}: {head.get(key, float('nan')):.4f}  ({summary['samples']} samples)")
    print(
        f"wrote {out / 'metrics.json'}, {len(written) - 1} plots, {report}"
        + (f", {report.with_suffix('.pdf')}" if args.pdf else "")
    )
    return 0
