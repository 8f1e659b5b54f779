"""The Predictor applies the whole input contract of model.json: range, channel order, mean/std,
interpolation, input size; model.json files written before the contract existed still load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from visionforge.inference import Predictor
from visionforge.models.contract import IMAGENET, RAW_255, InputContract

MEAN_BGR = (104.0, 117.0, 124.0)  # Caffe-style statistics, in 0-255 units and BGR order
STD_BGR = (57.0, 57.5, 58.0)


def _image(h=8, w=8, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _received(model_dir, img, tiny_models, **kw) -> np.ndarray:
    """The batch the network itself receives when the Predictor is given ``img`` (HWC uint8)."""
    pred = Predictor(model_dir, backend="torch", device="cpu", **kw)
    seen = tiny_models.record_inputs(pred.model)
    pred.predict([img], layout="NHWC")
    assert len(seen) == 1
    return seen[0].numpy()


def test_raw_255_model_gets_0_255_inputs(tmp_path, tiny_models):
    mdir = tiny_models.make_probe_dir(tmp_path / "raw", RAW_255)
    img = _image()
    got = _received(mdir, img, tiny_models)
    expected = img.transpose(2, 0, 1).astype(np.float32)[None]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert got.max() > 1.5  # not squeezed into [0, 1]


def test_bgr_contract_reverses_channels_before_mean_std(tmp_path, tiny_models):
    contract = InputContract(
        input_range=(0.0, 255.0), mean=MEAN_BGR, std=STD_BGR, channel_order="BGR"
    )
    mdir = tiny_models.make_probe_dir(tmp_path / "bgr", contract)
    img = _image(seed=1)
    got = _received(mdir, img, tiny_models)
    bgr = img[..., ::-1].transpose(2, 0, 1).astype(np.float32)
    expected = (bgr - np.reshape(MEAN_BGR, (3, 1, 1))) / np.reshape(STD_BGR, (3, 1, 1))
    np.testing.assert_allclose(got[0], expected, rtol=1e-5, atol=1e-4)


def test_rgb_imagenet_contract_matches_manual_normalisation(tmp_path, tiny_models):
    mdir = tiny_models.make_probe_dir(tmp_path / "imnet", IMAGENET)
    img = _image(seed=2)
    got = _received(mdir, img, tiny_models)
    x = img.transpose(2, 0, 1).astype(np.float32) / 255.0
    expected = (x - np.reshape(IMAGENET.mean, (3, 1, 1))) / np.reshape(IMAGENET.std, (3, 1, 1))
    np.testing.assert_allclose(got[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("interpolation", ["nearest", "bicubic"])
def test_resize_uses_the_contract_interpolation(tmp_path, tiny_models, interpolation):
    contract = InputContract(input_range=(0.0, 255.0), interpolation=interpolation)
    mdir = tiny_models.make_probe_dir(tmp_path / interpolation, contract, size=8)
    img = _image(16, 16, seed=3)
    got = _received(mdir, img, tiny_models)
    t = torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32))[None]
    if interpolation == "nearest":
        expected = F.interpolate(t, size=(8, 8), mode="nearest").numpy()
        np.testing.assert_array_equal(got, expected)  # original pixel values, no blending
    else:
        expected = F.interpolate(
            t, size=(8, 8), mode="bicubic", antialias=True, align_corners=False
        ).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-3)
        bilinear = F.interpolate(
            t, size=(8, 8), mode="bilinear", antialias=True, align_corners=False
        ).numpy()
        assert np.abs(got - bilinear).max() > 0.5  # bicubic, not the old fixed bilinear


def test_onnxruntime_backend_gets_the_same_contract(tmp_path, tiny_models, monkeypatch):
    monkeypatch.setenv("VISIONFORGE_ONNX_EXPORTER", "torchscript")
    contract = InputContract(
        input_range=(0.0, 255.0), mean=MEAN_BGR, std=STD_BGR, channel_order="BGR"
    )
    mdir = tiny_models.make_probe_dir(tmp_path / "ort", contract)
    img = _image(seed=4)
    ort = Predictor(mdir, backend="onnxruntime", device="cpu").predict([img], return_logits=True)
    bgr = img[..., ::-1].astype(np.float32)
    expected = ((bgr - np.asarray(MEAN_BGR)) / np.asarray(STD_BGR)).mean((0, 1))
    np.testing.assert_allclose(ort[0], expected, rtol=1e-4, atol=1e-4)


def _rewrite_meta(mdir, edit) -> None:
    path = mdir / "model.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_old_model_json_without_contract_keys_loads_with_defaults(tmp_path, tiny_models):
    mdir = tiny_models.make_probe_dir(tmp_path / "old", IMAGENET)

    def to_old_format(meta):  # what model.json held before the full contract was recorded
        meta.pop("input_layout", None)
        meta["preprocessing"] = {"mean": list(IMAGENET.mean), "std": list(IMAGENET.std)}

    _rewrite_meta(mdir, to_old_format)
    pred = Predictor(mdir, backend="torch", device="cpu")
    c = pred.contract
    assert (c.input_range, c.channel_order, c.interpolation, c.layout) == (
        (0.0, 1.0),
        "RGB",
        "bilinear",
        "NCHW",
    )
    assert c.input_size == (3, 8, 8)  # from model.json's top-level input_size
    assert pred.info()["preprocessing"]["channel_order"] == "RGB"
    img = _image(seed=5)
    got = _received(mdir, img, tiny_models)
    x = img.transpose(2, 0, 1).astype(np.float32) / 255.0
    expected = (x - np.reshape(IMAGENET.mean, (3, 1, 1))) / np.reshape(IMAGENET.std, (3, 1, 1))
    np.testing.assert_allclose(got[0], expected, rtol=1e-5, atol=1e-5)


def test_model_json_without_preprocessing_is_unit_range(tmp_path, tiny_models):
    mdir = tiny_models.make_probe_dir(tmp_path / "older", IMAGENET)
    _rewrite_meta(mdir, lambda meta: meta.pop("preprocessing"))
    img = _image(seed=6)
    got = _received(mdir, img, tiny_models)
    np.testing.assert_allclose(got[0], img.transpose(2, 0, 1) / 255.0, atol=1e-6)
