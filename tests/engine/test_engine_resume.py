"""Exact resume after SIGKILL (real subprocess) and the NaN/Inf guard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from engine_testkit import TinyCNN, cls_tensors
from torch.utils.data import DataLoader, TensorDataset

from visionforge.engine import Trainer
from visionforge.engine.callbacks import NonFiniteLossError
from visionforge.engine.checkpoint import load_checkpoint, model_state_from_checkpoint

CHILD = Path(__file__).with_name("engine_child.py")


def _child(mode: str, out: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(CHILD), mode, str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **kw,
    )


@pytest.mark.slow
def test_engine_sigkill_mid_epoch_then_resume_is_exact(tmp_path):
    from safetensors.torch import load_file

    ref, run = tmp_path / "ref", tmp_path / "run"
    run.mkdir()
    full = _child("full", ref)
    stall = _child("stall", run)
    deadline = time.time() + 240
    while not (run / "stalled").exists():
        assert stall.poll() is None, stall.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "child never reached the stall step"
        time.sleep(0.2)
    stall.send_signal(signal.SIGKILL)
    stall.wait()
    ckpt = load_checkpoint(run / "checkpoints/last.ckpt")
    assert ckpt["global_step"] == 6 and ckpt["epoch"] == 1  # killed mid-way through epoch 1
    resume = _child("resume", run)
    assert resume.wait(timeout=240) == 0, resume.stderr.read().decode()[-3000:]
    assert full.wait(timeout=240) == 0, full.stderr.read().decode()[-3000:]
    a, b = load_file(str(ref / "final.safetensors")), load_file(str(run / "final.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (ref / "history.txt").read_text() == (run / "history.txt").read_text()


class NaNAfter(torch.nn.Module):
    """Returns NaN logits from the n-th training forward on."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.net, self.n, self.calls = TinyCNN(), n, 0

    def forward(self, x):
        out = self.net(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.n:
                out = out * float("nan")
        return out


def test_engine_nan_loss_stops_with_step_and_keeps_last_checkpoint(tmp_path, fast):
    x, y = cls_tensors(32)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = NaNAfter(n=6)
    trainer = Trainer(model, max_epochs=5, checkpoint_every_n_steps=1, output_dir=tmp_path, **fast)
    with pytest.raises(NonFiniteLossError, match=r"at step 5 \(epoch 1, batch 1\)"):
        trainer.train(loader, loader)
    state = model_state_from_checkpoint(tmp_path / "checkpoints/last.ckpt")
    assert load_checkpoint(tmp_path / "checkpoints/last.ckpt")["global_step"] == 5
    assert all(torch.isfinite(v).all() for v in state.values())
    for k, v in state.items():  # the NaN step never reached the weights
        assert torch.equal(v, model.state_dict()[k]), k
