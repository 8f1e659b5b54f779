"""A real pyramidal test slide built from scikit-image's immunohistochemistry image.

:func:`make_ihc_slide` mirrors and tiles ``skimage.data.immunohistochemistry()`` (512², an IHC
section: hematoxylin nuclei, brown DAB) to ``size × size``, writes it as a tiled pyramidal TIFF in
Aperio SVS layout (baseline, thumbnail, reduced levels; ``MPP`` in the ImageDescription and the
TIFF resolution tags), which both tiffslide and OpenSlide read, and writes its labels as Aperio
XML, QuPath GeoJSON and a class-map YAML. The labels come from colour deconvolution
(:func:`ihc_labels`, the rule of the IHC demo): 0 background, 1 hematoxylin, 2 DAB; regions of
``min_region_px`` pixels or fewer are merged into their surroundings so the traced polygons stay
few. Used by the tests, the benchmark and the docs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionforge.errors import ConfigError
from visionforge.slides.classmap import ClassMap, ClassSpec

IHC_CLASSES = ("background", "hematoxylin", "DAB")
IHC_COLORS = ((255, 255, 255), (40, 60, 200), (150, 90, 20))


@dataclass(frozen=True)
class SyntheticSlide:
    """Paths written by :func:`make_ihc_slide` and the level-0 label array (``uint8``)."""

    slide: Path
    xml: Path | None
    geojson: Path | None
    class_map_path: Path | None
    labels: np.ndarray
    mpp: float | None
    class_map: ClassMap


def ihc_class_map() -> ClassMap:
    """Classes of the IHC slide; unannotated pixels are background (whitespace)."""
    specs = tuple(ClassSpec(n, i, c, (n,)) for i, (n, c) in enumerate(zip(IHC_CLASSES, IHC_COLORS, strict=True)))
    return ClassMap(specs, ("DAB", "hematoxylin", "background"), "background", "background")


def ihc_labels(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """0 background, 1 hematoxylin, 2 DAB by colour deconvolution (``rgb2hed``) and Otsu.

    H and DAB densities are smoothed (Gaussian, ``sigma`` px); DAB where its density is above
    its Otsu threshold and above the H density, hematoxylin where only H is above threshold.
    """
    from skimage import color, filters

    hed = color.rgb2hed(image[..., :3])
    h = filters.gaussian(hed[..., 0], sigma=sigma)
    d = filters.gaussian(hed[..., 2], sigma=sigma)
    labels = np.zeros(h.shape, dtype=np.uint8)
    labels[h > filters.threshold_otsu(h)] = 1
    labels[(d > filters.threshold_otsu(d)) & (d > h)] = 2
    return labels


def merge_small_regions(labels: np.ndarray, max_px: int) -> np.ndarray:
    """Labels with every connected region of ``max_px`` pixels or fewer given its nearest label."""
    from scipy import ndimage
    from skimage import measure

    if max_px <= 0:
        return labels
    small = np.zeros(labels.shape, dtype=bool)
    for value in np.unique(labels):
        comp = measure.label(labels == value, connectivity=1)
        sizes = np.bincount(comp.ravel())
        small |= (sizes[comp] <= max_px) & (comp > 0)
    if not small.any() or small.all():
        return labels
    _, (iy, ix) = ndimage.distance_transform_edt(small, return_indices=True)
    return labels[iy, ix]


def mirror_tile(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` tiled to ``size × size`` with mirrored copies, so there are no seams."""
    block = np.concatenate([array, array[:, ::-1]], axis=1)
    block = np.concatenate([block, block[::-1]], axis=0)
    reps = (-(-size // block.shape[0]), -(-size // block.shape[1])) + (1,) * (array.ndim - 2)
    return np.ascontiguousarray(np.tile(block, reps)[:size, :size])


def write_pyramid_tiff(path: str | Path, image: np.ndarray, mpp: float | None = 0.5,
                       levels: Sequence[int] = (1, 4, 16), tile: int = 256) -> Path:
    """Write RGB ``image`` as a tiled pyramidal TIFF in Aperio SVS layout (zlib tiles).

    Levels are area-averaged (``levels[0]`` must be 1); ``mpp=None`` writes no resolution.
    """
    import tifffile
    from PIL import Image

    from visionforge.io import atomic_write

    if not levels or levels[0] != 1 or list(levels) != sorted(set(levels)):
        raise ConfigError(f"levels={list(levels)} must start at 1 and increase")
    height, width = image.shape[:2]
    desc = (f"Aperio Image Library v12.0.0 \n{width}x{height} [0,0 {width}x{height}] "
            f"({tile}x{tile}) visionforge synthetic|AppMag = 20")
    desc += f"|MPP = {mpp}" if mpp else ""
    with atomic_write(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=image.size > 2**31) as tw:
        for i, ds in enumerate(levels):
            level = image if ds == 1 else np.asarray(
                Image.fromarray(image).resize((width // ds, height // ds), Image.Resampling.BOX))
            res = {"resolution": (1e4 / (mpp * ds), 1e4 / (mpp * ds)), "resolutionunit": "CENTIMETER"} if mpp else {}
            tw.write(level, tile=(tile, tile), photometric="rgb", compression="zlib",
                     description=desc if i == 0 else None, metadata=None, **res)
            if i == 0:  # SVS: the second directory is a stripped thumbnail
                thumb_ds = max(1, max(width, height) // 1024)
                thumb = np.asarray(Image.fromarray(image).resize(
                    (max(1, width // thumb_ds), max(1, height // thumb_ds)), Image.Resampling.BOX))
                tw.write(thumb, photometric="rgb", compression="zlib", metadata=None)
    return Path(path)


def make_ihc_slide(path: str | Path, size: int = 4096, mpp: float | None = 0.5,
                   levels: Sequence[int] = (1, 4, 16), *, tile: int = 256, annotations: bool = True,
                   min_region_px: int = 64, simplify: float = 0.5) -> SyntheticSlide:
    """Write the IHC slide at ``path`` and (``annotations=True``) its ``.xml``, ``.geojson``
    and ``_classes.yaml`` beside it; return the paths and the level-0 labels.

    ``simplify`` is the polygon simplification tolerance in pixels (0: exact pixel outlines).
    """
    from skimage import data

    from visionforge.slides.annotations import write_aperio_xml, write_geojson
    from visionforge.slides.rasterize import mask_to_annotations

    if size < 512 or any(size % ds for ds in levels):
        raise ConfigError(f"size={size} must be ≥ 512 and divisible by every level {list(levels)}")
    base = data.immunohistochemistry()
    labels = mirror_tile(merge_small_regions(ihc_labels(base), min_region_px), size)
    slide = write_pyramid_tiff(path, mirror_tile(base, size), mpp, levels, tile)
    cmap = ihc_class_map()
    xml = geojson = cmap_path = None
    if annotations:
        anns = mask_to_annotations(labels, cmap, simplify=simplify)
        stem = slide.with_suffix("")
        xml = write_aperio_xml(anns, stem.with_suffix(".xml"))
        geojson = write_geojson(anns, stem.with_suffix(".geojson"))
        cmap_path = cmap.save(stem.parent / f"{stem.name}_classes.yaml")
    return SyntheticSlide(slide, xml, geojson, cmap_path, labels, mpp, cmap)
