"""CPU inference: DeepLabV3+ (CODAvision spec) end-to-end Predictor img/s per backend vs eager.

A thin wrapper around ``visionforge export quantize=int8,int8-nncf`` and ``visionforge
benchmark``:
it makes (or takes, ``--model-dir``) a model dir, quantises it with the export command's
own code (so the INT8 file timed here is the file users get, with the accuracy drop that
export records in ``int8.json``), then times every backend with
:func:`visionforge.inference.benchmark.run_benchmark`: calls interleaved across backends,
median of ``--calls``, ratios to eager fp32 PyTorch. ``auto`` is what ``Predictor()``
picks on this machine.

    python benchmarks/predict_cpu.py [--size 512] [--batch 1] [--calls 3] [--threads N]
        [--model-dir DIR --calibration FOLDER --validation FOLDER] [--nncf-scope all|conv]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

BACKENDS = (
    "eager",
    "torch",
    "onnxruntime",
    "openvino",
    "onnxruntime-int8-static",
    "openvino-int8-static",
    "openvino-int8-nncf",
    "auto",
)


def make_model_dir(size: int, root: Path) -> Path:
    import torch

    from visionforge.models import create_model, save_model_dir

    torch.manual_seed(0)
    return save_model_dir(
        create_model("deeplabv3plus_codavision", num_classes=5).eval(),
        root / "model",
        task="segmentation",
        input_size=[3, size, size],
        class_names=[f"c{i}" for i in range(5)],
        preprocessing={"input_range": [0, 255], "mean": None, "std": None},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", default="1", help="comma list of batch sizes")
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--calib", type=int, default=8, help="calibration images (made-up model)")
    ap.add_argument("--model-dir", default=None, help="a trained model dir (default: made up)")
    ap.add_argument("--calibration", default=None, help="image folder for INT8 calibration")
    ap.add_argument("--validation", default=None, help="images/ + masks/ for the mIoU drop")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--nncf-scope", default=None, help="all|conv (default: export's default)")
    ap.add_argument("--skip-export", action="store_true", help="time the files already made")
    args = ap.parse_args()

    from visionforge.export import export_model
    from visionforge.export.contract import real_sample_inputs
    from visionforge.inference.benchmark import run_benchmark
    from visionforge.inference.files import expand_inputs, labelled_folder, load_model_inputs
    from visionforge.models.model_dir import read_model_meta

    if args.model_dir:
        mdir = Path(args.model_dir)
    else:
        mdir = make_model_dir(args.size, Path(tempfile.mkdtemp(prefix="vf_bench_")))
    meta = read_model_meta(mdir)
    if args.calibration:
        calib = load_model_inputs(expand_inputs([args.calibration]), meta, limit=64)
    else:  # real photographs in the model's input range (not normalised)
        raw = {"input_size": meta["input_size"], "preprocessing": {"input_range": [0, 255]}}
        calib = real_sample_inputs(raw, args.calib)
    validation = labelled_folder(args.validation, meta) if args.validation else None
    # the code path of `visionforge export MODEL_DIR quantize=int8,int8-nncf calibration=...`
    options = {"int8_modes": "static"}
    if args.nncf_scope:
        options["nncf_scope"] = args.nncf_scope
    if not args.skip_export:
        report = export_model(
            mdir,
            formats="onnx",
            quantize="int8,int8-nncf",
            calibration_data=calib,
            validation_data=validation,
            options=options,
        )
        print(report.table())
    record = json.loads((mdir / "int8.json").read_text()) if (mdir / "int8.json").is_file() else {}
    for e in record.get("models", []):
        print(f"int8.json: {e['name']} {e['metric']} drop {e['drop']:.2f} ({e['basis']})")
    bench = run_benchmark(
        mdir,
        backends=[b for b in args.backends.split(",") if b],
        batches=[int(b) for b in args.batch.split(",")],
        image_size=(args.size, args.size),
        calls=args.calls,
        threads=args.threads,
    )
    m = bench.machine
    print(
        f"\nDeepLabV3+ CODAvision {args.size}x{args.size}, {m['cpu']} ({', '.join(m['isa'])}), "
        f"{m['threads']} threads, end-to-end Predictor.predict, median of {args.calls} "
        "interleaved calls"
    )
    print(bench.table())
    for batch in sorted({r.batch for r in bench.rows}):
        rows = {r.backend: r for r in bench.rows if r.batch == batch}
        for q, v in (("onnxruntime", "static"), ("openvino", "static"), ("openvino", "nncf")):
            if q in rows and f"{q}-int8-{v}" in rows:
                ratio = rows[f"{q}-int8-{v}"].img_per_s / rows[q].img_per_s
                print(f"batch {batch}: {q} INT8 {v} / {q} fp32 = {ratio:.2f}x")
        if "auto" in rows:
            print(f"batch {batch}: auto ran {rows['auto'].detail}")


if __name__ == "__main__":
    main()
