"""TensorRT FP16 engine built from the ONNX file (needs a CUDA device and the TensorRT package)."""

from __future__ import annotations

import importlib.util

import numpy as np

from visionforge.export.base import (
    SKIPPED,
    ExportContext,
    ExportResult,
    median_latency_ms,
    parity_result,
    register_exporter,
)
from visionforge.io import atomic_write_bytes

SKIP_REASON = "skipped: needs an NVIDIA GPU and TensorRT"
# FP16 arithmetic: relative error ~1e-3 per op; accept a few 1e-2 on logits of unit scale.
TOLERANCE_REL = 2e-2


def tensorrt_available() -> tuple[bool, str]:
    """Whether a CUDA device and the ``tensorrt`` package are both present (and why not)."""
    import torch

    if not torch.cuda.is_available():
        return False, f"{SKIP_REASON} (no CUDA device visible)"
    if importlib.util.find_spec("tensorrt") is None:
        return False, f"{SKIP_REASON} (the 'tensorrt' package is not installed)"
    return True, ""


def _build_engine(onnx_path, sample_shape, max_batch: int) -> bytes:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse the ONNX file: {errs}")
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    opt = max(1, max_batch // 2)
    profile.set_shape(name, (1, *sample_shape), (opt, *sample_shape), (max_batch, *sample_shape))
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError("TensorRT engine build failed (see the TensorRT log above)")
    return bytes(engine)


def _runner(engine_bytes: bytes):
    import tensorrt as trt
    import torch

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(engine_bytes)
    context = engine.create_execution_context()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]

    def run(x: np.ndarray) -> list[np.ndarray]:
        xt = torch.from_numpy(x).cuda().contiguous()
        context.set_input_shape(inputs[0], tuple(xt.shape))
        context.set_tensor_address(inputs[0], xt.data_ptr())
        outs = []
        for n in outputs:
            shape = tuple(context.get_tensor_shape(n))
            dtype = (
                torch.float16 if engine.get_tensor_dtype(n) == trt.DataType.HALF else torch.float32
            )
            t = torch.empty(shape, dtype=dtype, device="cuda")
            context.set_tensor_address(n, t.data_ptr())
            outs.append(t)
        stream = torch.cuda.current_stream()
        context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        return [o.float().cpu().numpy() for o in outs]

    return run


@register_exporter("tensorrt", order=40, description="TensorRT FP16 engine (GPU only)")
def export_tensorrt(ctx: ExportContext) -> ExportResult:
    """Build ``model.fp16.engine`` from the ONNX artifact and compare it with PyTorch."""
    result = ExportResult("tensorrt")
    ok, why = tensorrt_available()
    if not ok:
        result.status, result.reason = SKIPPED, why
        return result
    onnx_path = ctx.artifacts.get("onnx")
    if onnx_path is None:
        from visionforge.export.onnx import export_onnx_file

        onnx_path = ctx.out_dir / "model.onnx"
        export_onnx_file(ctx.model, ctx.inputs, onnx_path, output_names=ctx.output_names)
    max_batch = int(ctx.options.get("max_batch", max(8, len(ctx.inputs))))
    engine = _build_engine(onnx_path, ctx.sample_shape, max_batch)
    path = ctx.out_dir / "model.fp16.engine"
    atomic_write_bytes(path, engine)
    result.set_file(path)
    run = _runner(path.read_bytes())
    outs = run(ctx.inputs)
    scale = max(1.0, max(float(np.max(np.abs(r))) for _, r in ctx.reference))
    parity_result(result, ctx.reference, outs, TOLERANCE_REL * scale)
    result.latency_ms = median_latency_ms(lambda: run(ctx.inputs))
    result.extra.update({"precision": "fp16", "max_batch": max_batch})
    return result
