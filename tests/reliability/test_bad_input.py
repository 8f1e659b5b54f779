"""Bad input: a file where a model dir is expected, weights named by file, decompression
bombs and object arrays. Each gives one line naming the file (or loads what is named)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from visionforge.cli.main import main
from visionforge.errors import DataError, WeightsError
from visionforge.models import create_model, load_model, read_model_meta, save_model_dir


def _small_dir(path):
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=2, width=4)
    return save_model_dir(model, path, task="classification", class_names=["a", "b"],
                          input_size=[3, 16, 16]), model


def _files(tmp_path, model):
    """A pickle, a torch.save state dict, bare safetensors and a loose Lightning checkpoint."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = {"pickle": tmp_path / "model.pkl", "torch": tmp_path / "weights.pth",
           "safetensors": tmp_path / "weights.safetensors", "checkpoint": tmp_path / "last.ckpt"}
    out["pickle"].write_bytes(pickle.dumps({"a": 1}))
    torch.save(state, out["torch"])
    save_file({k: v.contiguous() for k, v in state.items()}, str(out["safetensors"]))
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()},
                "pytorch-lightning_version": "2.5.0", "global_step": 3}, out["checkpoint"])
    return out


KINDS = {"pickle": "a Python pickle", "torch": "a PyTorch file written by torch.save",
         "safetensors": "a safetensors weights file", "checkpoint": "a Lightning training checkpoint"}


@pytest.mark.parametrize("kind", list(KINDS))
def test_file_instead_of_model_dir_says_what_it_is(tmp_path, kind):
    _, model = _small_dir(tmp_path / "model")
    path = _files(tmp_path, model)[kind]
    from visionforge.inference.predictor import Predictor

    for call in (load_model, read_model_meta, Predictor):
        with pytest.raises(WeightsError) as info:
            call(path)
        msg = str(info.value)
        assert msg.startswith(str(path)) and KINDS[kind] in msg and "model.json" in msg, msg


@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_cli_with_a_checkpoint_file_is_one_line(tmp_path, capsys, command):
    _, model = _small_dir(tmp_path / "model")
    path = _files(tmp_path, model)["checkpoint"]
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(img)
    args = {"predict": [str(path), str(img)], "evaluate": [str(path), str(tmp_path)],
            "export": [str(path)]}[command]
    assert main([command, *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "UnicodeDecodeError" not in err
    line = [ln for ln in err.splitlines() if ln.startswith("visionforge: error:")]
    assert len(line) == 1 and str(path) in line[0] and "checkpoint" in line[0], err


def test_run_checkpoint_loads_safely_through_the_run_model_json(tmp_path):
    run = tmp_path / "run"
    _, model = _small_dir(run / "model")
    trained = {f"model.{k}": v + 1 if v.is_floating_point() else v
               for k, v in model.state_dict().items()}
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir()
    torch.save({"state_dict": trained, "pytorch-lightning_version": "2.5.0"}, ckpt)
    loaded = load_model(ckpt)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, trained[f"model.{k}"]), k  # the checkpoint's weights, not the dir's
    assert read_model_meta(ckpt)["name"] == "small_cnn"
    from visionforge.inference.predictor import Predictor

    with pytest.raises(WeightsError, match=str(run / "model")):  # says which dir to pass
        Predictor(ckpt)


def test_interop_load_model_loads_the_named_weights_file(tmp_path):
    from visionforge.interop import load_model as interop_load

    mdir, model = _small_dir(tmp_path / "model")
    other = {k: (v * 0 + 0.5) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}
    torch.save(other, mdir / "weights.pth")
    adapter = interop_load(mdir / "weights.pth")
    module = adapter.module if hasattr(adapter, "module") else adapter.model
    for k, v in module.state_dict().items():
        assert torch.equal(v, other[k]), k
    # the dir's own weights load when the dir (or model.safetensors) is named
    module = interop_load(mdir / "model.safetensors")
    module = module.module if hasattr(module, "module") else module.model
    for k, v in module.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
    torch.save({"nonsense": torch.ones(2)}, mdir / "wrong.pth")
    with pytest.raises(WeightsError, match="wrong.pth"):
        interop_load(mdir / "wrong.pth")


def _bomb(path, size=(9000, 9000)):
    Image.new("L", size).save(path)  # a tiny PNG that decodes to 81 M pixels


def test_decompression_bomb_is_named_when_the_dataset_is_set_up(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    from visionforge.data.classification import ClassificationDataset
    from visionforge.data.segmentation import SegmentationDataset

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 40_000_000)
    for c in ("a", "b"):
        (tmp_path / "cls" / c).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8)).save(tmp_path / "cls" / c / f"{i}.png")
    bomb = tmp_path / "cls" / "b" / "bomb.png"
    _bomb(bomb)
    with pytest.raises(DataError, match=f"{bomb}.*decompression-bomb"):
        ClassificationDataset(tmp_path / "cls")
    ds = ClassificationDataset(tmp_path / "cls", on_bad_image="skip")
    assert len(ds) == 4 and ds.skipped[0]["path"] == str(bomb)

    (tmp_path / "seg" / "images").mkdir(parents=True)
    (tmp_path / "seg" / "masks").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "seg" / "images" / "ok.png")
    Image.new("L", (8, 8)).save(tmp_path / "seg" / "masks" / "ok.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "seg" / "images" / "big.png")
    _bomb(tmp_path / "seg" / "masks" / "big.png")
    with pytest.raises(DataError, match="big.png.*decompression-bomb"):
        SegmentationDataset(tmp_path / "seg" / "images", tmp_path / "seg" / "masks")


def test_object_array_npy_is_a_data_error_naming_the_file(tmp_path):
    from visionforge.data.signals.generic import load_series

    path = tmp_path / "signals.npy"
    np.save(path, np.array([np.zeros(5), np.zeros(7)], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=f"{path}: holds a NumPy object array"):
        load_series(path, labels=np.array([0, 1]))
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((2, 1, 8), np.float32))
    lab = tmp_path / "labels.npy"
    np.save(lab, np.array([object(), object()], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=f"{lab}: holds a NumPy object array"):
        load_series(good, labels=os.fspath(lab))
