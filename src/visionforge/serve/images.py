"""Decode uploaded images safely: allowed formats only, pixel limit checked before decoding."""

from __future__ import annotations

import io

import numpy as np
from fastapi import HTTPException

__all__ = ["decode_image", "ALLOWED_FORMATS"]

# Only formats PIL decodes itself; EPS/PDF etc. would hand the bytes to external programs.
ALLOWED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF")


def decode_image(data: bytes, filename: str | None, max_pixels: int) -> np.ndarray:
    """Bytes of an uploaded file -> ``HxW``/``HxWxC`` array, or an ``HTTPException``.

    415: not an image in an allowed format; 413: more than ``max_pixels`` pixels (checked
    from the header, before any pixel is decompressed); 400: empty or corrupt file.
    """
    from PIL import Image, UnidentifiedImageError

    name = filename or "upload"
    if not data:
        raise HTTPException(400, f"{name}: empty file")
    try:
        im = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        raise HTTPException(
            415, f"{name}: not a supported image; send one of {', '.join(ALLOWED_FORMATS)}"
        ) from None
    except Image.DecompressionBombError as exc:
        raise HTTPException(413, f"{name}: image too large ({exc})") from None
    except Exception as exc:  # malformed headers raise assorted errors inside PIL
        raise HTTPException(400, f"{name}: corrupt image header ({type(exc).__name__})") from None
    with im:
        w, h = im.size
        if w <= 0 or h <= 0:
            raise HTTPException(400, f"{name}: image has no pixels ({w}x{h})")
        if w * h > max_pixels:
            raise HTTPException(
                413, f"{name}: image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels}"
            )
        try:
            im.load()
            if im.mode not in ("L", "RGB", "RGBA", "I;16", "I", "F"):
                im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
            arr = np.asarray(im)
        except Image.DecompressionBombError as exc:
            raise HTTPException(413, f"{name}: image too large ({exc})") from None
        except Exception as exc:  # truncated or corrupt pixel data
            raise HTTPException(
                400, f"{name}: corrupt image data ({type(exc).__name__}: {exc})"
            ) from None
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise HTTPException(400, f"{name}: unexpected image shape {list(arr.shape)}")
    return arr
