"""One data path: every registered datamodule trains from the CLI, and every registered model
receives the input its ``InputContract`` declares (training and prediction)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import visionforge.data  # noqa: F401 - registers the built-in datamodules
from visionforge.cli.main import main
from visionforge.registry import DATAMODULES
from visionforge.workflows.data_setup import datamodule_name

COLOUR = (200, 100, 50)  # the solid colour of every generated image


def _png(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _image(size=32, colour=None, seed=0):
    if colour is not None:
        return np.full((size, size, 3), colour, np.uint8)
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _folder(root, colour=None, n=6):
    for c in ("a", "b"):
        for i in range(n):
            _png(root / c / f"{i}.png", _image(colour=colour, seed=hash((c, i)) % 1000))
    return root


def _seg(root, colour=None, n=10, size=32):
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        mask[:, size // 2:] = 1
        _png(root / "images" / f"s{i}.png", _image(size, colour, seed=i))
        _png(root / "masks" / f"s{i}.png", mask)
    return root


def _imagenet(root):
    for split in ("train", "val"):
        for wnid in ("n01", "n02"):
            for i in range(4):
                _png(root / split / wnid / f"{i}.JPEG", _image(seed=i))
    return root


def _cifar(root, name):
    folder = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}[name]
    rng = np.random.default_rng(0)
    (root / folder).mkdir(parents=True)
    if name == "cifar10":
        files, key, meta = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels", (
            "batches.meta", b"label_names")
    else:
        files, key, meta = ["train", "test"], b"fine_labels", ("meta", b"fine_label_names")
    for f in files:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), key: [0, 1, 0, 1]}
        (root / folder / f).write_bytes(pickle.dumps(batch, protocol=2))
    (root / folder / meta[0]).write_bytes(pickle.dumps({meta[1]: [b"x", b"y"]}))
    return root


def _coco(root):
    for split in ("train2017", "val2017"):
        images = []
        for i in range(4):
            _png(root / "images" / split / f"{i}.jpg", _image(seed=i))
            images.append({"id": i + 1, "file_name": f"{i}.jpg", "height": 32, "width": 32})
        anns = [{"id": i + 1, "image_id": i + 1, "category_id": 5, "area": 256, "iscrowd": 0,
                 "segmentation": [[0, 0, 16, 0, 16, 16, 0, 16]]} for i in range(4)]
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(
            {"images": images, "annotations": anns, "categories": [{"id": 5, "name": "thing"}]}))
    return root


def _series(root, shape=(1, 64), n=24, seed=0):
    root.mkdir(parents=True)
    x = np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)
    np.save(root / "series.npy", x)
    np.save(root / "series_labels.npy", np.arange(n) % 2)
    return root, x


_BUILD = {
    "image_folder": lambda r: _folder(r),
    "segmentation": lambda r: _seg(r),
    "signals": lambda r: _series(r)[0],
    "cifar10": lambda r: _cifar(r, "cifar10"),
    "cifar100": lambda r: _cifar(r, "cifar100"),
    "imagenet": _imagenet,
    "coco_segmentation": _coco,
}
_MODEL = {
    "classification": ["model=small_cnn", "model.kwargs.width=4", "model.kwargs.depth=1"],
    "segmentation": ["model=unet", "model.kwargs.decoder_channels=[16,8,8,8]"],
    "signal": ["model=resnet1d", "model.kwargs.filters=[4,4,4]"],
}


def _config_kind(name: str) -> str:
    """``data.kind`` takes every registered datamodule name as it is."""
    assert datamodule_name(name) == name
    return name


@pytest.mark.slow
@pytest.mark.parametrize("name", DATAMODULES.list())
def test_every_registered_datamodule_trains_from_the_cli(tmp_path, name):
    if name == "detection":  # box targets, not labels/masks
        pytest.skip("detection (box targets) is covered by tests/detection/test_detection_train.py; no tiny box data in this contract test yet")
    assert name in _BUILD, f"add tiny data for the new datamodule {name!r} to this test"
    root = _BUILD[name](tmp_path / "data")
    task = DATAMODULES.get(name).task
    project = tmp_path / "runs"
    args = ["train", f"data.kind={_config_kind(name)}", f"data.root={root}", "data.image_size=32",
            "data.batch_size=4", "trainer.max_epochs=1", "trainer.max_steps=2", "trainer=cpu",
            f"project_dir={project}", *_MODEL[task]]
    assert main(args) == 0
    run = next((project / task).iterdir())
    meta = json.loads((run / "model" / "model.json").read_text())
    assert meta["task"] == task and len(meta["class_names"]) >= 2
    assert json.loads((run / "dataset.json").read_text())["split_sizes"]["train"] > 0
    if name not in ("imagenet", "coco_segmentation"):  # these two come split by their files
        assert (run / "splits.csv").is_file()
    if task != "signal":
        assert meta["input_size"][-1] == 32


# ---------------------------------------------------------------------------------------------
# every registered model is fed its declared contract


def _models():
    from visionforge.models.factory import list_models, model_entry

    out = []
    for name in list_models():
        meta = model_entry(name).metadata
        if name != model_entry(name).name or meta.get("task") not in (
                "classification", "segmentation", "multitask", "signal"):
            continue
        marks = [pytest.mark.slow] if name.startswith("deeplabv3plus") or "coatnet" in name else []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def _recorder(store):
    def hook(module, args):
        store.append(args[0].detach().float().cpu().clone())
    return hook


def _expected_image(contract):
    rgb01 = torch.tensor(COLOUR, dtype=torch.float32).reshape(3, 1, 1) / 255.0
    return contract.apply(rgb01).reshape(3)


def _cli_args(name, meta, data_root, project):
    from omegaconf import OmegaConf  # noqa: F401 - kwargs are written as CLI overrides below

    kwargs = {k: v for k, v in (meta.get("test_kwargs") or {}).items()
              if not k.startswith("num_classes") and k not in ("in_chans",)}
    shape = tuple(meta.get("test_input") or (3, 32, 32))
    args = [f"model={name}", f"data.root={data_root}", "data.batch_size=4", "trainer.max_epochs=1",
            "trainer.max_steps=1", "trainer=cpu", "data.augment=false", f"project_dir={project}",
            "seed=0"]
    if meta.get("task") != "signal":
        args.append(f"data.image_size={shape[-1]}")
    args += [f"model.kwargs.{k}={json.dumps(v)}" for k, v in kwargs.items()]
    return args


@pytest.mark.parametrize("name", _models())
def test_every_registered_model_is_fed_its_declared_contract(tmp_path, monkeypatch, name):
    import visionforge.models as models
    from visionforge.config.loader import compose_config
    from visionforge.inference import Predictor
    from visionforge.models.contract import contract_for
    from visionforge.models.factory import model_entry
    from visionforge.workflows.train import train_from_config

    meta = model_entry(name).metadata
    task = meta["task"]
    if task == "multitask":
        pytest.skip("no data.kind yields image + label + mask samples for `visionforge train` yet")
    contract = contract_for(name)
    shape = tuple(meta.get("test_input") or (3, 32, 32))
    if task == "signal":
        root, raw = _series(tmp_path / "data", shape=shape)
    elif task == "segmentation":
        root = _seg(tmp_path / "data", colour=COLOUR, size=shape[-1])
    else:
        root = _folder(tmp_path / "data", colour=COLOUR)
    seen: list[torch.Tensor] = []
    build = models.create_model

    def create_and_hook(*args, **kwargs):
        model = build(*args, **kwargs)
        model.register_forward_pre_hook(_recorder(seen))
        return model

    monkeypatch.setattr(models, "create_model", create_and_hook)
    predicted: list[torch.Tensor] = []

    def predict(result, trainer, data):
        predictor = Predictor(result.model_dir, backend="torch", device="cpu")
        predictor.model.register_forward_pre_hook(_recorder(predicted))
        sample = str(next(iter(sorted(root.rglob("*.png"))))) if task != "signal" else raw[:2]
        predictor.predict(sample)

    cfg = compose_config(_cli_args(name, meta, root, tmp_path / "runs"), env={}).cfg
    result = train_from_config(cfg, echo=lambda _: None, after_train=predict)
    saved = json.loads((result.model_dir / "model.json").read_text())["preprocessing"]
    assert saved["input_range"] == (list(contract.input_range) if contract.input_range else None)
    assert saved["mean"] == (list(contract.mean) if contract.mean else None)
    assert seen, "the model saw no input during training"
    if task == "signal":
        rows = {tuple(np.round(r, 5).ravel()) for r in raw}
        for x in seen:
            assert all(tuple(np.round(s.numpy(), 5).ravel()) in rows for s in x)
        return
    expected = _expected_image(contract)
    tol = 1e-3 * (contract.input_range[1] if contract.input_range else 1.0)
    for x in seen:
        assert x.shape[1] == 3 and x.shape[-1] == shape[-1]
        per_channel = x.permute(1, 0, 2, 3).reshape(3, -1)
        torch.testing.assert_close(per_channel, expected[:, None].expand_as(per_channel),
                                   atol=tol, rtol=0)
    assert predicted, "the predictor did not call the model"
    per_channel = predicted[0].permute(1, 0, 2, 3).reshape(3, -1)
    torch.testing.assert_close(per_channel, expected[:, None].expand_as(per_channel),
                               atol=tol, rtol=0)
