"""Faults: full disks, read-only folders, file-size limits, kills mid-write, NaN training.

Root ignores permissions, so read-only folders and full disks are simulated where
visionforge writes (``visionforge.io``); the file-size limit is real (RLIMIT_FSIZE in a
child process). Each fault must give one line naming the path, a non-zero exit code,
no traceback, and leave no partial file behind.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

import visionforge.io as vio
from visionforge.cli.main import main
from visionforge.engine import Trainer
from visionforge.engine.callbacks import NonFiniteLossError
from visionforge.engine.checkpoint import load_checkpoint, model_state_from_checkpoint

FAST = {"device": "cpu", "progress": False, "seed": 0}


class _FailingFile(io.FileIO):
    """A file whose writes fail with ``code`` once ``budget`` bytes were written."""

    def __init__(self, path, mode, code, budget):
        super().__init__(path, mode)
        self.code, self.budget = code, budget

    def write(self, data):
        self.budget -= len(data)
        if self.budget < 0:
            raise OSError(self.code, os.strerror(self.code))
        return super().write(data)


def _fail_writes(monkeypatch, code, budget=0, only=""):
    """Make binary writes through ``visionforge.io`` fail like a full disk / size limit."""
    real_open = open

    def fake_open(path, mode="r", *args, **kwargs):
        if "w" in mode and "b" in mode and only in str(path):
            return _FailingFile(path, "wb", code, budget)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(vio, "open", fake_open, raising=False)


def _read_only(monkeypatch, under: Path):
    """Creating files (temp files) below ``under`` fails with EROFS, as on a read-only mount."""
    real = vio.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and str(dir).startswith(str(under)):
            name = os.path.join(dir, f"{kwargs.get('prefix', '')}x{kwargs.get('suffix', '')}")
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), name)
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(vio.tempfile, "mkstemp", mkstemp)


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def _one_line_error(err: str, *needles: str) -> str:
    assert "Traceback" not in err and "basic_ios" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("visionforge: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- the atomic-write layer ---------------------------------------------------------------


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG])
def test_torch_save_on_full_disk_raises_oserror_naming_target_and_keeps_old(tmp_path, monkeypatch,
                                                                            code):
    target = tmp_path / "last.ckpt"
    vio.atomic_torch_save({"w": torch.ones(3)}, target)
    _fail_writes(monkeypatch, code, budget=100)
    with pytest.raises(OSError) as info:
        vio.atomic_torch_save({"w": torch.zeros(100_000)}, target)
    assert info.value.errno == code and info.value.filename == str(target)
    assert not isinstance(info.value, RuntimeError)  # not torch's "unexpected pos" error
    assert torch.equal(load_checkpoint(target)["w"], torch.ones(3))  # old file intact
    assert _temp_files(tmp_path) == []


def test_read_only_folder_names_the_target_not_the_temp_file(tmp_path, monkeypatch):
    _read_only(monkeypatch, tmp_path)
    with pytest.raises(OSError) as info:
        vio.atomic_write_text(tmp_path / "report.html", "x")
    assert info.value.errno == errno.EROFS
    assert info.value.filename == str(tmp_path / "report.html")


def test_stale_temp_files_are_removed_and_others_kept(tmp_path):
    stale = tmp_path / ".last.ckpt.k3j_9x.tmp"
    keep = [tmp_path / "notes.tmp", tmp_path / ".hidden", tmp_path / "last.ckpt", tmp_path / ".x.tmp"]
    for p in [stale, *keep]:
        p.write_text("x")
    assert vio.remove_stale_temp_files(tmp_path) == [stale]
    assert not stale.exists() and all(p.exists() for p in keep)


# -- the CLI: one line, exit != 0, nothing partial ------------------------------------------


def _png_folder(root: Path, n: int = 2) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def test_predict_into_read_only_folder_is_one_line(tmp_path, monkeypatch, capsys, classifier_dir):
    images = _png_folder(tmp_path / "imgs")
    out = tmp_path / "ro"
    _read_only(monkeypatch, out)
    code = main(["predict", str(classifier_dir), str(images), f"out={out}"])
    assert code != 0
    _one_line_error(capsys.readouterr().err, str(out / "predictions.csv"), "EROFS")
    assert not (out / "predictions.csv").exists() and _temp_files(tmp_path) == []


def test_predict_on_full_disk_is_one_line(tmp_path, monkeypatch, capsys, classifier_dir):
    images = _png_folder(tmp_path / "imgs")
    out = tmp_path / "full"
    _fail_writes(monkeypatch, errno.ENOSPC)
    code = main(["predict", str(classifier_dir), str(images), f"out={out}"])
    assert code != 0
    _one_line_error(capsys.readouterr().err, str(out / "predictions.csv"), "ENOSPC",
                    "free disk space")
    assert list(out.iterdir()) == []


def _class_folder(root: Path, n_per_class: int = 8, size: int = 16) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(["dark", "light"]):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            img = np.clip((40 if c == 0 else 210) + rng.normal(0, 20, (size, size, 3)), 0, 255)
            Image.fromarray(img.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def _train_args(data: Path, project: Path) -> list[str]:
    return ["train", f"data.root={data}", "model=small_cnn", "model.kwargs.width=4",
            "data.image_size=16", "data.batch_size=8", "trainer.max_epochs=1", "trainer=cpu",
            f"project_dir={project}", "data.augment=false"]


@pytest.mark.slow
def test_train_with_disk_full_at_checkpoint_is_one_line(tmp_path, monkeypatch, capsys):
    data = _class_folder(tmp_path / "data")
    project = tmp_path / "runs"
    _fail_writes(monkeypatch, errno.ENOSPC, only=".ckpt.")
    code = main(_train_args(data, project))
    assert code != 0
    _one_line_error(capsys.readouterr().err, ".ckpt", "No space left on device")
    assert _temp_files(project) == []
    assert list(project.rglob("*.ckpt")) == []


_FSIZE_CHILD = textwrap.dedent(
    """
    import resource, sys
    from visionforge.cli.main import main
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    sys.exit(main(sys.argv[2:]))
    """
)


@pytest.mark.skipif(not hasattr(os, "setpgid") or sys.platform != "linux", reason="RLIMIT_FSIZE")
def test_file_size_limit_gives_efbig_line_not_a_signal(tmp_path, classifier_dir):
    images = _png_folder(tmp_path / "imgs", n=20)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", _FSIZE_CHILD, "200", "predict", str(classifier_dir), str(images),
         f"out={out}"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    # Without ignoring SIGXFSZ the child dies of the signal (returncode < 0).
    assert proc.returncode > 0, proc.stderr[-2000:]
    _one_line_error(proc.stderr, str(out / "predictions.csv"), "EFBIG")
    assert not (out / "predictions.csv").exists() and _temp_files(out) == []


# -- NaN/Inf: a checkpoint is only written from a finite state -------------------------------


class _PoisonedStats(torch.nn.Module):
    """A small CNN whose BatchNorm statistics become Inf in the ``n``-th training forward.

    The training loss stays finite (train-mode BatchNorm uses batch statistics), as with
    ``optimizer.lr=1e8``, where the running statistics blow up before the loss does.
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Linear(4, 2)
        self.n, self.calls = n, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls >= self.n:  # before BatchNorm runs: autograd must not see the change
                with torch.no_grad():
                    self.bn.running_var.fill_(float("inf"))
        out = self.bn(self.conv(x))
        return self.head(out.mean(dim=(2, 3)))


def test_non_finite_buffers_stop_training_and_never_reach_a_checkpoint(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 8, 8, generator=g), torch.randint(0, 2, (32,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = _PoisonedStats(n=6)
    trainer = Trainer(model, max_epochs=3, checkpoint_every_n_steps=1, output_dir=tmp_path, **FAST)
    with pytest.raises(NonFiniteLossError, match=r"bn\.running_var.*at step 6"):
        trainer.train(loader, loader)
    for name in ("last.ckpt", "best.ckpt"):
        path = tmp_path / "checkpoints" / name
        if path.exists():
            state = model_state_from_checkpoint(path)
            assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert load_checkpoint(tmp_path / "checkpoints/last.ckpt")["global_step"] == 5


def test_stale_checkpoint_temp_files_are_cleaned_when_a_run_starts(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 2, (16,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    ckpt_dir = tmp_path / "checkpoints"
    ckpt_dir.mkdir()
    stale = ckpt_dir / ".last.ckpt.a8f3k2.tmp"  # what a kill during a checkpoint write leaves
    stale.write_bytes(b"half a checkpoint")
    Trainer(_PoisonedStats(n=10**6), max_epochs=1, output_dir=tmp_path, resume=True,
            **FAST).train(loader, loader)
    assert not stale.exists()
    assert (ckpt_dir / "last.ckpt").is_file() and _temp_files(tmp_path) == []
