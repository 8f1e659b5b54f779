"""The class map: from annotation layers to the classes of a tissue model.

A YAML file::

    classes:                       # label index = position in the mask
      - {name: background, index: 0, color: [255, 255, 255], layers: [whitespace, background]}
      - {name: stroma,     index: 1, color: [255, 128, 192], layers: [stroma, 2]}
      - {name: tumour,     index: 2, color: [200, 0, 0],     layers: [tumor, tumour]}
    overlap_order: [tumour, stroma, background]   # first wins where layers overlap
    background: background         # whitespace class (CODAvision): tissue-mask background
    unannotated: background        # pixels under no annotation: "background" or "ignore" (255)
    ignore_layers: [Region*]       # layers deliberately left out (optional)

``layers`` lists annotation layer names (matched case-insensitively) and/or layer ids (ints);
a class with no ``layers`` matches the layer of its own name. ``overlap_order`` defaults to
the order of ``classes`` (first listed wins); classes it leaves out go below those it lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionforge.errors import ConfigError, DataError

IGNORE_INDEX = 255
Color = tuple[int, int, int]


@dataclass(frozen=True)
class ClassSpec:
    """One class: ``index`` is its value in label masks."""

    name: str
    index: int
    color: Color
    layers: tuple[str | int, ...] = ()


def _norm(name: str) -> str:
    return " ".join(str(name).split()).casefold()


@dataclass(frozen=True)
class ClassMap:
    """Classes, the layers that map to them, the overlap order and the background class."""

    classes: tuple[ClassSpec, ...]
    overlap_order: tuple[str, ...] = ()
    background: str | None = None
    unannotated: str = "background"
    ignore_layers: tuple[str, ...] = ()
    source: str = "<class map>"
    _by_name: dict[str, ClassSpec] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self)
        self._by_name.update({_norm(c.name): c for c in self.classes})

    # -- lookups ------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def get(self, name: str) -> ClassSpec:
        try:
            return self._by_name[_norm(name)]
        except KeyError:
            raise ConfigError(f"{self.source}: no class named {name!r} (classes: {self.names})") from None

    @property
    def background_index(self) -> int | None:
        return self.get(self.background).index if self.background else None

    @property
    def fill_index(self) -> int:
        """Mask value for pixels under no annotation."""
        if self.unannotated == "ignore":
            return IGNORE_INDEX
        return self.get(self.background).index if self.background else 0

    @property
    def paint_order(self) -> list[ClassSpec]:
        """Classes bottom first: painting in this order leaves the overlap winner on top."""
        listed = [self.get(n) for n in self.overlap_order]
        rest = [c for c in self.classes if c not in listed]
        return list(reversed(listed + rest))

    @property
    def colors(self) -> dict[int, Color]:
        return {c.index: c.color for c in self.classes}

    def class_for(self, layer: str, layer_id: int | None = None) -> ClassSpec | None:
        """The class of an annotation layer (by name, then id); ``None`` if unmapped or ignored."""
        key = _norm(layer)
        for spec in self.classes:
            names = {_norm(x) for x in spec.layers if isinstance(x, str)} or {_norm(spec.name)}
            if key in names:
                return spec
        for spec in self.classes:
            if layer_id is not None and layer_id in [x for x in spec.layers if isinstance(x, int)]:
                return spec
        return None

    def check(self, annotations: Iterable[Any], source: str | Path = "annotations") -> None:
        """Raise :class:`DataError` listing every layer that maps to no class (and is not ignored)."""
        ignored = {_norm(x) for x in self.ignore_layers}
        missing: dict[str, None] = {}
        for ann in annotations:
            if _norm(ann.layer) not in ignored and self.class_for(ann.layer, ann.layer_id) is None:
                missing[ann.layer] = None
        if missing:
            names = ", ".join(repr(n) for n in missing)
            raise DataError(
                f"{source}: annotation layers not in the class map {self.source}: {names}. "
                "Add each to the `layers:` list of a class (or list it under `ignore_layers:`)"
            )

    def is_ignored(self, layer: str) -> bool:
        return _norm(layer) in {_norm(x) for x in self.ignore_layers}

    # -- files --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": [{"name": c.name, "index": c.index, "color": list(c.color),
                         "layers": list(c.layers)} for c in self.classes],
            "overlap_order": list(self.overlap_order) or self.names,
            "background": self.background,
            "unannotated": self.unannotated,
            "ignore_layers": list(self.ignore_layers),
        }

    def save(self, path: str | Path) -> Path:
        import yaml

        from visionforge.io import atomic_write_text

        return atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<class map>") -> ClassMap:
        if not isinstance(data, dict) or not isinstance(data.get("classes"), list) or not data["classes"]:
            raise ConfigError(f"{source}: a class map needs a non-empty `classes:` list")
        unknown = set(data) - {"classes", "overlap_order", "background", "unannotated", "ignore_layers"}
        if unknown:
            raise ConfigError(f"{source}: unknown class-map keys {sorted(unknown)}")
        classes = tuple(_class_spec(c, i, source) for i, c in enumerate(data["classes"]))
        return cls(classes, tuple(data.get("overlap_order") or ()), data.get("background"),
                   str(data.get("unannotated", "background")),
                   tuple(str(x) for x in data.get("ignore_layers") or ()), source)

    @classmethod
    def from_layers(cls, names: Sequence[str], colors: Sequence[Color] | None = None,
                    background: str | None = None) -> ClassMap:
        """One class per layer name, indices in order (``0..n-1``), first listed wins overlaps."""
        cols = list(colors) if colors else [_default_color(i) for i in range(len(names))]
        return cls(tuple(ClassSpec(n, i, tuple(cols[i]), (n,)) for i, n in enumerate(names)),
                   tuple(names), background)


def _default_color(i: int) -> Color:
    palette = [(255, 255, 255), (31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14),
               (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34)]
    return palette[i % len(palette)]


def _class_spec(item: Any, i: int, source: str) -> ClassSpec:
    if not isinstance(item, dict) or "name" not in item:
        raise ConfigError(f"{source}: classes[{i}] needs at least a `name:`")
    color = item.get("color", _default_color(i))
    if not (isinstance(color, list | tuple) and len(color) == 3
            and all(isinstance(v, int) and 0 <= v <= 255 for v in color)):
        raise ConfigError(f"{source}: classes[{i}] ({item['name']}): color must be [r, g, b] in 0..255")
    layers = item.get("layers") or ()
    if not isinstance(layers, list | tuple):
        layers = (layers,)
    return ClassSpec(str(item["name"]), item.get("index", i), tuple(color),
                     tuple(x if isinstance(x, int) else str(x) for x in layers))


def _validate(cm: ClassMap) -> None:
    src = cm.source
    names = [_norm(c.name) for c in cm.classes]
    if len(set(names)) != len(names):
        raise ConfigError(f"{src}: class names must be unique, got {[c.name for c in cm.classes]}")
    indices = [c.index for c in cm.classes]
    if any(not isinstance(i, int) or not 0 <= i < IGNORE_INDEX for i in indices) or len(set(indices)) != len(indices):
        raise ConfigError(f"{src}: class indices must be unique integers in 0..254, got {indices}")
    for name in cm.overlap_order:
        if _norm(name) not in names:
            raise ConfigError(f"{src}: overlap_order names {name!r}, which is not a class ({cm.names})")
    if cm.background is not None and _norm(cm.background) not in names:
        raise ConfigError(f"{src}: background: {cm.background!r} is not a class ({cm.names})")
    if cm.unannotated not in ("background", "ignore"):
        raise ConfigError(f"{src}: unannotated must be 'background' or 'ignore', got {cm.unannotated!r}")


def load_class_map(path: str | Path) -> ClassMap:
    """Read a class-map YAML file (:class:`ConfigError` naming the file on a bad one)."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: class map file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: malformed YAML ({exc})") from None
    return ClassMap.from_dict(data, str(p))
