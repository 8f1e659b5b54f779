"""``visionforge evaluate RUN_DIR|MODEL_DIR [DATA] [split=...]``: metrics, plots and a report.

``split=test`` (or val/train) evaluates the part of the run's data that its ``splits.csv``
assigned to that split; a ``DATA`` folder is checked against the run's training split and a
leakage warning is printed when they overlap. Each evaluation gets a new folder
(``evaluation``, ``evaluation2``, ...).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from visionforge.errors import DataError

EXAMPLE = """examples:
  visionforge evaluate runs/classification/digits split=test    # the run's own test split
  visionforge evaluate runs/digits/model data/digits_test out=runs/digits/eval --pdf
DATA is a classification folder (DATA/<class>/*.png, or DATA/<split>/<class>/ with split=)
or a segmentation folder holding DATA/images and DATA/masks (masks paired by file stem).
Without DATA, split= reads the run's splits.csv and config.yaml (the data it trained on).
Images of the run's training split in DATA trigger a leakage warning.
options (key=value): split=train|val|test out=DIR (default RUN_DIR/evaluation; an existing
  folder is never overwritten: evaluation2, evaluation3, ...) batch_size=16 device=cpu
  ignore_index=N num_samples=8"""

_KEYS = {"out": str, "batch_size": int, "device": str, "ignore_index": int, "num_samples": int,
         "split": str}
_SPLITS = ("train", "val", "test")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a saved model dir on a data folder (metrics, plots, report)",
        description="Evaluate a model dir and write metrics.json, plots/*.png and report.html.\n\n"
        + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model_dir", help="run dir (RUN_DIR/model) or model directory "
                   "(model.json + model.safetensors)")
    p.add_argument("data", nargs="?", help="classification folder or folder with images/ and "
                   "masks/ (optional with split=: the run's own data)")
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


def _seg_dirs(data: Path, split: str | None) -> tuple[Path, Path]:
    for base in ([data / split] if split else []) + [data]:
        if (base / "images").is_dir() and (base / "masks").is_dir():
            return base / "images", base / "masks"
    raise DataError(f"{data}: expected {data}/images and {data}/masks"
                    + (f" (or {data}/{split}/images and masks)" if split else ""))


def _segmentation(data: Path, meta: dict[str, Any], channels: int, split: str | None,
                  manifest: list[dict[str, Any]] | None) -> Any:
    """Pairs under ``data`` (or ``data/<split>``); with a manifest, only ``split``'s images."""
    from visionforge.data.segmentation import SegmentationDataset

    images, masks = _seg_dirs(data, split)
    ds = SegmentationDataset(images, masks, model_transform(meta, "segmentation"),
                             num_classes=meta.get("num_classes"), channels=channels)
    if manifest is not None and split and images.parent == data:
        names = {Path(r["path"]).name for r in manifest if r.get("split") == split}
        ds.samples = [s for s in ds.samples if Path(s[0]).name in names]
        if not ds.samples:
            raise DataError(f"{data}: no {split!r} images in the run's splits.csv")
    return ds


def build_dataset(data: Path, meta: dict[str, Any], *, split: str | None = None,
                  manifest: list[dict[str, Any]] | None = None
                  ) -> tuple[Any, str, dict[str, Any]]:
    """Dataset for ``data`` matching the model's task; returns (dataset, task, summary).

    ``split`` picks ``data/<split>/`` or, with ``manifest`` (a run's ``splits.csv`` records),
    that split's rows.
    """
    task = meta.get("task") or "classification"
    size = meta.get("input_size")
    channels = int(size[0]) if size and len(size) >= 3 else 3
    if not data.is_dir():
        raise DataError(f"{data}: data folder not found")
    where = f"{data}" + (f" [{split}]" if split else "")
    seg_layout = any((b / "images").is_dir() and (b / "masks").is_dir()
                     for b in (data, data / "train"))
    if seg_layout:
        if task not in ("segmentation", "multitask"):
            raise DataError(f"{data} holds images/ and masks/ but the model's task is {task!r}")
        ds = _segmentation(data, meta, channels, split, manifest)
        return ds, "segmentation", {"root": where, "layout": "images/ + masks/",
                                    "samples": len(ds)}
    if task not in ("classification",):
        raise DataError(
            f"{data}: a {task} model needs a folder with images/ and masks/ sub-folders"
            if task == "segmentation"
            else f"{data}: evaluating {task!r} models from the CLI is "
            "not supported; use visionforge.evaluation.Evaluator in Python"
        )
    from visionforge.data.classification import ClassificationDataset

    ds = ClassificationDataset(
        data, split, transform=model_transform(meta, "classification"), manifest=manifest,
        classes=meta.get("class_names"), channels=channels,
    )
    return ds, "classification", {
        "root": where, "layout": "class folders", "samples": len(ds),
        "classes": ", ".join(meta.get("class_names") or []),
    }


def locate(path: Path) -> tuple[Path, Path | None]:
    """``(model dir, run dir or None)`` of a run dir or a model dir."""
    if (path / "model.json").is_file():
        parent = path.resolve().parent
        is_run = (parent / "splits.csv").is_file() or (parent / "config.yaml").is_file()
        return path, parent if is_run else None
    if (path / "model" / "model.json").is_file():
        return path / "model", path
    raise DataError(f"{path}: neither a model dir (model.json) nor a run dir (model/model.json); "
                    "pass runs/<task>/<name> or its model/ folder")


def _run_data(run_dir: Path | None) -> tuple[Path | None, list[dict[str, Any]] | None]:
    """The data root the run trained on (from its config.yaml) and its splits.csv records."""
    from visionforge.data.splits import read_manifest

    if run_dir is None:
        return None, None
    manifest = read_manifest(run_dir / "splits.csv") if (run_dir / "splits.csv").is_file() else None
    root = None
    if (run_dir / "config.yaml").is_file():
        from omegaconf import OmegaConf

        dc = OmegaConf.load(run_dir / "config.yaml").get("data", {})
        given = dc.get("root") or (Path(dc["images_dir"]).parent if dc.get("images_dir") else None)
        root = Path(given) if given else None
    return root, manifest


def leakage_warning(ds: Any, root: Path | None, manifest: list[dict[str, Any]] | None,
                    run_dir: Path | None) -> str | None:
    """A warning when ``ds`` holds images of the run's training split, else ``None``.

    Classification rows are paths under the run's data root; segmentation rows are image
    file names, so those compare by name inside the same images folder.
    """
    if not manifest:
        return None
    train = [r for r in manifest if r.get("split") == "train"]
    keys = set()
    for rec in train:
        path = Path(rec["path"])
        keys.add(str((root / path if root is not None and not path.is_absolute() else path)
                     .resolve()))
    paths = [Path(s[0]) for s in getattr(ds, "samples", [])]
    if paths and "label" in train[0] and not str(train[0]["label"]):  # segmentation names
        images = {Path(k).name for k in keys}
        hits = [p for p in paths if p.name in images]
    else:
        hits = [p for p in paths if str(p.resolve()) in keys]
    if not hits:
        return None
    return (f"leakage: {len(hits)} of {len(paths)} images were in the training split of "
            f"{run_dir} (splits.csv), so these scores overstate how the model does on new "
            f"images; evaluate {run_dir} split=test")


def _inputs(args: argparse.Namespace) -> tuple[dict[str, Any], Path | None]:
    """Options and the DATA folder (``evaluate RUN split=test`` has no DATA)."""
    from visionforge.cli.options import parse_options

    items, data = list(args.overrides), args.data
    if data is not None and "=" in data and not Path(data).exists():
        items, data = [data, *items], None
    opts = parse_options(items, _KEYS, "evaluate")
    if opts.get("split") not in (None, *_SPLITS):
        raise DataError(f"evaluate: split={opts['split']!r}; choose one of {', '.join(_SPLITS)}")
    if data is None and "split" not in opts:
        raise DataError("evaluate: give a DATA folder or split=test (the run's own test split)")
    return opts, Path(data) if data is not None else None


def _dataset(data: Path | None, split: str | None, meta: dict[str, Any],
             run_dir: Path | None) -> tuple[Any, str, dict[str, Any], str | None]:
    """The dataset to score, its task and summary, and a leakage warning (or None)."""
    root, manifest = _run_data(run_dir)
    if data is None:  # the run's own split
        if root is None:
            raise DataError(f"split={split}: no run config.yaml next to the model dir; give "
                            "DATA or pass the run dir (runs/<task>/<name>)")
        ds, task, summary = build_dataset(root, meta, split=split, manifest=manifest)
    else:
        ds, task, summary = build_dataset(data, meta, split=split)
    warning = leakage_warning(ds, root, manifest, run_dir)
    return ds, task, summary, warning


def run(args: argparse.Namespace) -> int:
    import time

    from torch.utils.data import DataLoader

    from visionforge.evaluation import Evaluator
    from visionforge.evaluation.report import render_report
    from visionforge.models import load_model, read_model_meta
    from visionforge.workflows.run_dir import fresh_dir

    opts, data = _inputs(args)
    model_dir, run_dir = locate(Path(args.model_dir))
    meta = read_model_meta(model_dir)
    ds, task, summary, warning = _dataset(data, opts.get("split"), meta, run_dir)
    wanted = Path(opts.get("out") or (run_dir or model_dir.resolve().parent) / "evaluation")
    out = fresh_dir(wanted.parent, wanted.name)  # never overwrite an earlier evaluation
    device = opts.get("device", "cpu")
    t0 = time.perf_counter()
    model = load_model(model_dir, device=device)
    load_s = time.perf_counter() - t0
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
    if opts.get("split"):
        metrics = {"split": opts["split"], **metrics}
    if warning:
        metrics["warnings"] = [warning]
    ev.metrics = metrics
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
    if warning:
        print(f"warning: {warning}")
    head = metrics.get("classification", metrics) if task != "segmentation" else metrics
    key = "mean_iou" if task == "segmentation" else "accuracy"
    print(f"{key}: {head.get(key, float('nan')):.4f}  ({summary['samples']} samples)")
    print(
        f"wrote {out / 'metrics.json'}, {len(written) - 1} plots, {report}"
        + (f", {report.with_suffix('.pdf')}" if args.pdf else "")
    )
    return 0
