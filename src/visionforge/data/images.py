"""Decoding image and mask files into arrays with one documented rule.

Decoding rule (every image dataset in visionforge follows it):

* ``.tif``/``.tiff`` files are read with tifffile (any bit depth, any number of
  channels); every other format (png, jpg, jpeg, bmp) with Pillow. (``torchvision.io``
  decoding would be 10-40 % faster but is deprecated since torchvision 0.29.)
* Channels: the output has ``channels`` channels (default 3).
  Grayscale is repeated to 3 channels; an alpha channel is dropped (the colour
  values are kept as stored, not composited); for ``channels=1`` colour images
  become luminance (ITU-R 601-2: 0.299 R + 0.587 G + 0.114 B).
  Images with more channels than asked for (e.g. 4-band TIFF with ``channels=3``)
  keep the first ``channels`` bands. ``channels=None`` keeps the file's own
  count (alpha dropped).
* Values: integers are scaled by the maximum of their dtype (uint8 / 255,
  uint16 / 65535, ...), floats are clipped to [0, 1]. The dataset output is
  float32 ``[C, H, W]`` in [0, 1]. 8-bit images stay uint8 until after the
  transforms (cheaper augmentation); :func:`to_float_image` finishes the job.

Masks are single-channel class-index images (uint8/uint16 PNG or TIFF), or
RGB colour masks mapped to class indices with a colour -> class map.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "TIFF_EXTENSIONS",
    "is_image_file",
    "list_images",
    "read_array",
    "decode_image",
    "load_image",
    "to_float_image",
    "load_mask",
    "parse_color_map",
    "image_shape",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
TIFF_EXTENSIONS = (".tif", ".tiff")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` has a supported image extension (case-insensitive)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def list_images(directory: str | os.PathLike[str]) -> list[Path]:
    """Sorted image files directly inside ``directory`` (hidden files ignored)."""
    d = Path(directory)
    return sorted(
        p for p in d.iterdir() if p.is_file() and not p.name.startswith(".") and is_image_file(p)
    )


def read_array(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a file into a numpy array ``[H, W]`` or ``[H, W, C]`` in its stored dtype.

    Raises :class:`DataError` naming the file and the reason when it cannot be decoded.
    """
    p = Path(path)
    try:
        if p.suffix.lower() in TIFF_EXTENSIONS:
            import tifffile

            arr = tifffile.imread(p)
            # multi-page/planar TIFFs: take the first page, channels last
            if arr.ndim == 3 and arr.shape[0] in (1, 2, 3, 4) and arr.shape[-1] not in (1, 2, 3, 4):
                arr = np.moveaxis(arr, 0, -1)
            elif arr.ndim > 3:
                arr = arr.reshape(-1, *arr.shape[-3:])[0]
        else:
            from PIL import Image

            with Image.open(p) as im:
                im.load()
                if im.mode == "P":  # palette images: decode to real colours (or alpha)
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                elif im.mode in ("I;16", "I;16B", "I;16L"):
                    return np.asarray(im).astype(np.uint16)
                elif im.mode == "CMYK":
                    im = im.convert("RGB")
                elif im.mode == "1":
                    im = im.convert("L")
                arr = np.array(im)  # writable copy: torch.from_numpy must not see read-only memory
                if arr.dtype == np.int32:  # Pillow opens 16-bit PNGs as mode "I"
                    arr = arr.astype(np.uint16) if arr.min() >= 0 and arr.max() < 65536 else arr
    except FileNotFoundError:
        raise DataError(f"{p}: file not found") from None
    except DataError:
        raise
    except Exception as exc:  # Pillow/tifffile raise many types for corrupt files
        raise DataError(
            f"{p}: cannot decode image ({type(exc).__name__}: {exc}); "
            "fix or remove the file, or use on_bad_image='skip'"
        ) from None
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DataError(f"{p}: unsupported image shape {arr.shape}; expected H x W or H x W x C")
    return arr


def _fix_channels(arr: np.ndarray, channels: int | None, path: Path) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    c = arr.shape[2]
    if c in (2, 4):  # gray+alpha or RGB+alpha: drop alpha
        arr = arr[:, :, : c - 1]
        c -= 1
    if channels is None or c == channels:
        return arr
    if channels == 1 and c >= 3:
        luma = arr[:, :, :3].astype(np.float32) @ _LUMA
        if np.issubdtype(arr.dtype, np.integer):
            luma = np.clip(np.rint(luma), 0, np.iinfo(arr.dtype).max).astype(arr.dtype)
        return luma[:, :, None]
    if c == 1:
        return np.repeat(arr, channels, axis=2)
    if c > channels:
        return arr[:, :, :channels]
    raise DataError(f"{path}: image has {c} channels, cannot make {channels}")


def decode_image(path: str | os.PathLike[str], channels: int | None = 3) -> Any:
    """Decode to a ``torch.Tensor [C, H, W]``: uint8 for 8-bit files, float32 in [0, 1] otherwise."""
    import torch

    p = Path(path)
    arr = _fix_channels(read_array(p), channels, p)
    if arr.dtype != np.uint8:
        arr = _scale_to_unit(arr)
    # a channels-last view, not a CHW copy: torch's uint8 resize kernels are fastest on it
    return torch.from_numpy(arr).permute(2, 0, 1)


def _scale_to_unit(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def to_float_image(image: Any) -> Any:
    """Return ``image`` (a tensor) as a plain float32 tensor; integer dtypes scaled to [0, 1]."""
    import torch

    image = image.as_subclass(torch.Tensor) if isinstance(image, torch.Tensor) else image
    if image.is_floating_point():
        return image.float()
    if image.dtype == torch.uint8:
        return image.float().div_(255.0)
    return image.float().div_(float(torch.iinfo(image.dtype).max))


def load_image(path: str | os.PathLike[str], channels: int | None = 3) -> Any:
    """Decode ``path`` to a float32 tensor ``[C, H, W]`` in [0, 1] (the documented rule)."""
    return to_float_image(decode_image(path, channels))


def parse_color_map(color_map: Mapping[Any, int]) -> dict[tuple[int, int, int], int]:
    """Normalise a colour -> class map; keys may be ``(r, g, b)``, ``"r,g,b"`` or ``"#rrggbb"``."""
    out: dict[tuple[int, int, int], int] = {}
    for key, cls in color_map.items():
        if isinstance(key, str):
            k = key.strip()
            if k.startswith("#") and len(k) == 7:
                rgb = tuple(int(k[i : i + 2], 16) for i in (1, 3, 5))
            else:
                rgb = tuple(int(v) for v in k.replace(" ", "").split(","))
        else:
            rgb = tuple(int(v) for v in key)
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise DataError(f"colour map key {key!r} is not an RGB colour (r, g, b in 0..255)")
        out[rgb] = int(cls)  # type: ignore[index]
    return out


def load_mask(
    path: str | os.PathLike[str],
    color_map: Mapping[Any, int] | None = None,
) -> np.ndarray:
    """Read a mask file to an int64 array ``[H, W]`` of class indices.

    Single-channel masks are taken as class indices. Colour masks need
    ``color_map``; a colour that is not in the map is an error naming the file.
    """
    p = Path(path)
    arr = read_array(p)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[:, :, : arr.shape[2] - 1]  # drop alpha
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        if color_map is not None and arr.dtype == np.uint8:
            # a grayscale colour mask: map gray levels (r=g=b) through the colour map
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        else:
            if np.issubdtype(arr.dtype, np.floating):
                if not np.all(np.mod(arr, 1) == 0):
                    raise DataError(
                        f"{p}: mask has non-integer values; masks must hold class indices"
                    )
            return arr.astype(np.int64)
    if color_map is None:
        raise DataError(
            f"{p}: mask has {arr.shape[2]} channels; class-index masks must be single-channel, "
            "or pass color_map={(r, g, b): class_index, ...} for RGB colour masks"
        )
    cmap = parse_color_map(color_map)
    rgb = arr[:, :, :3].astype(np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    keys = np.array([(r << 16) | (g << 8) | b for (r, g, b) in cmap], dtype=np.int64)
    vals = np.array(list(cmap.values()), dtype=np.int64)
    order = np.argsort(keys)
    keys, vals = keys[order], vals[order]
    pos = np.clip(np.searchsorted(keys, code), 0, len(keys) - 1)
    found = keys[pos] == code
    if not found.all():
        bad = np.unique(code[~found])[:5].tolist()
        colours = ", ".join(str(((c >> 16) & 255, (c >> 8) & 255, c & 255)) for c in bad)
        raise DataError(f"{p}: mask colours not in color_map: {colours}; add them to the map")
    return vals[pos]


def image_shape(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header without decoding pixels."""
    p = Path(path)
    try:
        if p.suffix.lower() in TIFF_EXTENSIONS:
            import tifffile

            with tifffile.TiffFile(p) as tf:
                page = tf.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        from PIL import Image

        with Image.open(p) as im:
            return int(im.size[1]), int(im.size[0])
    except FileNotFoundError:
        raise DataError(f"{p}: file not found") from None
    except Exception as exc:
        raise DataError(f"{p}: cannot read image header ({type(exc).__name__}: {exc})") from None


def oversized_image(path: str | os.PathLike[str]) -> str | None:
    """The reason ``path`` is a decompression bomb (more pixels than Pillow's
    ``Image.MAX_IMAGE_PIXELS``), read from the header alone; ``None`` otherwise.

    Cheap enough to run on every file when a dataset is set up, so such a file is named
    before training starts instead of failing when it is first read mid-epoch. Files whose
    header cannot be read are left to the decoder (and its ``on_bad_image`` policy).
    """
    import warnings

    from PIL import Image

    p = Path(path)
    limit = Image.MAX_IMAGE_PIXELS
    if limit is None or p.suffix.lower() in TIFF_EXTENSIONS:  # TIFFs: tifffile, no pixel guard
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        width, height = _bomb_size(p)
    except Exception:
        return None
    if width * height <= limit:
        return None
    return (
        f"{p}: image of {width} x {height} = {width * height} pixels exceeds the decompression-"
        f"bomb limit of {limit} pixels (PIL.Image.MAX_IMAGE_PIXELS); remove or downscale the "
        "file (or raise PIL.Image.MAX_IMAGE_PIXELS if you trust it)"
    )


def _bomb_size(p: Path) -> tuple[int, int]:
    # Pillow refuses to open files past twice its limit: read the size with the guard off.
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(p) as im:
            return im.size
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def check_image_headers(
    paths: list[Path], on_bad_image: str = "error"
) -> tuple[list[Path], list[dict[str, str]]]:
    """Run :func:`oversized_image` on ``paths``: raise :class:`DataError` for the first bad
    one (``"error"``) or return ``(good paths, skipped records)`` (``"skip"``)."""
    good: list[Path] = []
    skipped: list[dict[str, str]] = []
    for path in paths:
        reason = oversized_image(path)
        if reason is None:
            good.append(path)
        elif on_bad_image == "error":
            raise DataError(reason)
        else:
            skipped.append({"path": str(path), "reason": reason})
    return good, skipped


def verify_image(path: str | os.PathLike[str]) -> str | None:
    """Fully decode ``path``; return ``None`` when it is readable, else the reason."""
    bomb = oversized_image(path)  # before decoding: never decode a bomb to find out
    if bomb is not None:
        return bomb
    try:
        read_array(path)
    except DataError as exc:
        return str(exc)
    return None
