"""Real detection sets built from scikit-image's sample images (nothing downloaded or bundled).

- :func:`build_ihc_nuclei`: nuclei of ``ihc.png`` (immunohistochemistry, 512 x 512). The
  hematoxylin channel of :func:`skimage.color.rgb2hed` is smoothed, its local background
  removed (white top-hat) and Otsu-thresholded (inside DAB glands, hematoxylin minus half
  the DAB, with its own threshold), touching nuclei are split by a
  distance-transform watershed (h-maxima markers), and every connected component becomes
  one box (about 350 nuclei). Training crops come from the left 320
  columns, test crops from the right 128 columns (the 64 columns between are unused, so no
  nucleus is in both).
- :func:`build_coins`: the 24 coins of ``coins.png`` (watershed on the Sobel elevation map,
  as in scikit-image's gallery), for quick tests.

Both write a COCO detection layout: ``images/<split>/*.png`` and
``annotations/instances_<split>.json`` (one category).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.io import atomic_write_bytes, atomic_write_json

__all__ = ["nuclei_labels", "coins_labels", "build_ihc_nuclei", "build_coins", "write_coco_split"]


def nuclei_labels(rgb: np.ndarray, min_area: int = 30, sigma: float = 1.5,
                  split_depth: float = 0.5, background_radius: int = 10,
                  dab_weight: float = 0.5, gland_sigma: float = 6.0,
                  gland_dab: float = 0.03) -> np.ndarray:
    """Label image of the nuclei in an RGB IHC image.

    Hematoxylin (``rgb2hed``) smoothed by a Gaussian of ``sigma`` pixels, then a white
    top-hat of radius ``background_radius`` removes the local background before Otsu's
    threshold: the brown (DAB) cytoplasm also carries some hematoxylin signal, and one global
    threshold on the raw channel merges whole stained glands into a few huge blobs. Touching
    nuclei are split by a distance-transform watershed whose markers are the distance maxima
    at least ``split_depth`` pixels above the saddle to their neighbour (h-maxima): a neck
    splits two nuclei, while an elongated nucleus, whose width only wobbles along its length,
    stays whole (local maxima a fixed distance apart cut such nuclei into two or three).
    Objects under ``min_area`` pixels are dropped.

    Inside DAB-stained glands (DAB smoothed by ``gland_sigma`` pixels, above its Otsu
    threshold and above ``gland_dab``, so an unstained image has none) the brown cytoplasm
    carries hematoxylin too, and nuclei barely stand out of it: there the channel is
    hematoxylin minus ``dab_weight`` x DAB, with its own Otsu threshold, and gland nuclei
    come out whole instead of as fragments. The stroma keeps the plain hematoxylin threshold
    (the weighted channel loses its faint nuclei). ``dab_weight=0`` turns this off.
    """
    from scipy import ndimage as ndi
    from skimage import filters, measure, morphology, segmentation
    from skimage.color import rgb2hed

    hed = rgb2hed(rgb)
    hema = filters.gaussian(hed[..., 0], sigma)
    disk = morphology.disk(background_radius)
    top = morphology.white_tophat(hema, disk)
    fg = top > filters.threshold_otsu(top)
    if dab_weight > 0:
        dab = hed[..., 2]
        glands = filters.gaussian(dab, gland_sigma)
        glands = glands > max(filters.threshold_otsu(glands), gland_dab)
        if glands.any():
            weighted = morphology.white_tophat(hema - dab_weight * filters.gaussian(dab, sigma),
                                               disk)
            fg[glands] = weighted[glands] > filters.threshold_otsu(weighted[glands])
    fg = ndi.binary_opening(fg, morphology.disk(1))
    fg = morphology.remove_small_objects(ndi.binary_fill_holes(fg), max_size=min_area)
    dist = ndi.distance_transform_edt(fg)
    smooth = filters.gaussian(dist, 1.0, preserve_range=True)
    markers = measure.label(morphology.h_maxima(smooth, split_depth))
    return segmentation.watershed(-dist, markers, mask=fg)


def coins_labels(gray: np.ndarray, min_area: int = 30) -> np.ndarray:
    """Label image of the coins in ``coins.png`` (Sobel elevation map + marker watershed)."""
    from scipy import ndimage as ndi
    from skimage import filters, measure, morphology, segmentation

    markers = np.zeros_like(gray, dtype=np.int32)
    markers[gray < 30], markers[gray > 150] = 1, 2
    coins = ndi.binary_fill_holes(segmentation.watershed(filters.sobel(gray), markers) == 2)
    return measure.label(morphology.remove_small_objects(coins, max_size=min_area))


def _boxes(labels: np.ndarray, min_area: int) -> list[list[float]]:
    """COCO ``[x, y, w, h]`` of every labelled region with at least ``min_area`` pixels."""
    from skimage import measure

    out = []
    for p in measure.regionprops(labels):
        if p.area >= min_area:
            r0, c0, r1, c1 = p.bbox
            out.append([float(c0), float(r0), float(c1 - c0), float(r1 - r0)])
    return out


def _png(array: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def write_coco_split(root: Path, split: str, crops: list[tuple[str, np.ndarray, np.ndarray]],
                     category: str, min_area: int) -> dict[str, Any]:
    """Write ``crops`` (name, RGB, label image) as ``images/<split>/`` + a COCO JSON."""
    images, anns = [], []
    for i, (name, rgb, labels) in enumerate(crops, 1):
        atomic_write_bytes(root / "images" / split / name, _png(rgb))
        images.append({"id": i, "file_name": name, "width": int(rgb.shape[1]),
                       "height": int(rgb.shape[0])})
        for box in _boxes(labels, min_area):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "bbox": box,
                         "area": box[2] * box[3], "iscrowd": 0})
    coco = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": category}]}
    atomic_write_json(root / "annotations" / f"instances_{split}.json", coco)
    return {"images": len(images), "boxes": len(anns)}


def _tiles(rgb: np.ndarray, labels: np.ndarray, cols: tuple[int, int], size: int, step: int,
           prefix: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    c0, c1 = cols
    out = []
    for r in range(0, rgb.shape[0] - size + 1, step):
        for c in range(c0, c1 - size + 1, step):
            out.append((f"{prefix}_r{r:03d}_c{c:03d}.png", rgb[r:r + size, c:c + size],
                        labels[r:r + size, c:c + size]))
    return out


def build_ihc_nuclei(root: str | os.PathLike[str], *, crop: int = 128, train_step: int = 64,
                     min_area: int = 20, val: bool = False,
                     train_crop: int | None = None) -> dict[str, Any]:
    """Write the IHC nuclei COCO set under ``root``; return counts per split.

    Train: ``crop``-pixel tiles every ``train_step`` pixels over columns 0-319; test:
    non-overlapping ``crop`` tiles over columns 384-511. With ``val``, the bottom ``crop``
    rows of columns 0-319 become a validation split (tiles every ``train_step`` columns) and
    training tiles stay above them (for choosing a score threshold on data the model did
    not train on). ``train_crop`` (default ``crop``) sizes the training tiles only: larger
    tiles let random training crops shift by any number of pixels. A nucleus cut by a tile
    border keeps the box of its visible part when that part has at least ``min_area`` pixels.
    """
    from skimage import data

    rgb = data.immunohistochemistry()
    labels = nuclei_labels(rgb)
    root = Path(root)
    height, width = rgb.shape[:2]
    rows = height - crop if val else height
    train = _tiles(rgb[:rows], labels[:rows], (0, 320), train_crop or crop, train_step, "ihc")
    test = _tiles(rgb, labels, (width - 128, width), crop, crop, "ihc")
    out = {"train": write_coco_split(root, "train", train, "nucleus", min_area)}
    if val:
        tiles = _tiles(rgb[rows:], labels[rows:], (0, 320), crop, train_step, f"ihc_val{rows}")
        out["val"] = write_coco_split(root, "val", tiles, "nucleus", min_area)
    out["test"] = write_coco_split(root, "test", test, "nucleus", min_area)
    out["nuclei_in_image"] = int(labels.max())
    return out


def build_coins(root: str | os.PathLike[str], *, crop: int = 160) -> dict[str, Any]:
    """Write the coins COCO set under ``root``: train = four ``crop`` corner tiles, val =
    the whole image (24 coins). RGB copies of the grey image."""
    from skimage import data

    gray = data.coins()
    labels = coins_labels(gray)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    h, w = gray.shape
    corners = [(0, 0), (0, w - crop), (h - crop, 0), (h - crop, w - crop)]
    train = [(f"coins_r{r}_c{c}.png", rgb[r:r + crop, c:c + crop], labels[r:r + crop, c:c + crop])
             for r, c in corners]
    root = Path(root)
    return {"train": write_coco_split(root, "train", train, "coin", 200),
            "val": write_coco_split(root, "val", [("coins.png", rgb, labels)], "coin", 200)}
