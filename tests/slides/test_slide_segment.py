"""segment_slides on the real 2048² IHC slide: outputs, streaming exactness, objects, resume, bad input.

The model is an untrained tiny U-Net whose classifier is scaled up so its label map depends on
the image (several classes, many objects): the plumbing is what is tested, not accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tifffile")

MPP = 4.0  # working µm/px: the 0.5 µm/px slide at downsample 8 -> 256² working pixels


def _child():
    """The child script of the 2-process test; it also builds the tiny model dir."""
    import importlib.util

    path = Path(__file__).with_name("slide_segment_child.py")
    spec = importlib.util.spec_from_file_location("slide_segment_child", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_model_dir(path, slide_mpp=MPP, extra=None):
    return _child().make_model_dir(path, slide_mpp, extra)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("segmodel") / "model")


@pytest.fixture(scope="module")
def segmented(model_dir, ihc_slide, tmp_path_factory):
    """One run without the tissue restriction (for the exactness check)."""
    from visionforge.slides.segment import segment_slides

    out = tmp_path_factory.mktemp("seg")
    results = segment_slides(model_dir, [ihc_slide.slide], out, tissue=False, backend="torch")
    return out, results


def test_outputs_exist_and_open(segmented):
    import tiffslide

    out, (res,) = segmented
    assert res.status == "ok", res.reason
    d = out / "ihc"
    for name in ("labels.tif", "overlay.png", "tissue.png", "composition.csv", "objects.csv",
                 "slide.json"):
        assert (d / name).is_file(), name
    with tiffslide.TiffSlide(d / "labels.tif") as s:
        assert s.level_dimensions == ((256, 256), (64, 64), (16, 16))
        assert float(s.properties["tiffslide.mpp-x"]) == pytest.approx(MPP)
    import tifffile

    with tifffile.TiffFile(d / "labels.tif") as tf:
        desc = json.loads(tf.pages[0].description)
        assert tf.pages[0].is_tiled and tf.pages[0].tilewidth == 256
    assert desc["class_names"] == ["background", "hematoxylin", "DAB"] and desc["mpp"] == MPP
    info = json.loads((d / "slide.json").read_text())
    assert info["status"] == "ok" and info["shape"] == [256, 256] and info["seconds"] > 0
    batch = (out / "composition.csv").read_text().splitlines()
    assert batch[0].startswith("Image name,background PC,hematoxylin PC,DAB PC,hematoxylin TC(%)")
    assert batch[1].startswith("ihc,") and len(batch) == 2
    assert json.loads((out / "summary.json").read_text())["counts"]["ok"] == 1


def test_streamed_labels_equal_whole_array_prediction(segmented, model_dir, ihc_slide):
    import tifffile

    from visionforge.inference import Predictor
    from visionforge.slides.reader import open_slide

    out, (res,) = segmented
    labels = tifffile.imread(out / "ihc" / "labels.tif")
    with open_slide(ihc_slide.slide) as r:
        region = r.read_at(MPP, (0, 0, 2048, 2048))
    ref = Predictor(model_dir, backend="torch").predict_large(region, layout="NHWC")
    assert labels.shape == ref.shape == (256, 256)
    assert (labels == ref).mean() >= 0.999
    counts = np.bincount(labels.ravel(), minlength=3)
    assert (counts > 100).sum() >= 2  # a real map, not one class everywhere
    comp = res.info["composition"]
    assert [comp["background PC"], comp["hematoxylin PC"], comp["DAB PC"]] == counts.tolist()
    tissue = counts[1:].sum()
    assert comp["DAB TC(%)"] == pytest.approx(100 * counts[2] / tissue, abs=1e-3)


def test_objects_match_whole_array_labelling(segmented):
    """Objects merged across 256-row bands = scipy's labelling of the whole map."""
    import csv

    import tifffile
    from scipy import ndimage

    from visionforge.slides.composition import BandStats

    out, (res,) = segmented
    labels = tifffile.imread(out / "ihc" / "labels.tif")
    rows = {r["class"]: r for r in csv.DictReader((out / "ihc" / "objects.csv").open())}
    for c, name in ((1, "hematoxylin"), (2, "DAB")):
        lab, n = ndimage.label(labels == c, structure=np.ones((3, 3)))
        sizes = np.bincount(lab.ravel())[1:]
        assert int(rows[name]["count"]) == int((sizes >= 32).sum())
    # bands much thinner than the objects: every merge path is exercised
    stats = BandStats(3, [1, 2])
    for y in range(0, 256, 7):
        stats.feed(labels[y : y + 7])
    lab, _ = ndimage.label(labels == 1, structure=np.ones((3, 3)))
    expect = np.sort(np.bincount(lab.ravel())[1:])[::-1]
    got = stats.objects(["b", "h", "d"], 1)[0]
    assert got["count"] == expect.size and got["max size"] == expect[0]
    assert got["total PC"] == int((labels == 1).sum())


def test_batch_resume_failure_and_empty_tissue(model_dir, ihc_image, tmp_path):
    """Tissue on; a corrupt file and a blank slide are reported, the good slide done and
    then skipped on resume."""
    from visionforge.slides.segment import segment_slides
    from visionforge.slides.synthetic import write_pyramid_tiff

    half = ihc_image[:1024, :1024].copy()
    half[:, :512] = 250  # glass on the left: those tiles must not run
    good = write_pyramid_tiff(tmp_path / "good.svs", half, mpp=0.5, levels=(1, 4))
    bad = tmp_path / "bad.svs"
    bad.write_bytes(b"not a slide at all")
    blank = write_pyramid_tiff(tmp_path / "blank.tif", np.full((512, 512, 3), 250, np.uint8),
                               mpp=0.5, levels=(1, 4))
    out = tmp_path / "out"
    res = {r.slide.stem: r for r in segment_slides(model_dir, [bad, good, blank], out,
                                                    backend="torch")}
    assert res["good"].status == "ok", res["good"].reason
    assert res["bad"].status == "failed" and "bad.svs" in res["bad"].reason
    assert res["blank"].status == "skipped" and "no tissue" in res["blank"].reason
    assert (out / "blank" / "tissue.png").is_file() and not (out / "blank" / "labels.tif").exists()
    assert res["good"].info["tiles"]["skipped"] >= 3  # the left tile column is glass
    import tifffile

    labels = tifffile.imread(out / "good" / "labels.tif")
    assert labels.shape == (128, 128) and (labels[:, :40] == 0).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"ok": 1, "failed": 1, "skipped": 1}
    stamp = (out / "good" / "labels.tif").stat().st_mtime_ns
    again = {r.slide.stem: r for r in segment_slides(model_dir, [bad, good], out, backend="torch")}
    assert again["good"].resumed and again["good"].status == "ok"
    assert (out / "good" / "labels.tif").stat().st_mtime_ns == stamp
    assert again["bad"].status == "failed"


def test_missing_mpp_is_a_clear_error(tmp_path, ihc_slide):
    from visionforge.errors import ConfigError
    from visionforge.slides.segment import segment_slides

    model = make_model_dir(tmp_path / "m", slide_mpp=None)
    with pytest.raises(ConfigError, match="slide_mpp.*mpp="):
        segment_slides(model, [ihc_slide.slide], tmp_path / "out")


def test_model_trained_by_downsample_on_slide_without_mpp(tmp_path, ihc_image):
    """model.json with only "slide_downsample" (tiles cut by downsample) works on a slide
    whose file has no µm/px."""
    import tifffile

    from visionforge.slides.segment import segment_slides
    from visionforge.slides.synthetic import write_pyramid_tiff

    model = make_model_dir(tmp_path / "m", slide_mpp=None, extra={"slide_downsample": 8})
    slide = write_pyramid_tiff(tmp_path / "nompp.tif", ihc_image[:512, :1024], mpp=None,
                               levels=(1, 4))
    (res,) = segment_slides(model, [slide], tmp_path / "out", tissue=False, backend="torch")
    assert res.status == "ok", res.reason
    assert res.info["downsample"] == 8 and res.info["mpp"] is None
    assert tifffile.imread(tmp_path / "out" / "nompp" / "labels.tif").shape == (64, 128)


def test_band_stats_retire_finished_objects_counts_like_whole_map():
    """Objects retired band by band (1- and 5-row bands) = scipy's labelling of the whole map."""
    from scipy import ndimage

    from visionforge.slides.composition import BandStats

    rng = np.random.default_rng(1)
    labels = (ndimage.gaussian_filter(rng.random((120, 97)), 1.5) * 3000 % 3).astype(np.uint8)
    for band in (1, 5):
        stats = BandStats(3, [1, 2])
        for y in range(0, len(labels), band):
            stats.feed(labels[y : y + band])
        for c in (1, 2):
            lab, _ = ndimage.label(labels == c, structure=np.ones((3, 3)))
            sizes = np.bincount(lab.ravel())[1:]
            for min_px in (1, 9):
                got = stats.objects(["b", "h", "d"], min_px)[c - 1]
                kept = sizes[sizes >= min_px]
                assert (got["count"], got["total PC"], got["max size"]) == (
                    kept.size, int(kept.sum()), int(kept.max()))
        assert len(stats._uf[1].parent) <= 1024  # only the open objects of one band are kept
