"""benchmarks/gpu.py --dry-run: every code path of the GPU benchmark, on a CPU, tiny."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


@pytest.mark.slow
def test_gpu_benchmark_dry_run(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--dry-run", "--json", str(tmp_path / "gpu.json")])
    variants = {r["variant"] for r in out["inference"]}
    assert {"fp32", "fp32 channels_last"} <= variants
    assert all(r["img_s"] > 0 for r in out["inference"])
    # what cannot run here is listed with a reason, never silently dropped
    assert any("TensorRT" in s and "CUDA" in s for s in out["skipped"])
    assert any("torch.compile" in s for s in out["skipped"])
    assert out["training"]["plain_fp32_img_s"] > 0 and out["training"]["trainer_auto_img_s"] > 0
    assert (tmp_path / "gpu.json").is_file()
