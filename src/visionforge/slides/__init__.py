"""Whole-slide images: readers, annotations, class maps, label masks and tissue masks.

Needs the ``slides`` extra (``pip install 'visionforge[slides]'``: tiffslide, openslide-python,
openslide-bin, shapely); those libraries are imported lazily, so importing this package is cheap.

* :mod:`~visionforge.slides.reader` — :func:`open_slide` → :class:`SlideReader`
* :mod:`~visionforge.slides.annotations` — Aperio XML / QuPath GeoJSON ⇄ :class:`Annotation`
* :mod:`~visionforge.slides.classmap` — layer → class YAML, overlap order, background
* :mod:`~visionforge.slides.rasterize` — annotations ⇄ label masks
* :mod:`~visionforge.slides.tissue` — tissue/background mask, Otsu cutoff, preview PNG
* :mod:`~visionforge.slides.synthetic` — a real pyramidal test slide from scikit-image's IHC image
"""

from __future__ import annotations

from visionforge.slides.annotations import (
    Annotation,
    AnnotationSet,
    read_annotations,
    read_aperio_xml,
    read_geojson,
    write_annotations,
    write_aperio_xml,
    write_geojson,
)
from visionforge.slides.classmap import ClassMap, ClassSpec, load_class_map
from visionforge.slides.rasterize import clip_to_slide, mask_to_annotations, rasterize, trace_mask
from visionforge.slides.reader import LevelChoice, SlideReader, open_slide
from visionforge.slides.tissue import TissueMask, tissue_mask, write_tissue_preview

__all__ = [
    "Annotation", "AnnotationSet", "ClassMap", "ClassSpec", "LevelChoice", "SlideReader",
    "TissueMask", "clip_to_slide", "load_class_map", "mask_to_annotations", "open_slide",
    "rasterize", "read_annotations", "read_aperio_xml", "read_geojson", "tissue_mask",
    "trace_mask", "write_annotations", "write_aperio_xml", "write_geojson", "write_tissue_preview",
]
