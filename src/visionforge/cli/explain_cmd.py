"""``visionforge explain MODEL_DIR IMAGES...``: heatmap overlays and a report section."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from visionforge.errors import DataError

EXAMPLE = """example:
  visionforge explain runs/digits/model samples/*.png methods=grad_cam,integrated_gradients
IMAGES are image files or folders of images. options (key=value):
  methods=grad_cam,gradcam++,saliency,smoothgrad,integrated_gradients,attention
    (default grad_cam,saliency; any name registered in visionforge.registry.EXPLAINERS)
  out=DIR (default MODEL_DIR/../explanations)  target=CLASS (index or name; default: prediction)
  device=cpu  alpha=0.5
  box=I (detection models: Grad-CAM of detection I's class score, 0 = highest score;
    default 0; the overlay outlines the box)"""

_KEYS = {"methods": str, "out": str, "target": str, "device": str, "alpha": float, "box": int}
_GRAD_CAM_NAMES = ("grad_cam", "gradcam", "grad-cam")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "explain",
        help="write Grad-CAM / saliency / IG / attention overlays for images",
        description="Explain a model dir's predictions on images.\n\n" + EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model_dir", help="model directory (model.json + model.safetensors)")
    p.add_argument(
        "items", nargs="+", metavar="IMAGES", help="image files/folders, then key=value options"
    )
    p.set_defaults(func=run)


def _expand(paths: list[str]) -> list[Path]:
    from visionforge.data.images import is_image_file, list_images

    files: list[Path] = []
    for s in paths:
        p = Path(s)
        if p.is_dir():
            files.extend(list_images(p))
        elif p.is_file() and is_image_file(p):
            files.append(p)
        else:
            raise DataError(f"{p}: not an image file or folder")
    if not files:
        raise DataError("no images given to explain")
    return files


def _target(value: str | None, class_names: list[str] | None) -> int | None:
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    if class_names and value in class_names:
        return class_names.index(value)
    raise DataError(f"target={value!r} is neither a class index nor one of {class_names}")


def _explain_images(
    model: Any, files: list[Path], methods: list[str], target: int | None, opts: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[Path]]:
    """Explain each image (``opts``: ``out``, ``alpha``, ``device``); returns one record per
    image and the overlay paths written."""
    from visionforge.data.images import load_image
    from visionforge.data.transforms import eval_transforms
    from visionforge.explain import Explainer, heatmaps, save_overlay
    from visionforge.models.spec import model_contract, model_meta

    # model.json's contract: value range, channel order (BGR models get BGR), mean/std, size.
    contract = model_contract(model)
    class_names = model_meta(model).get("class_names")
    size = contract.input_size
    channels = int(size[0]) if size and len(size) >= 3 else 3
    resize = eval_transforms(image_size=list(size[-2:]) if size and len(size) >= 3 else None)
    explainer = Explainer(model, methods)
    records: list[dict[str, Any]] = []
    overlays: list[Path] = []
    for f in files:
        img = resize({"image": load_image(f, channels)})["image"].float()
        result = explainer.explain(
            contract.apply(img)[None].to(opts["device"]), target_class=target
        )
        cls = int(result["target_class"][0])
        rec = {
            "image": str(f),
            "target_class": cls,
            "target_name": class_names[cls] if class_names and cls < len(class_names) else str(cls),
            "overlays": {},
            "skipped": result["skipped"],
        }
        maps = {name: heat[0].cpu() for name, heat in heatmaps(result).items()}
        for name, heat in maps.items():
            path = save_overlay(
                opts["out"] / f"{f.stem}_{name}.png", img, heat, alpha=opts["alpha"]
            )
            rec["overlays"][name] = str(path)
        if maps:  # the report shows the original beside each overlay, with a colour bar
            from visionforge.evaluation.plots import plot_explanation

            rec["figure"] = str(
                plot_explanation(
                    img,
                    maps,
                    opts["out"] / "figures" / f"{f.stem}_explained.png",
                    title=f"{f.name}: class {rec['target_name']}",
                    alpha=opts["alpha"],
                )
            )
            overlays.append(Path(rec["figure"]))
        records.append(rec)
    return records, overlays


def _explain_detections(
    model: Any, files: list[Path], box: int, class_names: list[str] | None, opts: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[Path]]:
    """Grad-CAM of detection ``box`` in each image (:class:`~visionforge.explain.detection.
    BoxGradCAM`); returns one record per image and the figures written."""
    from visionforge.data.images import load_image
    from visionforge.evaluation.plots import plot_explanation
    from visionforge.explain import save_overlay
    from visionforge.explain.detection import BoxGradCAM

    cam = BoxGradCAM(model)
    records: list[dict[str, Any]] = []
    figures: list[Path] = []
    for f in files:
        img = load_image(f, channels=3)
        try:
            r = cam.attribute(img.to(opts["device"]), box=box)
        except DataError as exc:
            raise DataError(f"{f}: {exc}") from None
        name = (class_names[r.label - 1] if class_names and 0 < r.label <= len(class_names)
                else str(r.label))
        overlay = save_overlay(opts["out"] / f"{f.stem}_box{box}_grad_cam.png", img,
                               r.heatmap, alpha=opts["alpha"], boxes=[r.box])
        figure = plot_explanation(
            img, {f"box {box} grad_cam": r.heatmap},
            opts["out"] / "figures" / f"{f.stem}_box{box}_explained.png",
            title=f"{f.name}: box {box} ({name}, score {r.score:.2f})", alpha=opts["alpha"])
        figures.append(figure)
        records.append({
            "image": str(f), "box_index": box, "box": [round(v, 2) for v in r.box],
            "score": round(r.score, 6), "label": r.label, "target_name": name,
            "num_detections": r.num_detections, "overlays": {"grad_cam": str(overlay)},
            "figure": str(figure), "skipped": {},
        })
    return records, figures


def run(args: argparse.Namespace) -> int:
    from visionforge.cli.options import parse_options
    from visionforge.evaluation.report import build_run_report, render_report
    from visionforge.io import atomic_write_json
    from visionforge.models import load_model, read_model_meta

    paths = [s for s in args.items if "=" not in s or Path(s).exists()]
    opts = parse_options([s for s in args.items if s not in paths], _KEYS, "explain")
    model_dir = Path(args.model_dir)
    meta = read_model_meta(model_dir)
    if meta.get("task") == "signal":
        raise DataError(
            "visionforge explain works on image models; this model dir is a signal model"
        )
    detection = meta.get("task") == "detection"
    if "box" in opts and not detection:
        raise DataError(f"box= applies to detection models; {model_dir} is a "
                        f"{meta.get('task')} model (use target=CLASS)")
    if detection and "target" in opts:
        raise DataError("target= does not apply to a detection model: choose a detection "
                        "with box=I (0 = the highest score); its class is explained")
    files = _expand(paths)
    methods = [m.strip() for m in opts.get("methods", "grad_cam,saliency").split(",") if m.strip()]
    if detection:
        other = [m for m in methods if m not in _GRAD_CAM_NAMES] if "methods" in opts else []
        if other:
            raise DataError(f"methods={','.join(other)}: a detection model is explained by "
                            "Grad-CAM of one box (box=I); leave methods= out")
        methods = ["grad_cam"]
    out = Path(opts.get("out") or model_dir.resolve().parent / "explanations")
    device = opts.get("device", "cpu")
    model = load_model(model_dir, device=device)
    run_opts = {"out": out, "alpha": opts.get("alpha", 0.5), "device": device}
    if detection:
        records, overlays = _explain_detections(
            model, files, int(opts.get("box", 0)), meta.get("class_names"), run_opts)
    else:
        target = _target(opts.get("target"), meta.get("class_names"))
        records, overlays = _explain_images(model, files, methods, target, run_opts)
    skipped = {k: v for r in records for k, v in r["skipped"].items()}
    atomic_write_json(
        out / "explanations.json",
        {"model_dir": str(model_dir), "methods": methods, "skipped": skipped, "images": records},
    )
    notes = [f"{r['image']}: explained " + (
        f"box {r['box_index']} {r['box']} ({r['target_name']}, score {r['score']:.2f})"
        if "box" in r else f"class {r['target_name']}") for r in records]
    notes += [f"{m}: skipped ({why})" for m, why in skipped.items()]
    report = render_report(
        out / "report.html",
        title=f"visionforge explanations: {meta['name']}",
        config={"model_dir": str(model_dir), "methods": ", ".join(methods)},
        explanations=overlays,
        explanation_notes=notes,
        run_dir=out,
    )
    run_dir = out.parent
    if out.name == "explanations" and (run_dir / "report.html").is_file():
        build_run_report(run_dir)  # add the explanations section to the run's own report
    for m, why in skipped.items():
        print(f"skipped {m}: {why}")
    print(f"wrote {len(overlays)} overlays to {out} and {report}")
    return 0
