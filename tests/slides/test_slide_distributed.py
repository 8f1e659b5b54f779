"""Slides spread over 2 gloo CPU processes give the same outputs as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CHILD = Path(__file__).with_name("slide_segment_child.py")


def _run(model_dir, out, devices, slides):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("LOCAL_RANK", "WORLD_SIZE", "RANK", "NODE_RANK", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, str(CHILD), str(model_dir), str(out), str(devices), *map(str, slides)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_match_one(ihc_image, tmp_path):
    import importlib.util

    import tifffile
    import torch.distributed as dist

    from visionforge.slides.synthetic import write_pyramid_tiff

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available here")
    spec = importlib.util.spec_from_file_location("slide_segment_child", CHILD)
    child = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(child)
    model = child.make_model_dir(tmp_path / "model")
    slides = [write_pyramid_tiff(tmp_path / f"s{i}.tif", ihc_image[o : o + 768, o : o + 768],
                                 mpp=0.5, levels=(1, 4)) for i, o in enumerate((0, 256, 512))]
    _run(model, tmp_path / "one", 1, slides)
    _run(model, tmp_path / "two", 2, slides)
    ranks = [json.loads((tmp_path / "two" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1] == {"s0": "ok", "s1": "ok", "s2": "ok"}
    for s in ("s0", "s1", "s2"):
        a = tifffile.imread(tmp_path / "one" / s / "labels.tif")
        b = tifffile.imread(tmp_path / "two" / s / "labels.tif")
        assert np.array_equal(a, b)
        for name in ("composition.csv", "objects.csv"):
            assert (tmp_path / "one" / s / name).read_text() == (tmp_path / "two" / s / name).read_text()
    assert (tmp_path / "one/composition.csv").read_text() == (tmp_path / "two/composition.csv").read_text()
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["counts"]["ok"] == 3
