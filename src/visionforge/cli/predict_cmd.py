"""``visionforge predict``: run a model dir on image files, folders or globs."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  visionforge predict runs/digits/model data/test/ out=preds/
  visionforge predict runs/seg/model "slides/*.png" out=masks/ backend=torch tta=true
Classification writes predictions.csv (file, predicted class, one column per class
probability); segmentation writes <stem>_labels.png (class index per pixel) and
<stem>_overlay.png, plus class_fractions.csv.
keys: out, backend (auto|torch|onnxruntime), batch, tta (true|false)
"""

KEYS = ("out", "backend", "batch", "tta")


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


def _palette(n: int):
    import numpy as np

    rng = np.random.default_rng(7)
    pal = rng.integers(40, 255, size=(max(n, 1), 3)).astype(np.uint8)
    pal[0] = (0, 0, 0)
    return pal


def run(args: argparse.Namespace) -> int:
    import csv
    import io
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from visionforge.cli.options import parse_options
    from visionforge.inference import Predictor
    from visionforge.inference.files import expand_inputs
    from visionforge.inference.preprocess import load_image
    from visionforge.io import atomic_write_bytes, atomic_write_text
    from visionforge.progress import progress

    files_args = [a for a in args.inputs if "=" not in a or Path(a).exists()]
    opts = parse_options([a for a in args.inputs if a not in files_args], KEYS, "predict")
    files = expand_inputs(files_args)
    out = Path(opts.get("out", "predictions"))
    out.mkdir(parents=True, exist_ok=True)
    pred = Predictor(
        args.model_dir, backend=opts.get("backend", "auto"), batch_size=int(opts.get("batch", 8))
    )
    tta = opts.get("tta", "false").lower() in ("1", "true", "yes")
    names = pred.class_names
    if pred.task in ("classification", "signal"):
        buf = io.StringIO()
        w = csv.writer(buf)
        probs_all = []
        for i in progress(range(0, len(files), pred.batch_size), "predict"):
            chunk = files[i : i + pred.batch_size]
            probs = pred.predict([load_image(f) for f in chunk], layout="NHWC", tta=tta)
            probs_all.append(probs)
        probs = np.concatenate(probs_all)
        names = names or [str(k) for k in range(probs.shape[1])]
        w.writerow(["file", "predicted", *names])
        for f, p in zip(files, probs):
            w.writerow([str(f), names[int(p.argmax())], *[f"{v:.6f}" for v in p]])
        atomic_write_text(out / "predictions.csv", buf.getvalue())
        counts = np.bincount(probs.argmax(1), minlength=len(names))
        print(f"{len(files)} images -> {out / 'predictions.csv'}")
        for n, c in zip(names, counts):
            print(f"  {n:<20} {c}")
        return 0
    if pred.task != "segmentation":
        from visionforge.errors import ConfigError

        raise ConfigError(
            f"predict supports classification, signal and segmentation; got {pred.task!r}"
        )
    n_cls = len(names or []) or 256
    names = names or [str(k) for k in range(n_cls)]
    pal = _palette(n_cls)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", *names])
    total = np.zeros(n_cls, np.int64)
    for f in progress(files, "segment"):
        img = load_image(f)
        labels = pred.predict([img], layout="NHWC", tta=tta)[0]
        png = io.BytesIO()
        Image.fromarray(labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16)).save(
            png, "PNG"
        )
        atomic_write_bytes(out / f"{f.stem}_labels.png", png.getvalue())
        base = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
        base = base[..., :3].astype(np.float32)
        if base.max() > 255:
            base = base / base.max() * 255
        overlay = (0.55 * base + 0.45 * pal[np.minimum(labels, len(pal) - 1)]).astype(np.uint8)
        png = io.BytesIO()
        Image.fromarray(overlay).save(png, "PNG")
        atomic_write_bytes(out / f"{f.stem}_overlay.png", png.getvalue())
        counts = np.bincount(labels.ravel().astype(np.int64), minlength=n_cls)[:n_cls]
        total += counts
        w.writerow([str(f), *[f"{c / labels.size:.6f}" for c in counts]])
    atomic_write_text(out / "class_fractions.csv", buf.getvalue())
    print(f"{len(files)} images -> label maps and overlays in {out}")
    for n, c in zip(names, total):
        print(f"  {n:<20} {100 * c / max(1, total.sum()):.2f}% of pixels")
    return 0
