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


def test_dummy_detection_boxes_frame_their_rectangles():
    from visionforge.data.synthetic import DummyDetectionDataset

    ds = DummyDetectionDataset(num_samples=3, image_size=(40, 48), num_classes=2,
                               boxes_per_image=4, box_size=(5, 9), seed=2)
    a, again = ds[1], DummyDetectionDataset(3, (40, 48), 2, boxes_per_image=4,
                                            box_size=(5, 9), seed=2)[1]
    assert torch.equal(a["image"], again["image"]) and a["image"].shape == (3, 40, 48)
    t = a["target"]
    boxes, labels = t["boxes"], t["labels"]
    assert boxes.shape == (4, 4) and set(labels.tolist()) <= {1, 2} and int(t["image_id"]) == 1
    sides = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1)
    assert ((sides >= 5) & (sides <= 9)).all()
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 48).all() and (boxes[:, 3] <= 40).all()
    x0, y0, x1, y1 = (int(v) for v in boxes[-1])  # the last box is painted on top
    patch = a["image"][:, y0:y1, x0:x1]
    assert torch.equal(patch, ds._colours[labels[-1] - 1].view(-1, 1, 1).expand_as(patch))
    batch = ds.collate_fn([ds[0], ds[2]])
    assert batch["image"].shape == (2, 3, 40, 48) and len(batch["targets"]) == 2
    with pytest.raises(ConfigError, match="box_size"):
        DummyDetectionDataset(image_size=8, box_size=(4, 9))
