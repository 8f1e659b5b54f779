"""Does the INT8 file depend on the path that made it? (issue 17: 1.41x vs 3.24x)

Makes DeepLabV3+ (CODAvision spec, random weights) at ``SIZE``; quantises it the way the old
``predict_cpu.py`` did (path A: ``export_onnx_file`` + ``quantize_onnx`` directly) and the
way ``visionforge export quantize=int8`` does (path B: ``export_model``); prints each file's
op histogram and size, then times every file at batch 1 with 2 threads (and A's files with
1 thread), calls interleaved, median of 5, ratios to A's fp32 session.

    python benchmarks/int8_which_file.py [SIZE]
"""

from __future__ import annotations

import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    import onnx
    import torch

    from visionforge.export import export_model
    from visionforge.export.contract import real_sample_inputs
    from visionforge.export.onnx import export_onnx_file, ort_session, run_session
    from visionforge.export.quantize import quantize_onnx
    from visionforge.models import create_model, save_model_dir

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    tmp = Path(tempfile.mkdtemp(prefix="vf_int8_"))
    torch.manual_seed(0)
    model = create_model("deeplabv3plus_codavision", num_classes=5).eval()
    mdir = save_model_dir(
        model,
        tmp / "model",
        task="segmentation",
        input_size=[3, size, size],
        class_names=[f"c{i}" for i in range(5)],
        preprocessing={"input_range": [0, 255], "mean": None, "std": None},
    )
    meta = {"input_size": [3, size, size], "preprocessing": {"input_range": [0, 255]}}
    x4, calib = real_sample_inputs(meta, 4), real_sample_inputs(meta, 8)
    export_onnx_file(model, x4[:2], tmp / "a.onnx", output_names=["logits"])
    quantize_onnx(tmp / "a.onnx", tmp / "a_int8.onnx", "static", calib)
    export_model(mdir, formats="onnx", quantize="int8", calibration_data=calib, out_dir=tmp / "b")
    files = {
        "A fp32": tmp / "a.onnx",
        "A int8": tmp / "a_int8.onnx",
        "B fp32": tmp / "b/model.onnx",
        "B int8 static": tmp / "b/model.int8-static.onnx",
        "B int8 dynamic": tmp / "b/model.int8-dynamic.onnx",
    }
    for k, f in files.items():
        ops = collections.Counter(n.op_type for n in onnx.load(str(f)).graph.node)
        print(f"{k}: {f.stat().st_size // 1024} KiB {dict(ops.most_common(6))}")
    sessions = {k: ort_session(f, threads=2) for k, f in files.items()}
    sessions.update(
        {f"{k} 1 thread": ort_session(files[k], threads=1) for k in ("A fp32", "A int8")}
    )
    x1 = x4[:1]
    for s in sessions.values():
        run_session(s, x1)
    times = collections.defaultdict(list)
    for _ in range(5):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            run_session(s, x1)
            times[k].append(time.perf_counter() - t0)
    base = statistics.median(times["A fp32"])
    for k, v in times.items():
        med = statistics.median(v)
        print(f"{k:<20} {1 / med:.3f} img/s  x A fp32 {base / med:.2f}")


if __name__ == "__main__":
    main()
