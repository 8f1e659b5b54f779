"""open_slide on the generated IHC pyramid: levels, region reads, µm/px, both backends, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from visionforge.errors import DataError
from visionforge.slides.reader import open_slide


def _openslide_or_skip():
    try:
        import openslide  # noqa: F401 - loads the openslide-bin shared library
    except (ImportError, OSError) as exc:
        pytest.skip(f"OpenSlide library cannot load: {exc}")


@pytest.mark.parametrize("backend", ["tiffslide", "openslide"])
def test_levels_and_region_reads(ihc_slide, ihc_image, backend):
    if backend == "openslide":
        _openslide_or_skip()
    with open_slide(ihc_slide.slide, backend=backend) as slide:
        assert slide.backend == backend
        assert slide.level_dimensions == ((2048, 2048), (512, 512), (128, 128))
        assert slide.level_downsamples == pytest.approx((1.0, 4.0, 16.0))
        assert slide.mpp == pytest.approx(0.5) and slide.mpp_source == "metadata"
        region = slide.read_region((300, 100), 0, (64, 48))
        assert region.shape == (48, 64, 3) and region.dtype == np.uint8
        np.testing.assert_array_equal(region, ihc_image[100:148, 300:364])
        # level 1 is the 4×4 area average of level 0
        low = slide.read_region((512, 256), 1, (32, 32)).astype(float)
        ref = ihc_image[256:384, 512:640].reshape(32, 4, 32, 4, 3).mean(axis=(1, 3))
        assert np.abs(low - ref).max() <= 1.0
        # outside the slide reads as white, inside part intact
        edge = slide.read_region((2048 - 16, 0), 0, (32, 8))
        assert (edge[:, 16:] == 255).all()
        np.testing.assert_array_equal(edge[:, :16], ihc_image[:8, 2032:])


def test_working_resolution_by_mpp_and_downsample(ihc_slide, ihc_image):
    with open_slide(ihc_slide.slide) as slide:
        choice = slide.level_for(mpp=1.0)  # 2× downsample: read level 0, resize
        assert (choice.level, choice.downsample, choice.scale) == (0, 2.0, 0.5)
        assert slide.level_for(mpp=2.0).level == 1
        assert slide.level_for(downsample=10).level == 1  # never coarser than the target
        assert slide.level_for(downsample=16).level == 2
        out = slide.read_at(2.5, (400, 200, 500, 300))  # 5× downsample from level 1
        assert out.shape == (60, 100, 3)
        ref = ihc_image[200:500, 400:900].reshape(60, 5, 100, 5, 3).mean(axis=(1, 3))
        assert np.abs(out.astype(float) - ref).mean() < 6
        thumb = slide.thumbnail(256)
        assert thumb.shape == (256, 256, 3)


def test_mpp_override_and_missing_mpp(tmp_path, ihc_image):
    from visionforge.slides.synthetic import write_pyramid_tiff

    path = write_pyramid_tiff(tmp_path / "nompp.svs", ihc_image[:512, :512], mpp=None, levels=(1, 4))
    with open_slide(path) as slide:
        assert not slide.has_mpp
        with pytest.raises(DataError, match=r"nompp\.svs.*mpp="):
            _ = slide.mpp
        with pytest.raises(DataError, match="mpp="):
            slide.level_for(mpp=1.0)
        assert slide.level_for(downsample=4).level == 1  # downsample needs no µm/px
    with open_slide(path, mpp=0.25) as slide:
        assert slide.mpp == 0.25 and slide.mpp_source == "override"
        assert slide.level_for(mpp=1.0).level == 1


def test_plain_png_and_tiff(tmp_path, ihc_image):
    import tifffile
    from PIL import Image

    Image.fromarray(ihc_image[:300, :400]).save(tmp_path / "plain.png")
    tifffile.imwrite(tmp_path / "plain.tif", ihc_image[:300, :400], photometric="rgb")
    for name, backend in [("plain.png", "image"), ("plain.tif", "tiffslide")]:
        with open_slide(tmp_path / name) as slide:
            assert slide.backend == backend
            assert slide.dimensions == (400, 300)
            np.testing.assert_array_equal(slide.read_region((10, 20), 0, (5, 5)), ihc_image[20:25, 10:15])
            assert slide.read_at(None, (0, 0, 400, 300), downsample=2).shape == (150, 200, 3)


def test_decompression_bomb_guard(tmp_path):
    from PIL import Image

    Image.new("RGB", (200, 100)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match=r"big\.png.*decompression-bomb"):
        open_slide(tmp_path / "big.png", max_image_pixels=10_000)


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"not a slide at all")
    with pytest.raises(DataError, match=r"broken\.svs.*Supported"):
        open_slide(bad)
    with pytest.raises(DataError, match="not found"):
        open_slide(tmp_path / "missing.svs")


def test_full_size_4096_slide(tmp_path):
    """The full 4096² slide of the issue: every level reads the expected size, µm/px per level."""
    from visionforge.slides.synthetic import make_ihc_slide

    made = make_ihc_slide(tmp_path / "big.svs", size=4096, annotations=False)
    assert made.labels.shape == (4096, 4096) and made.xml is None
    with open_slide(made.slide) as slide:
        assert slide.level_dimensions == ((4096, 4096), (1024, 1024), (256, 256))
        assert slide.read_at(8.0, (0, 0, 4096, 4096)).shape == (256, 256, 3)
        assert slide.level_for(mpp=8.0).level == 2
