"""Aperio XML and QuPath GeoJSON: read, write, holes, repairs, malformed files, round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shapely.geometry import box

from visionforge.errors import DataError
from visionforge.slides.annotations import (
    Annotation,
    read_annotations,
    read_aperio_xml,
    read_geojson,
    write_aperio_xml,
    write_geojson,
)
from visionforge.slides.classmap import ClassMap
from visionforge.slides.rasterize import mask_to_annotations, rasterize

XML = """<?xml version="1.0"?>
<Annotations MicronsPerPixel="0.5">
 <Annotation Id="1" Name="Tumor" LineColor="255">
  <Regions>
   <Region Id="1" NegativeROA="0"><Vertices>
    <Vertex X="10" Y="10"/><Vertex X="110" Y="10"/><Vertex X="110" Y="110"/><Vertex X="10" Y="110"/>
   </Vertices></Region>
   <Region Id="2" NegativeROA="1"><Vertices>
    <Vertex X="40" Y="40"/><Vertex X="60" Y="40"/><Vertex X="60" Y="60"/><Vertex X="40" Y="60"/>
   </Vertices></Region>
  </Regions>
 </Annotation>
 <Annotation Id="2" Name="Stroma" LineColor="65280">
  <Regions>
   <Region Id="1"><Vertices>
    <Vertex X="0" Y="0"/><Vertex X="50" Y="50"/><Vertex X="50" Y="0"/><Vertex X="0" Y="50"/>
   </Vertices></Region>
  </Regions>
 </Annotation>
</Annotations>
"""


def _iou(a, b) -> float:
    return a.intersection(b).area / a.union(b).area


def test_aperio_xml_layers_holes_colours_and_bowtie_repair(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(XML)
    got = read_aperio_xml(path)
    assert got.layers == ["Tumor", "Stroma"]
    tumor = got.annotations[0]
    assert (tumor.layer_id, tumor.color) == (1, (255, 0, 0))  # LineColor is BGR
    assert len(tumor.geometry.interiors) == 1 and tumor.geometry.area == 100 * 100 - 20 * 20
    stroma = got.annotations[1]
    assert stroma.color == (0, 255, 0) and stroma.geometry.is_valid
    assert stroma.geometry.area == pytest.approx(2 * 25 * 50 / 2)  # bow-tie → two triangles
    assert len(got.warnings) == 1 and "'Stroma'" in got.warnings[0] and "make_valid" in got.warnings[0]


@pytest.mark.parametrize("suffix", [".xml", ".geojson"])
def test_write_read_preserves_layers_geometry_holes(tmp_path, suffix):
    donut = box(0, 0, 100, 80).difference(box(20, 20, 40, 40))
    anns = [Annotation("Tumor", donut, 3, (200, 0, 0)),
            Annotation("Fat", box(200, 0, 260, 30), 5, (255, 255, 0))]
    from visionforge.slides.annotations import write_annotations

    path = write_annotations(anns, tmp_path / f"out{suffix}")
    back = read_annotations(path)
    assert [(a.layer, a.layer_id, a.color) for a in back] == [(a.layer, a.layer_id, a.color) for a in anns]
    for a, b in zip(anns, back, strict=True):
        assert _iou(a.geometry, b.geometry) == pytest.approx(1.0)
    assert len(back.annotations[0].geometry.interiors) == 1 and not back.warnings


def test_qupath_geojson_list_multipolygon_and_skips(tmp_path):
    feats = [
        {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [
            [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]],
            [[[20, 0], [30, 0], [30, 10], [20, 10], [20, 0]]]]},
         "properties": {"classification": {"name": "Tumor", "color": [200, 0, 0]}}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]}, "properties": {}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [5, 5], [5, 0], [0, 5], [0, 0]]]}, "properties": {}},
    ]
    path = tmp_path / "q.geojson"
    path.write_text(json.dumps(feats))
    got = read_geojson(path)
    assert got.layers == ["Tumor", "unclassified"]
    assert got.annotations[0].geometry.area == 200 and got.annotations[0].color == (200, 0, 0)
    assert any("Point" in w for w in got.warnings)
    assert any("feature 2" in w and "make_valid" in w for w in got.warnings)


@pytest.mark.parametrize(("name", "text", "match"), [
    ("bad.xml", "<Annotations><Annotation", r"bad\.xml.*malformed XML"),
    ("root.xml", "<Foo/>", r"root\.xml.*<Annotations>"),
    ("vx.xml", '<Annotations><Annotation Id="4" Name="T"><Regions><Region Id="9"><Vertices>'
               '<Vertex X="1"/></Vertices></Region></Regions></Annotation></Annotations>',
     r"vx\.xml.*Annotation Id=4.*Region 9 vertex 0.*no Y"),
    ("bad.geojson", "{not json", r"bad\.geojson.*malformed GeoJSON"),
    ("nogeom.geojson", '{"type": "FeatureCollection", "features": [{"type": "Feature"}]}',
     r"nogeom\.geojson.*feature 0.*geometry"),
    ("coords.geojson", '[{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[1]]}}]',
     r"coords\.geojson.*feature 0.*malformed Polygon"),
    ("x.txt", "", r"x\.txt.*unsupported annotation format"),
])
def test_malformed_files_name_file_and_element(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        read_annotations(path)


@pytest.mark.parametrize("fmt", ["xml", "geojson"])
def test_slide_annotations_round_trip_through_mask(ihc_slide, tmp_path, fmt):
    """file → mask → file → mask keeps every class (IoU ≥ 0.99), and each large region."""
    source = ihc_slide.xml if fmt == "xml" else ihc_slide.geojson
    cmap = ihc_slide.class_map
    first = read_annotations(source)
    assert not first.warnings
    region = (0, 0, 1024, 1024)
    mask = rasterize(first, cmap, region)
    assert (mask == ihc_slide.labels[:1024, :1024]).mean() > 0.99  # the file matches rgb2hed labels
    path = (write_aperio_xml if fmt == "xml" else write_geojson)(
        mask_to_annotations(mask, cmap), tmp_path / f"again.{fmt}")
    again = read_annotations(path)
    mask2 = rasterize(again, cmap, region)
    for spec in cmap.classes:
        a, b = mask == spec.index, mask2 == spec.index
        assert (a & b).sum() / (a | b).sum() >= 0.99, spec.name


@pytest.mark.parametrize("suffix", [".xml", ".geojson"])
def test_region_polygon_round_trip_iou(tmp_path, suffix):
    """One drawn region (ellipse with a hole): file → mask at downsample 2 → file, IoU ≥ 0.99."""
    from shapely import affinity
    from shapely.geometry import Point

    ellipse = affinity.scale(Point(600, 400).buffer(150), 1.6, 1.0)
    region = ellipse.difference(Point(560, 420).buffer(40))
    cmap = ClassMap.from_layers(["background", "Tumor"], background="background")
    path = write_aperio_xml([Annotation("Tumor", region, 2)], tmp_path / "r.xml") if suffix == ".xml" \
        else write_geojson([Annotation("Tumor", region, 2)], tmp_path / "r.geojson")
    mask = rasterize(read_annotations(path), cmap, (0, 0, 1200, 800), downsample=2.0)
    back = read_annotations(write_aperio_xml(
        mask_to_annotations(mask, cmap, downsample=2.0), tmp_path / f"back{suffix}.xml"))
    assert len(back) == 1 and len(back.annotations[0].geometry.interiors) == 1
    assert _iou(region, back.annotations[0].geometry) >= 0.99


def test_mask_trace_is_exact_with_holes_and_islands():
    mask = np.zeros((40, 40), np.uint8)
    mask[5:35, 5:35] = 1
    mask[10:30, 10:30] = 0  # hole
    mask[15:25, 15:25] = 1  # island in the hole
    mask[2, 37] = 2  # one-pixel region of another class
    cmap = ClassMap.from_layers(["bg", "a", "b"], background="bg")
    anns = mask_to_annotations(mask, cmap, downsample=2.0, origin=(100, 50))
    assert sorted(a.layer for a in anns) == ["a", "a", "b"]
    outer = max(anns, key=lambda a: a.geometry.area)
    assert len(outer.geometry.interiors) == 1
    assert outer.geometry.bounds == pytest.approx((110, 60, 170, 120))  # pixel edges
    back = rasterize(anns, cmap, (100, 50, 80, 80), downsample=2.0)
    np.testing.assert_array_equal(back, mask)
