"""``visionforge export``: export a model dir to deployment formats, each smoke-tested."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  visionforge export runs/digits/model formats=onnx,torchscript
  visionforge export runs/seg/model formats=all quantize=int8 calibration=data/seg/images \\
      validation=data/seg/val out=exported/
  visionforge export runs/seg/model formats=onnx quantize=int8,int8-nncf \\
      calibration=data/seg/images validation=data/seg/val nncf_scope=all
keys: formats (comma list or all), out, quantize (int8, int8-nncf or both),
      calibration (image folder), nncf_scope (all|conv: where NNCF puts INT8),
      validation (class folders, or images/ + masks/), batch (smoke batch size),
      opset, onnx_exporter (auto|dynamo|torchscript)
"""

KEYS = (
    "formats",
    "out",
    "quantize",
    "calibration",
    "validation",
    "batch",
    "opset",
    "onnx_exporter",
    "nncf_scope",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model dir to ONNX, TorchScript, TensorRT, Core ML, TFLite, ExecuTorch",
        description="Export MODEL_DIR to each format, load it back in its runtime and compare "
        "it with PyTorch; writes export_report.json and prints a table.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_dir", help="model dir (model.json + model.safetensors)")
    parser.add_argument("overrides", nargs="*", help="key=value options, e.g. formats=onnx")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from visionforge.cli.options import parse_options
    from visionforge.export import export_model
    from visionforge.models.model_dir import read_model_meta

    opts = parse_options(args.overrides, KEYS, "export")
    meta = read_model_meta(args.model_dir)
    calibration = validation = None
    if "calibration" in opts:
        from visionforge.inference.files import expand_inputs, load_model_inputs

        calibration = load_model_inputs(expand_inputs([opts["calibration"]]), meta, limit=64)
    if "validation" in opts:
        from visionforge.inference.files import labelled_folder

        validation = labelled_folder(opts["validation"], meta)
    options = {k: opts[k] for k in ("onnx_exporter", "nncf_scope") if k in opts}
    if "opset" in opts:
        options["opset"] = int(opts["opset"])
    report = export_model(
        args.model_dir,
        formats=opts.get("formats"),
        out_dir=opts.get("out"),
        quantize=opts.get("quantize"),
        calibration_data=calibration,
        validation_data=validation,
        batch_size=int(opts.get("batch", 2)),
        options=options,
    )
    print(report.table())
    print(f"\nreport: {report.out_dir}/export_report.json")
    return 0 if report.ok else 1
