"""CPU inference throughput: DeepLabV3+ (CODAvision spec, 5 classes) at 512x512.

Times, in one run, images/s for: eager fp32 PyTorch (the baseline), our Predictor
(backend="auto", the backend it verified and picked), ONNX Runtime fp32 and ONNX Runtime
INT8 (static, calibrated), at batch 1 and 4, and prints ratios to eager. Also reports the
INT8 label agreement with fp32 as mIoU (percent) on real images (scikit-image samples).

    python benchmarks/predict_cpu.py [--size 512] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def bench(fn, x, repeats: int) -> float:
    fn(x)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return len(x) / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--calib", type=int, default=8, help="calibration images for INT8")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from visionforge.export.contract import real_sample_inputs
    from visionforge.export.onnx import export_onnx_file, ort_session, run_session
    from visionforge.export.quantize import quantize_onnx, score
    from visionforge.inference import Predictor
    from visionforge.models import create_model, save_model_dir

    tmp = Path(tempfile.mkdtemp(prefix="vf_bench_"))
    torch.manual_seed(0)
    model = create_model("deeplabv3plus_codavision", num_classes=5).eval()
    mdir = save_model_dir(
        model,
        tmp / "model",
        task="segmentation",
        input_size=[3, args.size, args.size],
        class_names=[f"c{i}" for i in range(5)],
        preprocessing={"input_range": [0, 255], "mean": None, "std": None},
    )
    meta = {
        "name": "deeplabv3plus_codavision",
        "input_size": [3, args.size, args.size],
        "preprocessing": {"input_range": [0, 255]},
    }
    x4 = real_sample_inputs(meta, 4)
    calib = real_sample_inputs(meta, args.calib)

    t0 = time.perf_counter()
    pred = Predictor(mdir, backend="auto", batch_size=4)
    print(
        f"Predictor(auto) set-up {time.perf_counter() - t0:.1f}s: backend={pred.backend} "
        f"(timed torch {pred.selection.get('torch_ms', float('nan')):.0f} ms vs onnxruntime "
        f"{pred.selection.get('onnxruntime_ms', float('nan')):.0f} ms per batch of 4)"
    )
    onnx_path = tmp / "model.onnx"
    export_onnx_file(model, x4[:2], onnx_path, output_names=["logits"])
    fp32 = ort_session(onnx_path)
    t0 = time.perf_counter()
    quantize_onnx(onnx_path, tmp / "int8.onnx", "static", calib)
    int8 = ort_session(tmp / "int8.onnx")
    print(
        f"INT8 static quantisation ({args.calib} calibration images): {time.perf_counter() - t0:.1f}s"
    )

    def eager(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x))

    runners = {
        "eager fp32 (baseline)": eager,
        f"Predictor auto [{pred.backend}]": pred.forward,
        "ORT fp32": lambda x: run_session(fp32, x),
        "ORT INT8 static": lambda x: run_session(int8, x),
    }
    print(
        f"\nDeepLabV3+ CODAvision, 5 classes, {args.size}x{args.size}, {args.threads} threads, "
        f"median of {args.repeats}"
    )
    print(f"{'path':<34}{'batch':>6}{'img/s':>10}{'x eager':>9}")
    for bs in (1, 4):
        x = x4[:bs]
        base = None
        results = {}
        for name, fn in runners.items():
            ips = bench(fn, x, args.repeats)
            base = base or ips
            results[name] = ips
            print(f"{name:<34}{bs:>6}{ips:>10.3f}{ips / base:>9.2f}")
        print(
            f"{'INT8 vs ORT fp32':<34}{bs:>6}{'':>10}"
            f"{results['ORT INT8 static'] / results['ORT fp32']:>9.2f}"
        )

    ref = run_session(fp32, x4)[0]
    q = run_session(int8, x4)[0]
    miou_agree = score("segmentation", q, ref.argmax(1), 5)
    print(
        f"\nINT8 vs fp32 on 4 real images: mIoU of INT8 labels against fp32 labels = "
        f"{miou_agree:.2f}% (drop {100 - miou_agree:.2f} points); max |logit diff| "
        f"{np.abs(q - ref).max():.3f}"
    )


if __name__ == "__main__":
    main()
