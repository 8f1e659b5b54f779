"""Training tiles from the IHC slide: dataset accepted by training, class fractions, holdout,
determinism, and bad input (one failing slide keeps the others' tiles)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from visionforge.errors import ConfigError, DataError
from visionforge.slides.tiles import make_slide_tiles, parse_holdout

TILE = 128


@pytest.fixture
def one_thread():
    """Torch ops of modern canvases crawl when threads fight over shared CPUs."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def small_slide(tmp_path_factory):
    """A 512² IHC slide (cheap to re-read) for the tests that tile many times."""
    from visionforge.slides.synthetic import make_ihc_slide

    return make_ihc_slide(tmp_path_factory.mktemp("small") / "small.svs", size=512, mpp=0.5,
                          levels=(1, 4))


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.parent.name in ("images", "masks")}


def test_slide_tiles_simple_is_a_training_dataset_with_label_fractions(ihc_slide, tmp_path):
    from visionforge.data import SegmentationDataset

    out = tmp_path / "tiles"
    res = make_slide_tiles([ihc_slide.slide], out, class_map=ihc_slide.class_map_path, mode="simple",
                           tile_size=TILE, downsample=2, holdout="right:0.25", seed=3)
    assert res.mpp == pytest.approx(1.0) and res.downsample == pytest.approx(2.0)
    ds = SegmentationDataset(out / "train" / "images", out / "train" / "masks", num_classes=3,
                             ignore_index=255)
    assert len(ds) == res.num_tiles["train"] > 10 and res.num_tiles["val"] >= 1
    sample = ds[0]
    assert tuple(sample["image"].shape) == (3, TILE, TILE) and tuple(sample["mask"].shape) == (TILE, TILE)
    meta = json.loads((out / "tiles.json").read_text())
    assert meta["class_names"] == ["background", "hematoxylin", "DAB"]
    assert meta["holdout"] == {"ihc": [1536, 0, 512, 2048]}
    assert meta["mpp"] == pytest.approx(1.0) and meta["mode"] == "simple" and meta["tile_size"] == TILE
    # every mask value is a class index of the class map; together they follow the labels
    counts = np.zeros(256, np.int64)
    for m in (out / "train" / "masks").glob("*.png"):
        counts += np.bincount(np.asarray(Image.open(m)).ravel(), minlength=256)
    assert set(np.nonzero(counts)[0].tolist()) <= {0, 1, 2}
    left = ihc_slide.labels[:, :1536]  # the area tiles may come from
    ref = np.bincount(left.ravel(), minlength=3) / left.size
    got = counts[:3] / counts[:3].sum()
    assert np.abs(got - ref).max() < 0.05, (got, ref)
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert len(rows) == sum(res.num_tiles.values())
    for r in rows:  # nothing from the held-out right quarter (level-0 px)
        assert int(r["x0"]) + TILE * 2 <= 1536 and r["slide"] == "ihc"
        assert (out / r["tile"]).is_file()


def test_slide_tiles_same_seed_same_bytes(small_slide, tmp_path, one_thread):
    kw = dict(class_map=small_slide.class_map_path, tile_size=64, tile_count=3,
              holdout=(0, 0, 128, 128))
    for mode, seeds in (("modern", (5, 5)), ("legacy", (5, 5, 6))):
        runs = [make_slide_tiles(small_slide.slide, tmp_path / f"{mode}_{i}", mode=mode, seed=s, **kw)
                for i, s in enumerate(seeds)]
        a = runs[0]
        digests = [_digest(r.out_dir) for r in runs]
        assert len(digests[0]) == 2 * (a.num_tiles["train"] + a.num_tiles["val"])
        assert a.num_tiles["train"] == 3
        assert digests[0] == digests[1], mode
        assert len(seeds) == 2 or digests[0] != digests[2], mode
        # all three classes reach the composite tiles
        assert all(a.counts["train"].get(k, 0) > 0 for k in (0, 1, 2)), (mode, a.counts)


def test_slide_tiles_legacy_format_and_no_rotation(small_slide, tmp_path):
    res = make_slide_tiles(small_slide.slide, tmp_path / "t", class_map=small_slide.class_map_path,
                           mode="legacy", downsample=2, tile_size=64, tile_count=4, fmt="jpg",
                           rotate=False, val_fraction=0.0)
    images = sorted((tmp_path / "t" / "train" / "images").iterdir())
    masks = sorted((tmp_path / "t" / "train" / "masks").iterdir())
    assert len(images) == len(masks) == 4 and res.num_tiles == {"train": 4, "val": 0}
    assert {p.suffix for p in images} == {".jpg"} and {p.suffix for p in masks} == {".png"}
    filled = [np.mean(np.asarray(Image.open(m)) != 0) for m in masks]
    assert max(filled) > 0.2  # pasted tissue, not an empty canvas


def test_slide_tiles_bad_slides_are_skipped_and_named(small_slide, tmp_path):
    from visionforge.slides.annotations import Annotation, read_annotations, write_aperio_xml
    from visionforge.slides.synthetic import make_ihc_slide

    work = tmp_path / "in"
    work.mkdir()
    good = work / "good.svs"
    shutil.copy(small_slide.slide, good)
    shutil.copy(small_slide.xml, work / "good.xml")
    (work / "broken.svs").write_bytes(b"not a slide")
    shutil.copy(small_slide.xml, work / "broken.xml")
    shutil.copy(small_slide.slide, work / "renamed.svs")
    anns = list(read_annotations(small_slide.xml))[:5]
    write_aperio_xml([Annotation("stroma", a.geometry, 9) if i == 0 else a
                      for i, a in enumerate(anns)], work / "renamed.xml")
    shutil.copy(small_slide.slide, work / "empty.svs")
    (work / "empty.xml").write_text("<Annotations></Annotations>")
    shutil.copy(small_slide.slide, work / "garbled.svs")
    (work / "garbled.xml").write_text("<Annotations><Annotation")
    coarse = make_ihc_slide(work / "coarse.svs", size=512, mpp=1.0, levels=(1, 4))  # other µm/px
    slides = [good, work / "broken.svs", work / "renamed.svs", work / "empty.svs",
              work / "garbled.svs", coarse.slide]
    res = make_slide_tiles(slides, tmp_path / "t", class_map=small_slide.class_map_path,
                           mode="simple", downsample=2, tile_size=64)
    reasons = {s["slide"].rsplit("/", 1)[-1]: s["reason"] for s in res.skipped}
    assert set(reasons) == {"broken.svs", "renamed.svs", "empty.svs", "garbled.svs"}
    assert "broken.svs" in reasons["broken.svs"]
    assert "'stroma'" in reasons["renamed.svs"] and "renamed.xml" in reasons["renamed.svs"]
    assert "no annotations" in reasons["empty.svs"] and "malformed XML" in reasons["garbled.svs"]
    assert any("resampled" in n for n in res.notes)
    stems = {r["slide"] for r in csv.DictReader(open(tmp_path / "t" / "manifest.csv"))}
    assert stems == {"good", "coarse"}
    meta = json.loads((tmp_path / "t" / "tiles.json").read_text())
    assert len(meta["skipped"]) == 4 and meta["slides"][1]["downsample"] == pytest.approx(1.0)
    with pytest.raises(DataError, match="no slide gave training tiles.*broken.svs"):
        make_slide_tiles([work / "broken.svs"], tmp_path / "t2", class_map=small_slide.class_map_path)


def test_slide_tiles_settings_and_holdout_specs(small_slide, tmp_path):
    cm = small_slide.class_map_path
    for bad in (dict(mode="fancy"), dict(fmt="bmp"), dict(tile_size=4), dict(mpp=1, downsample=2)):
        with pytest.raises(ConfigError):
            make_slide_tiles(small_slide.slide, tmp_path / "x", class_map=cm, **bad)
    assert parse_holdout("left:0.5", (100, 50)) == (0, 0, 50, 50)
    assert parse_holdout("10,20,30,40", (100, 50)) == (10, 20, 30, 40)
    assert parse_holdout({"a": "bottom:0.2"}, (100, 50), "b") is None
    with pytest.raises(ConfigError, match="SIDE:FRACTION"):
        parse_holdout("middle:2", (100, 50))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a tiles folder"):
        make_slide_tiles(small_slide.slide, tmp_path / "busy", class_map=cm, mode="simple")


def test_slide_tiles_doc_example_runs(tmp_path, monkeypatch):
    """The Python call in the "Training tiles" section of docs/slides.md runs as written."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "slides.md").read_text()
    section = doc.split("## Training tiles", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```py\n(.*?)```", section, flags=re.S)
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "slides_tiles_doc"}
    exec(compile(block, "slides.md[training tiles]", "exec"), ns)
    assert ns["result"].num_tiles == {"train": 8, "val": 1}
    meta = json.loads((tmp_path / "tiles" / "tiles.json").read_text())
    assert meta["mpp"] == 1.0 and meta["holdout"] == {"ihc_small": [384, 0, 128, 512]}
