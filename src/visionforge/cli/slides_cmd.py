"""``visionforge slides``: training tiles from annotated slides, class calibration, slide
segmentation, PDF report.

The work is done by :func:`visionforge.slides.tiles.make_slide_tiles`,
:func:`visionforge.slides.calibrate.calibrate_model`,
:func:`visionforge.slides.segment.segment_slides` and
:func:`visionforge.slides.report.write_slide_report`, imported when a subcommand runs so that
``visionforge --help`` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from visionforge.booleans import parse_bool

TILES_EXAMPLE = """examples:
  visionforge slides tiles slides/*.svs out=tiles/ class_map=classes.yaml mpp=2 \\
      mode=modern tile_size=256 tile_count=200 holdout=right:0.25 seed=0
  visionforge slides tiles a.svs b.ndpi out=tiles/ class_map=classes.yaml downsample=4 mode=legacy fmt=tif
Annotations are read beside each slide (same stem, .xml then .geojson) unless annotations= names
one file (one slide) or a folder holding <stem>.xml / <stem>.geojson.
keys: out (required), class_map (required), annotations, mpp, downsample, mode
(modern|legacy|simple), tile_size, tile_count, fmt (png|tif|jpg), rotate (true|false), seed,
holdout (x0,y0,w,h in level-0 px or SIDE:FRACTION, e.g. right:0.25), val_fraction
Then train on it: visionforge train data.root=tiles/ ...
"""

CALIBRATE_EXAMPLE = """examples:
  visionforge slides calibrate runs/tissue/model tiles/
  visionforge slides calibrate runs/tissue/model tiles/ splits=val iterations=100
Runs the model over the annotated train/val tiles of `visionforge slides tiles` (never the
holdout) and fits one logit offset per class so that the predicted class frequencies match the
annotated ones; writes MODEL_DIR/calibration.json (offsets, tiles folder, class counts before and
after), which `slides segment` applies (class_bias=auto, the default).
keys: splits (train,val | train | val), iterations, tol, max_pixels, tile_batch, backend
"""

SEGMENT_EXAMPLE = """examples:
  visionforge slides segment runs/tissue/model slides/*.svs out=maps/
  visionforge slides segment runs/tissue/model a.svs out=maps/ mpp=2 tile_batch=16 tissue_cutoff=0.08
  visionforge slides segment runs/tissue/model a.svs out=maps/ class_bias=none
Per slide, out/<stem>/ gets labels.tif, overlay.png, tissue.png, composition.csv, objects.csv and
slide.json; out/composition.csv and out/summary.json cover the batch. Finished slides are skipped
when the command is run again (resume=false redoes them).
keys: out (required), mpp, tile_batch, overlap, tissue (true|false), tissue_mode (he|grayscale),
tissue_cutoff, tissue_method (triangle|otsu), min_object_px, resume (true|false), devices, num_nodes, strategy, class_bias
(auto = MODEL_DIR/calibration.json when present | none | one number per class, e.g. 0,0.4,-0.1:
offsets added to the logits before the argmax)
"""

REPORT_EXAMPLE = """examples:
  visionforge slides report maps/ regions=tiles/ annotations=slides/ class_map=classes.yaml
  visionforge slides report maps/ out=maps/report.pdf model_dir=runs/tissue/model
Writes a PDF (default SEGMENT_DIR/report.pdf): confusion matrix on the held-out regions, colour
legend, annotation-check and classification-check pages, composition tables and runtimes.
keys: out, model_dir, annotations, class_map, regions (a tiles folder whose tiles.json records
the holdout, or a JSON file {slide stem: [x0, y0, w, h]})
"""

TILES_KEYS = ("out", "class_map", "annotations", "mpp", "downsample", "mode", "tile_size",
              "tile_count", "fmt", "rotate", "seed", "holdout", "val_fraction")
SEGMENT_KEYS = ("out", "mpp", "tile_batch", "overlap", "tissue", "tissue_mode", "tissue_cutoff", "tissue_method",
                "min_object_px", "resume", "devices", "num_nodes", "strategy", "class_bias")
CALIBRATE_KEYS = ("splits", "iterations", "tol", "max_pixels", "tile_batch", "backend")
REPORT_KEYS = ("out", "model_dir", "annotations", "class_map", "regions")


def _bool(value: str) -> bool:
    return parse_bool(value)


_bool.__name__ = "boolean (true|false)"


def _add(sub: Any, name: str, help_: str, description: str, example: str,
         positionals: list[tuple[str, str, Any]], func: Callable[[argparse.Namespace], int]) -> None:
    parser = sub.add_parser(name, help=help_, description=description, epilog=example,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    for dest, text, nargs in positionals:
        parser.add_argument(dest, help=text, nargs=nargs)
    parser.set_defaults(func=func)


def register(subparsers: Any) -> None:
    """Add ``slides`` with its ``tiles``, ``calibrate``, ``segment`` and ``report`` subcommands."""
    parser = subparsers.add_parser(
        "slides",
        help="whole-slide images: training tiles, calibration, slide segmentation, PDF report",
        description=("Whole-slide images (.svs, .ndpi, pyramidal .tif, large PNG/JPEG) with Aperio "
                     "XML or QuPath GeoJSON annotations.\n\n" + TILES_EXAMPLE + "\n"
                     + CALIBRATE_EXAMPLE + "\n" + SEGMENT_EXAMPLE + "\n" + REPORT_EXAMPLE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="slides_command", metavar="ACTION")
    _add(sub, "tiles", "training tiles (images/ + masks/) from annotated slides",
         "Write a segmentation dataset out=DIR/{train,val}/{images,masks} from SLIDEs and their "
         "annotations.", TILES_EXAMPLE,
         [("inputs", "slide files, then key=value options", "+")], run_tiles)
    _add(sub, "calibrate", "fit per-class logit offsets on the training tiles",
         "Fit per-class logit offsets of MODEL_DIR on the annotated tiles in TILES_DIR so that the "
         "predicted class frequencies match the annotations; writes MODEL_DIR/calibration.json.",
         CALIBRATE_EXAMPLE,
         [("model_dir", "model dir (model.json + weights)", None),
          ("tiles_dir", "out= folder of `visionforge slides tiles`", None),
          ("inputs", "key=value options", "*")], run_calibrate)
    _add(sub, "segment", "segment whole slides with a trained model",
         "Segment each SLIDE with MODEL_DIR, tile by tile at the model's training resolution.",
         SEGMENT_EXAMPLE,
         [("model_dir", "model dir (model.json + weights)", None),
          ("inputs", "slide files, then key=value options", "+")], run_segment)
    _add(sub, "report", "the evaluation PDF of a segmentation run",
         "Write the evaluation PDF of the segmentation run in SEGMENT_DIR.", REPORT_EXAMPLE,
         [("segment_dir", "out= folder of `visionforge slides segment`", None),
          ("inputs", "key=value options", "*")], run_report)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _split(inputs: list[str], keys: Any, command: str) -> tuple[list[Path], dict[str, str]]:
    """Positional paths and the ``key=value`` options among ``inputs``."""
    from visionforge.cli.options import parse_options

    paths = [a for a in inputs if "=" not in a or Path(a).exists()]
    opts = parse_options([a for a in inputs if a not in paths], keys, command)
    return [Path(p) for p in paths], opts


def _need(opts: dict[str, Any], key: str, command: str, example: str) -> Any:
    from visionforge.errors import ConfigError

    if key not in opts:
        raise ConfigError(f"{command}: {key}= is required, e.g. {example}")
    return opts[key]


def _annotations_arg(value: str | None, slides: list[Path]) -> Any:
    """``annotations=``: a file (one slide) or a folder of ``<stem>.xml``/``.geojson``."""
    if value is None:
        return None
    p = Path(value)
    if p.is_dir():
        found = {}
        for s in slides:
            for suffix in (".xml", ".geojson"):
                if (p / f"{s.stem}{suffix}").is_file():
                    found[s.stem] = p / f"{s.stem}{suffix}"
                    break
        return found
    return p


def run_tiles(args: argparse.Namespace) -> int:
    """``visionforge slides tiles SLIDE... out=DIR class_map=YAML key=value...``"""
    from visionforge.errors import ConfigError
    from visionforge.slides.tiles import make_slide_tiles

    types = {k: str for k in TILES_KEYS} | {"mpp": float, "downsample": float, "tile_size": int,
                                             "tile_count": int, "rotate": _bool, "seed": int,
                                             "val_fraction": float}
    slides, opts = _split(args.inputs, types, "slides tiles")
    if not slides:
        raise ConfigError("slides tiles: give at least one slide file")
    out = _need(opts, "out", "slides tiles", "out=tiles/")
    class_map = _need(opts, "class_map", "slides tiles", "class_map=classes.yaml")
    kwargs = {k: opts[k] for k in ("mpp", "downsample", "mode", "tile_size", "tile_count", "fmt",
                                   "rotate", "seed", "holdout", "val_fraction") if k in opts}
    result = make_slide_tiles(slides, out, annotations=_annotations_arg(opts.get("annotations"), slides),
                              class_map=class_map, **kwargs)
    mpp = f"{result.mpp:.4g} µm/px" if result.mpp else f"downsample {result.downsample:.4g}"
    print(f"wrote {result.num_tiles['train']} train + {result.num_tiles['val']} val tiles "
          f"({result.mode}, {result.tile_size} px, {mpp}) to {result.out_dir}")
    for note in result.notes:
        print(f"note: {note}")
    for s in result.skipped:
        print(f"skipped {s['slide']}: {s['reason']}")
    print(f"manifest: {result.manifest}; settings: {result.tiles_json}")
    return 1 if result.skipped else 0


def run_calibrate(args: argparse.Namespace) -> int:
    """``visionforge slides calibrate MODEL_DIR TILES_DIR key=value...``"""
    from visionforge.slides.calibrate import CALIBRATION_FILE, calibrate_model

    types = {k: str for k in CALIBRATE_KEYS} | {"iterations": int, "tol": float,
                                                 "max_pixels": int, "tile_batch": int}
    extra, opts = _split(args.inputs, types, "slides calibrate")
    if extra:
        from visionforge.errors import ConfigError

        raise ConfigError(f"slides calibrate: unexpected argument {str(extra[0])!r}; give "
                          "MODEL_DIR TILES_DIR then key=value options")
    rec = calibrate_model(args.model_dir, args.tiles_dir, **opts)
    counts, names = rec["counts"], rec["class_names"]

    def pct(which: str) -> str:
        total = max(1, sum(counts[which].values()))
        return ", ".join(f"{c} {100 * counts[which][c] / total:.2f}" for c in names)

    print(f"{rec['pixels']} annotated pixels of {rec['tiles']} tiles ({','.join(rec['splits'])})")
    print(f"class %  annotated: {pct('annotated')}")
    print(f"class %  before:    {pct('before')}")
    print(f"class %  after:     {pct('after')}  ({rec['iterations']} iterations)")
    print("class_bias: " + ", ".join(f"{c} {b:+.4f}" for c, b in zip(names, rec["class_bias"],
                                                                      strict=True)))
    print(f"wrote {Path(args.model_dir) / CALIBRATION_FILE}; `slides segment` applies it "
          "(class_bias=auto)")
    return 0


def run_segment(args: argparse.Namespace) -> int:
    """``visionforge slides segment MODEL_DIR SLIDE... out=DIR key=value...``"""
    from visionforge.errors import ConfigError
    from visionforge.slides.segment import segment_slides

    types = {k: str for k in SEGMENT_KEYS} | {
        "mpp": float, "tile_batch": int, "overlap": float, "tissue": _bool, "tissue_cutoff": float,
        "min_object_px": int, "resume": _bool, "devices": int, "num_nodes": int}
    slides, opts = _split(args.inputs, types, "slides segment")
    if not slides:
        raise ConfigError("slides segment: give at least one slide file after MODEL_DIR")
    out = _need(opts, "out", "slides segment", "out=maps/")
    kwargs = {k: v for k, v in opts.items() if k != "out"}
    kwargs["class_bias"] = _class_bias(args.model_dir, opts.get("class_bias", "auto"))
    results = segment_slides(args.model_dir, slides, out, **kwargs)
    failed = 0
    for r in results:
        status = getattr(r, "status", "ok")
        reason = getattr(r, "reason", None)
        failed += status == "failed"
        print(f"{getattr(r, 'slide', '?')}: {status}" + (f" ({reason})" if reason else ""))
    print(f"results in {out}")
    return 1 if failed else 0


def _class_bias(model_dir: str, value: str) -> Any:
    """Resolve ``class_bias=`` and say in one line which offsets are used."""
    from visionforge.models.model_dir import read_model_meta
    from visionforge.slides.calibrate import resolve_class_bias

    names = read_model_meta(Path(model_dir)).get("class_names") or []
    bias = resolve_class_bias(value, model_dir, names)
    if bias.values is not None:
        offsets = ", ".join(f"{c} {b:+.4f}" for c, b in zip(names, bias.values, strict=True))
        print(f"class_bias={value}: logit offsets {offsets} (from {bias.source})")
    elif str(value).strip().lower() == "auto":
        print("class_bias=auto: no calibration.json in the model dir, no offsets")
    return bias


def run_report(args: argparse.Namespace) -> int:
    """``visionforge slides report SEGMENT_DIR key=value...``"""
    import json

    from visionforge.errors import ConfigError
    from visionforge.slides.report import write_slide_report

    _, opts = _split(args.inputs, REPORT_KEYS, "slides report")
    regions: Any = opts.get("regions")
    if regions is not None and Path(regions).is_file():
        try:
            regions = json.loads(Path(regions).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"regions={opts['regions']}: not valid JSON ({exc})") from None
    elif regions is not None:
        regions = Path(regions)
    path = write_slide_report(args.segment_dir, opts.get("out"), model_dir=opts.get("model_dir"),
                              annotations=opts.get("annotations"), class_map=opts.get("class_map"),
                              regions=regions)
    print(f"wrote {path}")
    return 0
