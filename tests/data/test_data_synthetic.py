"""The dummy datasets: deterministic per index, bounds-checked, transform applied."""

from __future__ import annotations

import pytest
import torch

from visionforge.data.synthetic import DummyClassificationDataset, DummySegmentationDataset
from visionforge.errors import ConfigError


@pytest.mark.parametrize("cls", [DummyClassificationDataset, DummySegmentationDataset])
def test_dummy_datasets_share_size_checks_and_bounds(cls):
    ds = cls(num_samples=4, image_size=8, num_classes=3, seed=5)
    assert len(ds) == 4
    backwards = [ds[i] for i in reversed(range(4))][::-1]
    for a, b in zip(
        [cls(num_samples=4, image_size=8, num_classes=3, seed=5)[i] for i in range(4)],
        backwards,
        strict=True,
    ):
        assert torch.equal(a["image"], b["image"])  # no dependence on access order
    assert not torch.equal(ds[0]["image"], cls(num_samples=4, image_size=8, seed=6)[0]["image"])
    with pytest.raises(IndexError):
        ds[4]
    with pytest.raises(ConfigError, match="image_size >= 4"):
        cls(image_size=2)


def test_dummy_datasets_apply_the_transform():
    def invert(sample):
        return {**sample, "image": 1 - sample["image"]}

    plain = DummyClassificationDataset(num_samples=2, image_size=8)[1]
    flipped = DummyClassificationDataset(num_samples=2, image_size=8, transform=invert)[1]
    assert torch.allclose(flipped["image"], 1 - plain["image"])
    assert int(flipped["label"]) == 1
    seg = DummySegmentationDataset(num_samples=2, image_size=16, num_classes=3)[0]
    assert seg["mask"].shape == (16, 16) and int(seg["mask"].max()) < 3
