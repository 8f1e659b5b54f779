"""Atomic writes and pickle-free weight loading."""

from __future__ import annotations

import os

import pytest
import torch

from visionforge.errors import WeightsError
from visionforge.io import (
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    load_state_dict_file,
    read_json,
)


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]  # no temp files left


def test_atomic_write_failure_keeps_old_content(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "good")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("crash")
    assert target.read_text() == "good"
    assert sorted(os.listdir(tmp_path)) == ["a.txt"]


def test_json_roundtrip_with_numpy_and_tensors(tmp_path):
    import numpy as np

    path = atomic_write_json(tmp_path / "m.json", {"a": np.float32(0.5), "t": torch.tensor([1, 2])})
    assert read_json(path) == {"a": 0.5, "t": [1, 2]}
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        read_json(tmp_path / "bad.json")


def test_load_state_dict_safetensors_and_pth(tmp_path):
    from safetensors.torch import save_file

    sd = {"w": torch.randn(2, 3), "b": torch.zeros(2)}
    save_file(sd, tmp_path / "w.safetensors")
    torch.save({"state_dict": {f"model.{k}": v for k, v in sd.items()}, "epoch": 3}, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        loaded = load_state_dict_file(tmp_path / name)
        assert set(loaded) == {"w", "b"}
        assert torch.equal(loaded["w"], sd["w"])


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"w": torch.zeros(1), "evil": _Evil(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="refused"):
        load_state_dict_file(tmp_path / "evil.pth")
    assert not marker.exists()


def test_missing_and_garbage_weight_files(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_state_dict_file(tmp_path / "nope.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="junk.safetensors"):
        load_state_dict_file(tmp_path / "junk.safetensors")
    (tmp_path / "junk.pth").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="junk.pth"):
        load_state_dict_file(tmp_path / "junk.pth")


def test_checkpoints_and_weights_share_one_safe_loader(tmp_path):
    from visionforge.engine.checkpoint import load_checkpoint
    from visionforge.io import safe_torch_load

    marker = tmp_path / "pwned"
    torch.save({"state_dict": {}, "evil": _Evil(str(marker))}, tmp_path / "evil.ckpt")
    for load in (load_checkpoint, safe_torch_load, load_state_dict_file):
        with pytest.raises(WeightsError, match="refused to load"):
            load(tmp_path / "evil.ckpt")
    assert not marker.exists()
    with pytest.raises(WeightsError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="junk.ckpt"):
        load_checkpoint(tmp_path / "junk.ckpt")
    torch.save({"global_step": 3, "state_dict": {"w": torch.ones(2)}}, tmp_path / "ok.ckpt")
    assert load_checkpoint(tmp_path / "ok.ckpt")["global_step"] == 3


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        from visionforge.io import atomic_torch_save, current_umask

        assert current_umask() == umask
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_torch_save({"w": torch.ones(1)}, tmp_path / "b.ckpt")
        with open(tmp_path / "plain.txt", "w") as fh:  # what a plain open() gives
            fh.write("x")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.ckpt", "plain.txt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == expected, name


def test_replacing_a_file_keeps_its_mode(tmp_path):
    target = tmp_path / "shared.json"
    atomic_write_text(target, "1")
    target.chmod(0o664)
    atomic_write_json(target, {"a": 2})
    assert target.stat().st_mode & 0o777 == 0o664
