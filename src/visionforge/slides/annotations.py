"""Slide annotations: Aperio ImageScope XML and QuPath GeoJSON, read and written.

Both formats load into one model: an :class:`AnnotationSet` of :class:`Annotation` objects, one
per region, each with its layer (Aperio ``Annotation`` element / QuPath classification), layer id,
colour and a shapely ``Polygon``/``MultiPolygon`` in level-0 pixel coordinates (x right, y down).

* Aperio XML: ``Annotations/Annotation(Id, Name, LineColor)/Regions/Region(NegativeROA)/
  Vertices/Vertex(X, Y)``. A region with ``NegativeROA="1"`` is a hole cut out of the layer's
  positive regions. ``LineColor`` is a decimal BGR integer (``R + 256·G + 65536·B``).
* QuPath GeoJSON: a ``FeatureCollection``, a list of features or one feature; ``Polygon`` and
  ``MultiPolygon`` geometries (holes kept); layer = ``properties.classification.name`` (else
  ``properties.name``), colour = ``properties.classification.color`` ``[r, g, b]``.

Invalid polygons (self-intersections, bow-ties) are repaired with ``shapely.make_valid``; each
repair is listed in ``AnnotationSet.warnings`` (and logged) naming the layer and region.
Malformed files raise :class:`DataError` naming the file and the element.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionforge.errors import DataError
from visionforge.io import atomic_write_text

log = logging.getLogger(__name__)

Color = tuple[int, int, int]
XML_SUFFIXES = (".xml",)
GEOJSON_SUFFIXES = (".geojson", ".json")


@dataclass(frozen=True)
class Annotation:
    """One annotated region: ``geometry`` is a shapely Polygon or MultiPolygon (level-0 px)."""

    layer: str
    geometry: Any
    layer_id: int | None = None
    color: Color | None = None


@dataclass
class AnnotationSet:
    """The annotations of one file, and the warnings raised while reading it."""

    annotations: list[Annotation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source: Path | None = None

    def __iter__(self) -> Iterator[Annotation]:
        return iter(self.annotations)

    def __len__(self) -> int:
        return len(self.annotations)

    @property
    def layers(self) -> list[str]:
        """Layer names in order of first appearance."""
        return list(dict.fromkeys(a.layer for a in self.annotations))


# -- geometry helpers ---------------------------------------------------------------------------
def polygonal(geom: Any) -> Any:
    """The polygonal part of ``geom`` (Polygon/MultiPolygon, possibly empty)."""
    from shapely.geometry import MultiPolygon, Polygon

    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts: list[Polygon] = []
    for g in getattr(geom, "geoms", []):
        sub = polygonal(g)
        if not sub.is_empty:
            parts.extend(sub.geoms if isinstance(sub, MultiPolygon) else [sub])
    if not parts:
        return Polygon()
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def repair(geom: Any, where: str, warnings: list[str]) -> Any:
    """``geom`` made valid (``shapely.make_valid``, polygonal part kept); a warning if repaired."""
    import shapely

    if geom.is_valid:
        return geom
    reason = shapely.is_valid_reason(geom)
    fixed = polygonal(shapely.make_valid(geom))
    msg = f"{where}: invalid polygon ({reason}) repaired with make_valid"
    if fixed.is_empty:
        msg = f"{where}: invalid polygon ({reason}) has no area after repair; skipped"
    warnings.append(msg)
    log.warning(msg)
    return fixed


def _parts(geom: Any) -> list[Any]:
    return list(geom.geoms) if hasattr(geom, "geoms") else [geom]


# -- Aperio XML ---------------------------------------------------------------------------------
def bgr_int_to_rgb(value: int) -> Color:
    """Aperio ``LineColor`` (decimal ``0x00BBGGRR``) → ``(r, g, b)``."""
    return value & 255, (value >> 8) & 255, (value >> 16) & 255


def rgb_to_bgr_int(color: Color) -> int:
    r, g, b = color
    return int(r) + 256 * int(g) + 65536 * int(b)


def _float_attr(elem: Any, name: str, path: Path, where: str) -> float:
    value = elem.get(name)
    if value is None:
        raise DataError(f"{path}: {where}: <{elem.tag}> has no {name} attribute")
    try:
        return float(value)
    except ValueError:
        raise DataError(f"{path}: {where}: <{elem.tag}> {name}={value!r} is not a number") from None


def _xml_ring(region: Any, path: Path, where: str) -> list[tuple[float, float]]:
    vertices = region.find("Vertices")
    if vertices is None:
        raise DataError(f"{path}: {where}: <Region> has no <Vertices> element")
    return [(_float_attr(v, "X", path, f"{where} vertex {i}"), _float_attr(v, "Y", path, f"{where} vertex {i}"))
            for i, v in enumerate(vertices.findall("Vertex"))]


def _xml_layer(elem: Any, index: int, path: Path, result: AnnotationSet) -> None:
    from shapely.geometry import Polygon
    from shapely.ops import unary_union

    layer_id = int(elem.get("Id", index + 1)) if str(elem.get("Id", "")).lstrip("-").isdigit() else index + 1
    name = elem.get("Name") or f"layer {layer_id}"
    color = bgr_int_to_rgb(int(elem.get("LineColor"))) if str(elem.get("LineColor", "")).isdigit() else None
    positives, holes = [], []
    for j, region in enumerate(elem.iter("Region")):
        where = f"Annotation Id={layer_id} ({name!r}) Region {region.get('Id', j + 1)}"
        ring = _xml_ring(region, path, where)
        if len(ring) < 3:
            result.warnings.append(f"{path}: {where}: fewer than 3 vertices; skipped")
            continue
        geom = repair(Polygon(ring), f"{path}: {where}", result.warnings)
        if geom.is_empty:
            continue
        negative = str(region.get("NegativeROA", "0")).strip() in ("1", "true", "True")
        (holes if negative else positives).append(geom)
    cut = unary_union(holes) if holes else None
    for geom in positives:
        if cut is not None and geom.intersects(cut):
            geom = polygonal(geom.difference(cut))
        if not geom.is_empty:
            result.annotations.append(Annotation(name, geom, layer_id, color))


def read_aperio_xml(path: str | Path) -> AnnotationSet:
    """Read an Aperio ImageScope XML file (one :class:`Annotation` per positive region)."""
    import xml.etree.ElementTree as ET

    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except FileNotFoundError:
        raise DataError(f"{p}: annotation file not found") from None
    except ET.ParseError as exc:
        raise DataError(f"{p}: malformed XML ({exc})") from None
    if root.tag != "Annotations":
        raise DataError(f"{p}: root element is <{root.tag}>, expected <Annotations> (Aperio XML)")
    result = AnnotationSet(source=p)
    for i, elem in enumerate(root.findall("Annotation")):
        _xml_layer(elem, i, p, result)
    return result


def _xml_region(regions: Any, ring: Any, rid: int, negative: bool) -> None:
    import xml.etree.ElementTree as ET

    region = ET.SubElement(regions, "Region", Id=str(rid), Type="0",
                           NegativeROA="1" if negative else "0")
    vertices = ET.SubElement(region, "Vertices")
    for x, y in list(ring.coords)[:-1]:  # Aperio rings are implicitly closed
        ET.SubElement(vertices, "Vertex", X=f"{x:.6g}", Y=f"{y:.6g}", Z="0")


def write_aperio_xml(annotations: Iterable[Annotation], path: str | Path) -> Path:
    """Write annotations as Aperio XML: one ``Annotation`` per layer, holes as negative regions."""
    import xml.etree.ElementTree as ET

    root = ET.Element("Annotations", MicronsPerPixel="0")
    layers: dict[str, Any] = {}
    counters: dict[str, int] = {}
    for ann in annotations:
        if ann.layer not in layers:
            lid = ann.layer_id if ann.layer_id is not None else len(layers) + 1
            attrs = {"Id": str(lid), "Name": ann.layer, "ReadOnly": "0", "LineColorReadOnly": "0",
                     "Visible": "1", "Selected": "0", "LineColor": str(rgb_to_bgr_int(ann.color or (0, 255, 0)))}
            layer = ET.SubElement(root, "Annotation", attrs)
            ET.SubElement(layer, "RegionAttributeHeaders")
            layers[ann.layer] = ET.SubElement(layer, "Regions")
            counters[ann.layer] = 0
        for poly in _parts(ann.geometry):
            if poly.is_empty:
                continue
            for ring, negative in [(poly.exterior, False)] + [(r, True) for r in poly.interiors]:
                counters[ann.layer] += 1
                _xml_region(layers[ann.layer], ring, counters[ann.layer], negative)
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    return atomic_write_text(path, '<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n")


# -- QuPath GeoJSON -----------------------------------------------------------------------------
def _features(data: Any, path: Path) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        feats = data.get("features")
        if not isinstance(feats, list):
            raise DataError(f"{path}: FeatureCollection has no 'features' list")
        return feats
    if isinstance(data, dict) and data.get("type") == "Feature":
        return [data]
    raise DataError(f"{path}: expected a GeoJSON FeatureCollection, Feature or list of features")


def _feature_layer(props: dict[str, Any]) -> tuple[str | None, Color | None, int | None]:
    cls = props.get("classification") or {}
    name = cls.get("name") if isinstance(cls, dict) else None
    color = cls.get("color") if isinstance(cls, dict) else None
    if isinstance(color, int):  # older QuPath: packed ARGB integer
        color = ((color >> 16) & 255, (color >> 8) & 255, color & 255)
    rgb = tuple(int(c) for c in color[:3]) if isinstance(color, list | tuple) and len(color) >= 3 else None
    lid = props.get("layer_id")
    return name or props.get("name"), rgb, int(lid) if isinstance(lid, int) else None  # type: ignore[return-value]


def _feature_geometry(feat: Any, i: int, path: Path, result: AnnotationSet) -> Any:
    from shapely.geometry import shape

    if not isinstance(feat, dict) or not isinstance(feat.get("geometry"), dict):
        raise DataError(f"{path}: feature {i} has no 'geometry' object")
    geom = feat["geometry"]
    gtype = geom.get("type")
    if gtype not in ("Polygon", "MultiPolygon"):
        result.warnings.append(f"{path}: feature {i}: geometry type {gtype!r} is not a polygon; skipped")
        return None
    try:
        return shape(geom)
    except Exception as exc:  # noqa: BLE001 - shapely raises several types for bad coordinates
        raise DataError(f"{path}: feature {i}: malformed {gtype} coordinates ({exc})") from None


def read_geojson(path: str | Path) -> AnnotationSet:
    """Read a QuPath GeoJSON export (unclassified features get layer ``"unclassified"``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{p}: annotation file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: malformed GeoJSON ({exc})") from None
    result = AnnotationSet(source=p)
    ids: dict[str, int] = {}
    for i, feat in enumerate(_features(data, p)):
        geom = _feature_geometry(feat, i, p, result)
        if geom is None:
            continue
        props = feat.get("properties") or {}
        name, color, lid = _feature_layer(props if isinstance(props, dict) else {})
        name = name or "unclassified"
        lid = ids.setdefault(name, lid if lid is not None else len(ids) + 1)
        geom = repair(geom, f"{p}: feature {i} ({name!r})", result.warnings)
        if not geom.is_empty:
            result.annotations.append(Annotation(name, geom, lid, color))
    return result


def write_geojson(annotations: Iterable[Annotation], path: str | Path) -> Path:
    """Write annotations as a QuPath-style GeoJSON FeatureCollection."""
    from shapely.geometry import mapping

    features = []
    for ann in annotations:
        classification: dict[str, Any] = {"name": ann.layer}
        if ann.color is not None:
            classification["color"] = [int(c) for c in ann.color]
        props: dict[str, Any] = {"objectType": "annotation", "classification": classification}
        if ann.layer_id is not None:
            props["layer_id"] = int(ann.layer_id)
        features.append({"type": "Feature", "geometry": mapping(ann.geometry), "properties": props})
    text = json.dumps({"type": "FeatureCollection", "features": features})
    return atomic_write_text(path, text + "\n")


# -- by suffix ----------------------------------------------------------------------------------
def read_annotations(path: str | Path) -> AnnotationSet:
    """Read Aperio XML (``.xml``) or QuPath GeoJSON (``.geojson``/``.json``)."""
    p = Path(path)
    if p.suffix.lower() in XML_SUFFIXES:
        return read_aperio_xml(p)
    if p.suffix.lower() in GEOJSON_SUFFIXES:
        return read_geojson(p)
    raise DataError(f"{p}: unsupported annotation format {p.suffix!r}; use Aperio XML (.xml) "
                    "or QuPath GeoJSON (.geojson/.json)")


def write_annotations(annotations: Iterable[Annotation], path: str | Path) -> Path:
    """Write Aperio XML or GeoJSON, chosen by the suffix of ``path``."""
    p = Path(path)
    if p.suffix.lower() in XML_SUFFIXES:
        return write_aperio_xml(annotations, p)
    if p.suffix.lower() in GEOJSON_SUFFIXES:
        return write_geojson(annotations, p)
    raise DataError(f"{p}: unsupported annotation format {p.suffix!r}; use .xml or .geojson")
