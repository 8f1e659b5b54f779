"""A malicious pickle checkpoint is refused by every load path, and its code never runs."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch

from visionforge.errors import WeightsError


class _Payload:
    """Unpickling this calls open(marker, "w"): code execution that leaves a file behind."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _malicious_checkpoint(path, marker):
    model = torch.nn.Linear(2, 2)
    torch.save({"state_dict": model.state_dict(), "payload": _Payload(str(marker))}, path)
    return path


def test_payload_really_runs_when_unpickled_unsafely(tmp_path):
    # Control: prove the file is malicious (unsafe unpickling in a child process writes the marker).
    marker = tmp_path / "control_marker"
    ckpt = _malicious_checkpoint(tmp_path / "control.pth", marker)
    code = f"import torch; torch.load({str(ckpt)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, timeout=120)
    assert marker.exists()


@pytest.mark.parametrize("suffix", [".pth", ".ckpt", ".pt", ".bin"])
def test_every_load_path_refuses(tmp_path, suffix, classifier_dir):
    from visionforge.export import export_model
    from visionforge.inference import Predictor
    from visionforge.io import load_state_dict_file
    from visionforge.models import create_model, load_model, load_weights
    from visionforge.serve import create_app

    marker = tmp_path / "pwned"
    ckpt = _malicious_checkpoint(tmp_path / f"evil{suffix}", marker)

    with pytest.raises(WeightsError, match="refused"):
        load_state_dict_file(ckpt)
    with pytest.raises(WeightsError, match="refused"):
        load_weights(torch.nn.Linear(2, 2), ckpt)
    with pytest.raises(WeightsError, match="refused"):
        create_model("resnet18", num_classes=3, pretrained=ckpt)

    # A model dir whose weights file was replaced by the pickle.
    bad_dir = tmp_path / "bad_model"
    shutil.copytree(classifier_dir, bad_dir, ignore=shutil.ignore_patterns(".cache", "export"))
    shutil.copy(ckpt, bad_dir / "model.safetensors")
    with pytest.raises(WeightsError):
        load_model(bad_dir)
    with pytest.raises(WeightsError):
        Predictor(bad_dir, backend="torch")
    with pytest.raises(WeightsError):
        create_app([bad_dir], backend="torch")
    with pytest.raises(WeightsError):
        export_model(bad_dir, formats="onnx", out_dir=tmp_path / "out")
    assert not marker.exists()
