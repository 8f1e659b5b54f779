"""Class-map YAML (overlap order, unmapped layers), slide-bounds clipping and tissue masks."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

from visionforge.errors import ConfigError, DataError
from visionforge.slides.annotations import Annotation
from visionforge.slides.classmap import IGNORE_INDEX, load_class_map
from visionforge.slides.rasterize import clip_to_slide, rasterize
from visionforge.slides.tissue import tissue_mask, write_tissue_preview

YAML = """
classes:
  - {name: background, index: 0, color: [255, 255, 255], layers: [whitespace]}
  - {name: stroma, index: 1, color: [255, 128, 192], layers: [Stroma, 7]}
  - {name: tumour, index: 2, color: [200, 0, 0], layers: [tumor, Tumour]}
overlap_order: [OVERLAP]
background: background
unannotated: UNANNOTATED
ignore_layers: [scratch]
"""


def _cmap(tmp_path, order="tumour, stroma", unannotated="background"):
    path = tmp_path / "classes.yaml"
    path.write_text(YAML.replace("OVERLAP", order).replace("UNANNOTATED", unannotated))
    return load_class_map(path)


ANNS = [Annotation("Stroma", box(0, 0, 60, 60), 1), Annotation(" TUMOR ", box(40, 40, 100, 100), 2),
        Annotation("layer seven", box(0, 80, 20, 100), 7), Annotation("scratch", box(0, 0, 100, 100), 9)]


@pytest.mark.parametrize(("order", "winner"), [("tumour, stroma", 2), ("stroma, tumour", 1)])
def test_overlap_order_decides_the_winner(tmp_path, order, winner):
    cmap = _cmap(tmp_path, order)
    mask = rasterize(ANNS, cmap, (0, 0, 100, 100))
    assert mask[50, 50] == winner  # overlap of stroma and tumour
    assert mask[10, 10] == 1 and mask[90, 90] == 2
    assert mask[90, 10] == 1  # layer matched by id 7
    assert mask[20, 80] == 0  # unannotated → background; the ignored 'scratch' layer paints nothing


def test_unannotated_ignore_and_downsample(tmp_path):
    mask = rasterize(ANNS, _cmap(tmp_path, unannotated="ignore"), (0, 0, 100, 100), downsample=4)
    assert mask.shape == (25, 25) and mask[5, 20] == IGNORE_INDEX and mask[20, 20] == 2


def test_unmapped_layers_listed_with_the_fix(tmp_path):
    anns = [*ANNS, Annotation("Fat", box(0, 0, 5, 5), 3), Annotation("Vessel", box(0, 0, 5, 5), 4),
            Annotation("Fat", box(5, 5, 9, 9), 3)]
    with pytest.raises(DataError, match=r"slide1\.xml.*classes\.yaml: 'Fat', 'Vessel'\..*layers:"):
        rasterize(anns, _cmap(tmp_path), (0, 0, 10, 10), source="slide1.xml")


@pytest.mark.parametrize(("text", "match"), [
    ("classes: []", "non-empty `classes:`"),
    ("classes: [{name: a}, {name: A}]", "unique"),
    ("classes: [{name: a, index: 300}]", "0..254"),
    ("classes: [{name: a}]\noverlap_order: [b]", "overlap_order names 'b'"),
    ("classes: [{name: a, color: red}]", r"color must be \[r, g, b\]"),
    ("classes: [{name: a}]\nbackgrund: a", "unknown class-map keys"),
    ("classes: [", "malformed YAML"),
])
def test_bad_class_map_names_file(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"bad\.yaml.*{match}"):
        load_class_map(path)


def test_class_map_save_load_round_trip(tmp_path):
    cmap = _cmap(tmp_path)
    again = load_class_map(cmap.save(tmp_path / "again.yaml"))
    assert again.to_dict() == cmap.to_dict()


def test_clip_to_slide_warns_or_refuses():
    inside, partly = Annotation("a", box(10, 10, 20, 20)), Annotation("b", box(90, 90, 150, 120))
    kept, warnings = clip_to_slide([inside, partly], (100, 100), "s.xml")
    assert kept[1].geometry.bounds == (90, 90, 100, 100)
    assert len(warnings) == 1 and "'b'" in warnings[0] and "clipped" in warnings[0]
    with pytest.raises(DataError, match=r"s\.xml.*'c'.*entirely outside the slide \(100x100"):
        clip_to_slide([Annotation("c", box(200, 200, 300, 300))], (100, 100), "s.xml")


def test_tissue_mask_otsu_on_the_ihc_slide(ihc_slide, tmp_path):
    from visionforge.slides.reader import open_slide

    with open_slide(ihc_slide.slide) as slide:
        auto = tissue_mask(slide, "he", max_size=512, method="otsu")
        thumb = slide.thumbnail(512)
    assert auto.auto and 0.0 < auto.cutoff < 1.0 and auto.downsample == 4.0
    assert auto.mask.shape == (512, 512) and not auto.empty
    labels = ihc_slide.labels[::4, ::4]
    # brown DAB is strongly stained: nearly all of it is tissue; unstained background mostly not
    assert auto.mask[labels == 2].mean() > 0.85
    assert auto.mask[labels == 0].mean() < auto.mask[labels > 0].mean() - 0.3
    assert 0.3 < auto.fraction < 0.8
    manual = tissue_mask(thumb, "he", cutoff=auto.cutoff / 2)
    assert not manual.auto and manual.fraction > auto.fraction
    assert manual.to_dict()["cutoff"] == pytest.approx(auto.cutoff / 2)
    assert auto.to_dict()["method"] == "otsu" and "otsu cutoff" in auto.message
    gray = tissue_mask(thumb, "grayscale", method="otsu")
    assert 0.1 < gray.fraction < 0.9
    preview = write_tissue_preview(thumb, auto, tmp_path / "tissue.png")
    from PIL import Image

    assert Image.open(preview).size == (512, 512)


def test_triangle_keeps_pale_tissue_that_otsu_drops_and_leaves_glass_out():
    from skimage import data

    from visionforge.slides.synthetic import ihc_labels

    ihc = data.immunohistochemistry()
    labels = ihc_labels(ihc)
    rng = np.random.default_rng(0)  # the IHC image on a glass slide (bright, grey, noisy)
    glass = np.clip(235 + rng.normal(0, 4, (1024, 1024, 3)), 0, 255).astype(np.uint8)
    glass[256:768, 256:768] = ihc
    inside = np.zeros((1024, 1024), bool)
    inside[256:768, 256:768] = True
    tri, otsu = tissue_mask(glass), tissue_mask(glass, method="otsu")
    assert tri.method == "triangle" and tri.auto and tri.cutoff < otsu.cutoff
    stained = labels > 0
    # triangle keeps nearly all stained tissue; Otsu splits pale from dark stain instead
    assert tri.mask[inside][stained.ravel()].mean() > 0.9
    assert otsu.mask[inside][stained.ravel()].mean() < tri.mask[inside][stained.ravel()].mean() - 0.1
    assert tri.mask[~inside].mean() < 0.01  # glass stays out
    with pytest.raises(ConfigError, match="tissue method='mean'"):
        tissue_mask(glass, method="mean")  # type: ignore[arg-type]


def test_blank_image_gives_an_empty_mask_not_a_crash():
    blank = np.full((64, 64, 3), 240, np.uint8)
    result = tissue_mask(blank)
    assert result.empty and result.fraction == 0.0
    assert "no tissue found" in result.message
    with pytest.raises(ConfigError, match="cutoff"):
        tissue_mask(blank, cutoff=2.0)
