"""Joint image+mask augmentation stays aligned; MixUp/CutMix; presets; synthetic data."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors

from visionforge.data import (
    CutMix,
    DummyClassificationDataset,
    DummySegmentationDataset,
    MixUp,
    eval_transforms,
    mixing_collate,
    train_transforms,
)
from visionforge.registry import TRANSFORMS

S = 32


def _coordinate_sample():
    """Image channels 0/1 hold 8*y and 8*x; the mask holds y*S + x: both encode the pixel."""
    yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    image = torch.stack([yy * 8, xx * 8, torch.full_like(yy, 100)]).to(torch.uint8)
    mask = yy * S + xx
    return {"image": tv_tensors.Image(image), "mask": tv_tensors.Mask(mask)}


@pytest.mark.parametrize("rotation,scale", [(0.0, (1.0, 1.0)), (15.0, (0.8, 1.2))])
def test_data_joint_augmentation_keeps_image_and_mask_aligned(rotation, scale):
    t = train_transforms(
        "segmentation", S, rotation=rotation, scale=scale, color_jitter=0, blur=0, ignore_index=-1
    )
    exact = rotation == 0 and scale == (1.0, 1.0)
    changed = 0
    for seed in range(12):
        torch.manual_seed(seed)
        out = t(_coordinate_sample())
        img, mask = out["image"], out["mask"]
        assert img.dtype == torch.float32 and mask.dtype == torch.int64
        assert img.shape == (3, S, S) and mask.shape == (S, S)
        valid = mask >= 0
        # only pixels whose 3x3 neighbourhood is valid: bilinear border pixels mix in the fill
        inner = -torch.nn.functional.max_pool2d(-valid[None, None].float(), 3, 1, 1)[0, 0] > 0.5
        y_img, x_img = img[0] * 255 / 8, img[1] * 255 / 8
        y_mask, x_mask = (mask // S).float(), (mask % S).float()
        err = torch.maximum((y_img - y_mask).abs(), (x_img - x_mask).abs())[inner]
        assert inner.sum() > S * S // 4
        if exact:
            assert err.max() < 1e-3, f"seed {seed}: flips/rot90 must be exact"
        else:
            assert err.max() <= 1.0, f"seed {seed}: image and mask drifted by {err.max():.2f} px"
        changed += int(not torch.equal(mask, _coordinate_sample()["mask"]))
    assert changed >= 6  # the pipeline really moved things


def test_data_photometric_ops_do_not_touch_the_mask():
    t = train_transforms(
        "segmentation",
        S,
        rotation=0,
        scale=(1, 1),
        hflip=0,
        vflip=0,
        rot90=False,
        color_jitter=0.5,
        blur=1.0,
        mean=(0.5,) * 3,
        std=(0.2,) * 3,
    )
    sample = _coordinate_sample()
    out = t(sample)
    assert torch.equal(out["mask"], sample["mask"])
    assert not torch.allclose(out["image"], sample["image"].float() / 255)


def test_data_presets_and_registry():
    c = TRANSFORMS.build("train_transforms", "classification", 24)
    sample = {
        "image": tv_tensors.Image(torch.randint(0, 256, (3, 40, 30), dtype=torch.uint8)),
        "label": 1,
    }
    out = c(sample)
    assert (
        out["image"].shape == (3, 24, 24)
        and out["image"].dtype == torch.float32
        and out["label"] == 1
    )
    e = eval_transforms("segmentation", 20)
    seg = e(
        {
            "image": tv_tensors.Image(torch.zeros(3, 40, 40, dtype=torch.uint8)),
            "mask": tv_tensors.Mask(torch.randint(0, 5, (40, 40))),
        }
    )
    assert seg["mask"].shape == (20, 20) and set(seg["mask"].unique().tolist()) <= set(range(5))
    with pytest.raises(Exception, match="unknown task"):
        train_transforms("detection")


def test_data_mixup_cutmix_shapes_and_label_mixing():
    images = torch.rand(8, 3, 16, 16)
    labels = torch.arange(8) % 4
    for mixer in (
        MixUp(num_classes=4, alpha=1.0),
        CutMix(num_classes=4),
        TRANSFORMS.build("mixup", num_classes=4),
    ):
        out = mixer({"image": images.clone(), "label": labels.clone()})
        assert out["image"].shape == (8, 3, 16, 16)
        y = out["label"]
        assert y.shape == (8, 4) and y.dtype == torch.float32
        assert torch.allclose(y.sum(1), torch.ones(8))
        # each row mixes its own label with its neighbour's (torchvision rolls the batch by one)
        own = y[torch.arange(8), labels]
        other = y[torch.arange(8), labels.roll(1)]
        assert torch.allclose(own + other, torch.ones(8))
        assert ((own > 0) & (own < 1)).any()
        x, y2, extra = mixer((images.clone(), labels.clone(), "ids"))
        assert y2.shape == (8, 4) and extra == "ids"


def test_data_mixing_collate_with_dataloader():
    from torch.utils.data import DataLoader

    ds = DummyClassificationDataset(8, 16, num_classes=4)
    batch = next(iter(DataLoader(ds, batch_size=8, collate_fn=mixing_collate(CutMix(4)))))
    assert batch["label"].shape == (8, 4)


def test_data_synthetic_datasets_are_deterministic():
    a, b = (
        DummyClassificationDataset(10, 16, 3, seed=1),
        DummyClassificationDataset(10, 16, 3, seed=1),
    )
    c = DummyClassificationDataset(10, 16, 3, seed=2)
    assert torch.equal(a[4]["image"], b[4]["image"]) and not torch.equal(
        a[4]["image"], c[4]["image"]
    )
    assert [int(a[i]["label"]) for i in range(4)] == [0, 1, 2, 0]
    s1, s2 = DummySegmentationDataset(4, 32, 4, seed=5), DummySegmentationDataset(4, 32, 4, seed=5)
    assert torch.equal(s1[2]["mask"], s2[2]["mask"]) and torch.equal(s1[2]["image"], s2[2]["image"])
    m = s1[2]["mask"]
    assert (
        m.dtype == torch.int64
        and m.shape == (32, 32)
        and int(m.max()) < 4
        and m.unique().numel() > 1
    )
    t = train_transforms("segmentation", 16)
    out = DummySegmentationDataset(2, 32, 3, transform=t)[0]
    assert out["image"].shape == (3, 16, 16) and out["mask"].shape == (16, 16)
