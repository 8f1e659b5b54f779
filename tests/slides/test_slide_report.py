"""write_slide_report on a faked `slides segment` output of the 2048² IHC test slide.

The segment output (labels.tif, overlay.png, composition.csv, objects.csv, slide.json) is faked
here from the slide's reference labels, with some labels perturbed so the confusion matrix is
not diagonal; a second slide folder says its segmentation failed.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from visionforge.errors import DataError

DS = 4.0  # working resolution: 2 µm/px on the 0.5 µm/px slide
REGION = [1024, 512, 768, 1024]  # held-out rectangle, level-0 px (x0, y0, w, h)


def write_label_tiff(path, labels: np.ndarray, mpp: float, names, levels=(1, 2, 4)) -> None:
    """A tiled pyramidal uint8 label TIFF (reduced levels as SubIFDs), mpp and class names set."""
    import tifffile

    res = (1e4 / mpp, 1e4 / mpp)
    with tifffile.TiffWriter(path) as tw:
        tw.write(labels, tile=(128, 128), subifds=len(levels) - 1, resolution=res,
                 resolutionunit="CENTIMETER", description="classes=" + ",".join(names), metadata=None)
        for ds in levels[1:]:
            tw.write(labels[ds // 2::ds, ds // 2::ds], tile=(128, 128), subfiletype=1, metadata=None,
                     resolution=(res[0] / ds, res[1] / ds), resolutionunit="CENTIMETER")


def fake_segment_output(out_dir, made, seed: int = 0):
    """What `slides segment` writes for the IHC slide (per SLIDES_API.md), from its reference
    labels with ~8 % of pixels and one block set to a wrong class. Returns the working labels."""
    from PIL import Image

    names = list(made.class_map.names)
    colors = [list(c.color) for c in made.class_map.classes]
    half = int(DS // 2)
    labels = made.labels[half::int(DS), half::int(DS)].copy()  # pixel centres at DS
    rng = np.random.default_rng(seed)
    flip = rng.random(labels.shape) < 0.08
    labels[flip] = (labels[flip] + 1) % 3
    labels[300:340, 280:380] = 2  # a wrong DAB block inside the held-out region
    folder = out_dir / made.slide.stem
    folder.mkdir(parents=True)
    write_label_tiff(folder / "labels.tif", labels, made.mpp * DS, names)
    Image.fromarray(np.asarray(colors, np.uint8)[labels]).save(folder / "overlay.png")
    Image.fromarray(np.full((64, 64), 255, np.uint8)).save(folder / "tissue.png")
    counts = np.bincount(labels.ravel(), minlength=3)
    tissue = counts[1:].sum()
    comp = {"Image name": made.slide.name, **{f"{n} PC": int(c) for n, c in zip(names, counts)},
            **{f"{n} TC(%)": round(100 * c / tissue, 3) for n, c in zip(names[1:], counts[1:])}}
    with (folder / "composition.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, list(comp))
        w.writeheader()
        w.writerow(comp)
    (folder / "objects.csv").write_text("image,class,count,total_pixels,mean_size,sizes\n")
    info = {"slide": str(made.slide), "status": "ok", "reason": None, "mpp": made.mpp * DS,
            "downsample": DS, "shape": list(labels.shape), "tissue": {"cutoff": 0.2, "fraction": 0.5},
            "class_names": names, "class_colors": colors,
            "composition": {k: v for k, v in comp.items() if k != "Image name"}, "seconds": 12.5}
    (folder / "slide.json").write_text(json.dumps(info))
    return labels


def add_failed_slide(out_dir, stem="broken"):
    folder = out_dir / stem
    folder.mkdir()
    (folder / "slide.json").write_text(json.dumps({
        "slide": f"/nowhere/{stem}.svs", "status": "failed", "seconds": 0.4,
        "reason": f"/nowhere/{stem}.svs: cannot read this file as a slide or image"}))


@pytest.fixture(scope="module")
def segmented(ihc_slide, tmp_path_factory):
    out = tmp_path_factory.mktemp("segment")
    labels = fake_segment_output(out, ihc_slide)
    add_failed_slide(out)
    return out, labels


@pytest.fixture(scope="module")
def full_report(segmented, ihc_slide):
    from visionforge.slides.report import write_slide_report

    seg, _ = segmented
    pdf = write_slide_report(seg, class_map=ihc_slide.class_map_path, regions={"ihc": REGION})
    return pdf, json.loads((seg / "report_metrics.json").read_text())


def page_count(pdf) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf.read_bytes()))


def pdf_text(pdf, first=None, last=None) -> str | None:
    if shutil.which("pdftotext") is None:
        return None
    args = ["pdftotext", "-layout"] + (["-f", str(first), "-l", str(last)] if first else []) + [str(pdf), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def direct_confusion(made, labels) -> np.ndarray:
    """The held-out confusion matrix computed here, independently of the report code."""
    from visionforge.slides import rasterize, read_annotations

    truth = rasterize(read_annotations(made.xml), made.class_map, REGION, DS)
    x0, y0, w, h = (int(v / DS) for v in REGION)
    pred = labels[y0:y0 + h, x0:x0 + w]
    assert truth.shape == pred.shape
    return np.array([[np.sum((truth == i) & (pred == j)) for j in range(3)] for i in range(3)])


def test_report_has_every_section(full_report):
    pdf, metrics = full_report
    assert pdf.name == "report.pdf" and pdf.stat().st_size > 10_000
    sections = metrics["sections"]
    assert all("page" in v for v in sections.values()), sections
    # title, confusion, annotation check, classification check (the failed slide has none),
    # composition, runtimes
    assert page_count(pdf) == 6
    assert [sections[s]["page"] for s in ("confusion matrix", "annotation check",
                                          "classification check", "composition", "runtimes")] == [2, 3, 4, 5, 6]
    assert not list(pdf.parent.glob(".report.pdf.*"))  # atomic write left no temp file


def test_confusion_matrix_equals_direct_numpy(full_report, segmented, ihc_slide):
    _, metrics = full_report
    _, labels = segmented
    ev = metrics["evaluation"]
    cm = direct_confusion(ihc_slide, labels)
    assert np.array_equal(np.array(ev["confusion_matrix"]), cm)
    assert np.array_equal(np.array(ev["slides"]["ihc"]["confusion_matrix"]), cm)
    assert (cm - np.diag(np.diag(cm))).sum() > 0.05 * cm.sum()  # the perturbation shows
    tp = np.diag(cm).astype(float)
    np.testing.assert_allclose(ev["precision"], tp / cm.sum(0))
    np.testing.assert_allclose(ev["recall"], tp / cm.sum(1))
    iou = tp / (cm.sum(0) + cm.sum(1) - tp)
    np.testing.assert_allclose(ev["iou"], iou)
    assert ev["mean_iou"] == pytest.approx(iou.mean())
    assert ev["accuracy"] == pytest.approx(tp.sum() / cm.sum())
    assert ev["slides"]["ihc"]["compared"] == cm.sum() == (768 // 4) * (1024 // 4)


def test_failed_slide_is_listed(full_report):
    pdf, metrics = full_report
    assert metrics["slides"]["broken"]["status"] == "failed"
    assert "cannot read" in metrics["slides"]["broken"]["reason"]
    text = pdf_text(pdf, 1, 1)
    if text is not None:
        assert re.search(r"broken: FAILED — /nowhere/broken\.svs: cannot read", text), text
        assert "ihc: ok" in text
        runtimes = pdf_text(pdf, 6, 6)
        assert "broken" in runtimes and "failed" in runtimes and "12.5" in runtimes


def test_sections_without_data_are_omitted_with_a_note(segmented, ihc_slide, tmp_path):
    from visionforge.slides.report import write_slide_report

    seg, _ = segmented
    out = tmp_path / "plain.pdf"
    # no regions, an empty annotations folder: no confusion matrix, no annotation check
    pdf = write_slide_report(seg, out, class_map=ihc_slide.class_map_path, annotations=tmp_path)
    metrics = json.loads((tmp_path / "plain_metrics.json").read_text())
    sec = metrics["sections"]
    assert "regions=" in sec["confusion matrix"]["omitted"]
    assert "annotation" in sec["annotation check"]["omitted"]
    assert sec["classification check"] == {"page": 2, "pages": 1}
    assert metrics["evaluation"] is None
    assert page_count(pdf) == 4
    text = pdf_text(pdf, 1, 1)
    if text is not None:
        assert "confusion matrix: omitted" in text and "annotation check: omitted" in text


def test_regions_and_class_map_from_tiles_dir(segmented, ihc_slide, full_report, tmp_path):
    """tiles=TILES_DIR: holdout and class map come from tiles.json; same numbers. A region
    keyed by file name matches its slide; one for a slide not segmented is reported."""
    from visionforge.slides.report import write_slide_report

    seg, _ = segmented
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    (tiles / "tiles.json").write_text(json.dumps({
        "mpp": 2.0, "downsample": DS, "class_names": ihc_slide.class_map.names,
        "class_map": str(ihc_slide.class_map_path), "slides": [str(ihc_slide.slide)],
        "holdout": {"ihc.svs": REGION, "other": [0, 0, 64, 64]}}))
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"name": "unet_tiny", "task": "segmentation"}))
    pdf = write_slide_report(seg, tmp_path / "r.pdf", regions=tiles, model_dir=model)
    got = json.loads((tmp_path / "r_metrics.json").read_text())
    assert got["evaluation"]["confusion_matrix"] == full_report[1]["evaluation"]["confusion_matrix"]
    assert got["regions_without_segmentation"] == ["other"]
    assert got["model"].startswith("unet_tiny, task segmentation")
    text = pdf_text(pdf, 1, 1)
    if text is not None:
        assert "Model: unet_tiny" in text and "slides not in this folder: other" in text


def test_bad_inputs_name_the_file(tmp_path, segmented):
    from visionforge.slides.report import write_slide_report

    with pytest.raises(DataError, match="no <slide>/slide.json"):
        write_slide_report(tmp_path)
    with pytest.raises(DataError, match="not found"):
        write_slide_report(tmp_path / "missing")
    with pytest.raises(DataError, match="held-out region of 'ihc'"):
        write_slide_report(segmented[0], tmp_path / "x.pdf", regions={"ihc": [0, 0, -5, 10]})
    with pytest.raises(DataError, match="tiles.json"):
        write_slide_report(segmented[0], tmp_path / "x.pdf", regions=tmp_path)
