"""Export reads the input contract of model.json (via InputContract) and applies all of it."""

from __future__ import annotations

import numpy as np
import pytest

from visionforge.errors import ConfigError
from visionforge.export.contract import input_range, mean_std, normalize, real_sample_inputs
from visionforge.models.contract import IMAGENET, RAW_255, InputContract

MEAN_BGR = (104.0, 117.0, 124.0)
STD_BGR = (57.0, 57.5, 58.0)


def _meta(contract: InputContract | None, size=(3, 16, 16)) -> dict:
    meta = {"name": "probe", "task": "classification", "input_size": list(size)}
    if contract is not None:
        meta["preprocessing"] = contract.to_dict()
    return meta


def test_sample_inputs_follow_the_whole_contract():
    unit = real_sample_inputs(_meta(InputContract()), 2)
    assert 0.0 <= unit.min() and unit.max() <= 1.0
    raw = real_sample_inputs(_meta(RAW_255), 2)
    np.testing.assert_allclose(raw, unit * 255.0, rtol=1e-5, atol=1e-3)
    bgr = InputContract(input_range=(0.0, 255.0), mean=MEAN_BGR, std=STD_BGR, channel_order="BGR")
    got = real_sample_inputs(_meta(bgr), 2)
    expected = (raw[:, ::-1] - np.reshape(MEAN_BGR, (1, 3, 1, 1))) / np.reshape(
        STD_BGR, (1, 3, 1, 1)
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_sample_inputs_resize_with_the_contract_interpolation():
    nearest = real_sample_inputs(_meta(InputContract(interpolation="nearest")), 1)
    bilinear = real_sample_inputs(_meta(InputContract()), 1)
    assert np.abs(nearest - bilinear).max() > 0.01


def test_normalize_finishes_a_batch_in_input_range():
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 4, 4)).astype(np.float32)
    bgr = InputContract(input_range=(0.0, 255.0), mean=MEAN_BGR, std=STD_BGR, channel_order="BGR")
    got = normalize(x, _meta(bgr, (3, 4, 4)))
    np.testing.assert_allclose(
        got,
        (x[:, ::-1] - np.reshape(MEAN_BGR, (1, 3, 1, 1))) / np.reshape(STD_BGR, (1, 3, 1, 1)),
        rtol=1e-5,
    )
    np.testing.assert_array_equal(normalize(x, _meta(RAW_255, (3, 4, 4))), x)  # no mean/std


def test_contract_accessors_delegate_to_input_contract():
    assert input_range(_meta(RAW_255)) == (0.0, 255.0)
    assert input_range(_meta(None)) == (0.0, 1.0)  # no preprocessing key: defaults
    mean, std = mean_std(_meta(IMAGENET), 3)
    np.testing.assert_allclose(mean, IMAGENET.mean, rtol=1e-6)
    assert mean_std(_meta(RAW_255), 3) is None
    with pytest.raises(ConfigError, match="mean"):
        mean_std(_meta(IMAGENET), 4)  # 3 statistics for a 4-channel input


def test_export_report_records_the_contract(tmp_path, tiny_models):
    from visionforge.export import export_model

    contract = InputContract(
        input_range=(0.0, 255.0), mean=MEAN_BGR, std=STD_BGR, channel_order="BGR"
    )
    mdir = tiny_models.make_probe_dir(tmp_path / "probe", contract)
    report = export_model(mdir, formats="torchscript", out_dir=tmp_path / "out")
    assert report["torchscript"].status == "ok", report.table()
    pre = report.to_dict()["model"]["preprocessing"]
    assert pre["channel_order"] == "BGR" and pre["input_range"] == [0.0, 255.0]
