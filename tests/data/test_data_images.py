"""The decoding rule: channel count and dtype are the same for every file kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visionforge.data.images import decode_image, load_image, load_mask
from visionforge.errors import DataError


def _check(t: torch.Tensor, channels: int, size=(8, 10)) -> None:
    assert t.dtype == torch.float32
    assert tuple(t.shape) == (channels, *size)
    assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0


def test_data_rgb_gray_rgba_load_to_three_float_channels(tmp_path, write_image):
    base = np.zeros((8, 10, 3), np.uint8)
    base[..., 0], base[..., 1], base[..., 2] = 255, 128, 0
    rgb = load_image(write_image(tmp_path / "rgb.png", base))
    _check(rgb, 3)
    assert torch.allclose(rgb[:, 0, 0], torch.tensor([1.0, 128 / 255, 0.0]))

    gray = load_image(write_image(tmp_path / "gray.png", np.full((8, 10), 51, np.uint8)))
    _check(gray, 3)
    assert torch.allclose(gray, torch.full_like(gray, 0.2))  # gray is repeated, not tinted

    rgba = np.dstack([base, np.full((8, 10), 7, np.uint8)])
    out = load_image(write_image(tmp_path / "rgba.png", rgba))
    _check(out, 3)
    assert torch.equal(out, rgb)  # alpha dropped, colours kept as stored

    jpg = load_image(write_image(tmp_path / "photo.jpg", base))
    _check(jpg, 3)


def test_data_16bit_tiff_scaled_by_dtype_max(tmp_path, write_image):
    gray16 = np.full((8, 10), 65535 // 5, np.uint16)
    t = load_image(write_image(tmp_path / "g16.tif", gray16))
    _check(t, 3)
    assert torch.allclose(t, torch.full_like(t, (65535 // 5) / 65535))

    rgb16 = np.zeros((8, 10, 3), np.uint16)
    rgb16[..., 2] = 65535
    t = load_image(write_image(tmp_path / "rgb16.tiff", rgb16))
    _check(t, 3)
    assert float(t[2].min()) == 1.0 and float(t[:2].max()) == 0.0
    # 16-bit values are not truncated to 8 bits: 257 and 256 differ after decoding
    fine = np.array([[256, 257]], np.uint16)
    t = load_image(write_image(tmp_path / "fine.tif", fine), channels=1)
    assert t[0, 0, 0] != t[0, 0, 1]


def test_data_16bit_png_and_channels_one(tmp_path, write_image):
    from PIL import Image

    arr = np.full((8, 10), 1000, np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(arr).save(path)
    t = load_image(path)
    _check(t, 3)
    assert torch.allclose(t, torch.full_like(t, 1000 / 65535), atol=1e-6)

    colour = np.zeros((8, 10, 3), np.uint8)
    colour[..., 1] = 255
    luma = load_image(write_image(tmp_path / "green.png", colour), channels=1)
    _check(luma, 1)
    assert torch.allclose(luma, torch.full_like(luma, round(0.587 * 255) / 255))


def test_data_8bit_stays_uint8_until_finished(tmp_path, write_image):
    t = decode_image(write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8)))
    assert t.dtype == torch.uint8  # cheaper augmentation; datasets convert at the end


def test_data_corrupt_file_error_names_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(DataError, match="broken.png: cannot decode image"):
        load_image(bad)
    with pytest.raises(DataError, match="missing.png: file not found"):
        load_image(tmp_path / "missing.png")


def test_data_colour_mask_mapping(tmp_path, write_image):
    m = np.zeros((4, 4, 3), np.uint8)
    m[:2] = (255, 0, 0)
    m[2:, :2] = (0, 255, 0)
    path = write_image(tmp_path / "m.png", m)
    out = load_mask(path, {(0, 0, 0): 0, "#ff0000": 1, "0,255,0": 2})
    assert out.dtype == np.int64
    assert out[:2].tolist() == [[1] * 4] * 2 and out[2:, :2].tolist() == [[2, 2]] * 2
    assert out[2:, 2:].sum() == 0
    with pytest.raises(DataError, match=r"m.png: mask colours not in color_map: \(0, 255, 0\)"):
        load_mask(path, {(0, 0, 0): 0, (255, 0, 0): 1})
    with pytest.raises(DataError, match="color_map"):
        load_mask(path)
