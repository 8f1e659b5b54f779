"""A real pyramidal IHC slide (2048², levels 1/4/16, 0.5 µm/px) with Aperio XML and GeoJSON labels.

Built once per session by :func:`visionforge.slides.synthetic.make_ihc_slide`; tests must not
modify its files (copy them first).
"""

from __future__ import annotations

import pytest

pytest.importorskip("tiffslide")
pytest.importorskip("shapely")


@pytest.fixture(scope="session")
def ihc_slide(tmp_path_factory):
    from visionforge.slides.synthetic import make_ihc_slide

    return make_ihc_slide(tmp_path_factory.mktemp("ihc") / "ihc.svs", size=2048, mpp=0.5, levels=(1, 4, 16))


@pytest.fixture(scope="session")
def ihc_image():
    """The level-0 RGB pixels of the 2048² slide (the same mirror tiling as the generator)."""
    from skimage import data

    from visionforge.slides.synthetic import mirror_tile

    return mirror_tile(data.immunohistochemistry(), 2048)
