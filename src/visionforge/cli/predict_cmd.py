"""``visionforge predict``: run a model dir on image files, folders or globs."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionforge.booleans import FALSE_WORDS, TRUE_WORDS, parse_bool

if TYPE_CHECKING:  # numpy is imported when a command runs: `--help` stays fast
    import numpy as np

EXAMPLE = """examples:
  visionforge predict runs/digits/model data/test/ out=preds/
  visionforge predict runs/seg/model "slides/*.png" out=masks/ backend=torch tta=true
Classification writes predictions.csv (file, predicted class, one column per class
probability); segmentation writes <stem>_labels.png (class index per pixel) and
<stem>_overlay.png, plus class_fractions.csv. Segmentation inputs of another size than
the model's training size are never resized: they go through sliding-window inference
at training resolution (the command says so).
Detection writes detections.json (COCO results + images + categories), detections.csv
and <stem>_boxes.png (boxes with score >= score_threshold; default: the threshold stored
in model.json at training time, chosen on the validation split, else 0.5).
keys: out, backend (auto|torch|onnxruntime|openvino), batch, tta (true|false; detection:
  none|flips|d8, true = d8: boxes of the 8 flips/quarter turns fused), score_threshold
  (detection; score= is the same)
"""

KEYS = ("out", "backend", "batch", "tta", "score_threshold", "score")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict on image files/folders/globs with a model dir",
        description="Predict with MODEL_DIR on FILES/FOLDERS/GLOBS and write the results to out=DIR.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_dir", help="model dir (model.json + model.safetensors)")
    parser.add_argument(
        "inputs", nargs="+", help="image files, folders, globs; then key=value options"
    )
    parser.set_defaults(func=run)


def _palette(n: int) -> np.ndarray:
    import numpy as np

    rng = np.random.default_rng(7)
    pal = rng.integers(40, 255, size=(max(n, 1), 3)).astype(np.uint8)
    pal[0] = (0, 0, 0)
    return pal


def _write_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    from visionforge.io import atomic_write_bytes

    png = io.BytesIO()
    Image.fromarray(arr).save(png, "PNG")
    atomic_write_bytes(path, png.getvalue())


def _classify(pred: Any, files: list[Path], out: Path, tta: bool) -> None:
    """predictions.csv: file, predicted class, one probability column per class."""
    import numpy as np

    from visionforge.inference.preprocess import load_image
    from visionforge.io import atomic_write_text
    from visionforge.progress import progress

    probs_all = []
    for i in progress(range(0, len(files), pred.batch_size), "predict"):
        chunk = files[i : i + pred.batch_size]
        probs_all.append(pred.predict([load_image(f) for f in chunk], layout="NHWC", tta=tta))
    probs = np.concatenate(probs_all)
    names = pred.class_names or [str(k) for k in range(probs.shape[1])]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "predicted", *names])
    for f, p in zip(files, probs):
        w.writerow([str(f), names[int(p.argmax())], *[f"{v:.6f}" for v in p]])
    atomic_write_text(out / "predictions.csv", buf.getvalue())
    counts = np.bincount(probs.argmax(1), minlength=len(names))
    print(f"{len(files)} images -> {out / 'predictions.csv'}")
    for n, c in zip(names, counts):
        print(f"  {n:<20} {c}")


def _overlay(img: np.ndarray, labels: np.ndarray, pal: np.ndarray) -> np.ndarray:
    import numpy as np

    base = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
    base = base[..., :3].astype(np.float32)
    if base.max() > 255:
        base = base / base.max() * 255
    return (0.55 * base + 0.45 * pal[np.minimum(labels, len(pal) - 1)]).astype(np.uint8)


def _needs_window(img: np.ndarray, pred: Any) -> bool:
    """A segmentation input not at the training size goes through the sliding window
    (tiles at training resolution, padded when smaller) instead of being resized."""
    return tuple(img.shape[:2]) != tuple(pred.input_shape[1:])


def _window_message(f: Path, img: np.ndarray, pred: Any) -> str:
    th, tw = pred.input_shape[1:]
    return (f"{f.name}: {img.shape[1]}x{img.shape[0]} px is not the model's {tw}x{th} training "
            f"size: sliding-window inference at training resolution ({tw}x{th} tiles, overlap "
            "0.25, Gaussian blending), no resizing; the same for other such inputs")


def _segment(pred: Any, files: list[Path], out: Path, tta: bool) -> None:
    """<stem>_labels.png, <stem>_overlay.png and class_fractions.csv."""
    import numpy as np

    from visionforge.inference.preprocess import load_image
    from visionforge.io import atomic_write_text
    from visionforge.progress import progress

    n_cls = len(pred.class_names or []) or 256
    names = pred.class_names or [str(k) for k in range(n_cls)]
    pal = _palette(n_cls)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", *names])
    total = np.zeros(n_cls, np.int64)
    said = False
    for f in progress(files, "segment"):
        img = load_image(f)
        if _needs_window(img, pred):
            if not said:  # once per run: the inputs differ from the training size
                print(_window_message(f, img, pred))
                said = True
            labels = pred.predict_large(img, layout="NHWC", tta=tta)
        else:
            labels = pred.predict([img], layout="NHWC", tta=tta)[0]
        dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
        _write_png(out / f"{f.stem}_labels.png", labels.astype(dtype))
        _write_png(out / f"{f.stem}_overlay.png", _overlay(img, labels, pal))
        counts = np.bincount(labels.ravel().astype(np.int64), minlength=n_cls)[:n_cls]
        total += counts
        w.writerow([str(f), *[f"{c / labels.size:.6f}" for c in counts]])
    atomic_write_text(out / "class_fractions.csv", buf.getvalue())
    print(f"{len(files)} images -> label maps and overlays in {out}")
    for n, c in zip(names, total):
        print(f"  {n:<20} {100 * c / max(1, total.sum()):.2f}% of pixels")


def _detect(model_dir: str, files: list[Path], out: Path, opts: dict[str, str]) -> int:
    from visionforge.errors import ConfigError
    from visionforge.inference.detection import BoxPredictor, write_detections

    if "score" in opts and "score_threshold" in opts:
        raise ConfigError("give score_threshold= or score= (the same key), not both")
    value = opts.get("score_threshold", opts.get("score"))
    try:
        threshold = None if value is None else float(value)
    except ValueError:
        raise ConfigError(f"score_threshold={value!r}: expected a number in [0, 1]") from None
    tta = opts.get("tta", "none").strip().lower()
    if tta in TRUE_WORDS | FALSE_WORDS:  # tta=true: all eight views; tta=false: none
        tta = "d8" if parse_bool(tta) else "none"
    pred = BoxPredictor(model_dir, score_threshold=threshold, tta=tta)
    results = pred.predict_files(files, batch_size=int(opts.get("batch", 4)))
    write_detections(pred, results, out)
    total = sum(len(d["scores"]) for _, _, d in results)
    source = "" if value is not None else (
        " stored in model.json" if "score_threshold" in pred.meta else " default")
    views = "" if pred.tta == "none" else f", tta={pred.tta}"
    print(f"{len(files)} images -> {total} boxes (score >= {pred.score_threshold}{source}"
          f"{views}) in "
          f"{out}/detections.json, detections.csv and *_boxes.png")
    return 0


def run(args: argparse.Namespace) -> int:
    """Predict with ``args.model_dir`` on the files/folders/globs of ``args.inputs``."""
    from visionforge.cli.options import parse_options
    from visionforge.errors import ConfigError
    from visionforge.inference import Predictor
    from visionforge.inference.files import expand_inputs

    files_args = [a for a in args.inputs if "=" not in a or Path(a).exists()]
    opts = parse_options([a for a in args.inputs if a not in files_args], KEYS, "predict")
    files = expand_inputs(files_args)
    out = Path(opts.get("out", "predictions"))
    out.mkdir(parents=True, exist_ok=True)
    from visionforge.models import read_model_meta

    if read_model_meta(args.model_dir).get("task") == "detection":
        return _detect(args.model_dir, files, out, opts)
    pred = Predictor(
        args.model_dir, backend=opts.get("backend", "auto"), batch_size=int(opts.get("batch", 8))
    )
    try:
        tta = parse_bool(opts.get("tta", "false"))
    except ValueError as exc:
        raise ConfigError(f"tta={opts['tta']!r}: {exc}") from None
    if pred.task in ("classification", "signal"):
        _classify(pred, files, out, tta)
    elif pred.task == "segmentation":
        _segment(pred, files, out, tta)
    else:
        raise ConfigError(
            f"predict supports classification, signal and segmentation; got {pred.task!r}"
        )
    return 0
