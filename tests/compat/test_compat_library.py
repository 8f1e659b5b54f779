"""The modular library reference's examples (seed 001) against ``visionforge.compat.library``.

Adapted only where the document is pseudo-code or too big for CI: ResNet-18 and a two-layer
ViT instead of ResNet-50/ViT-B, 32-px images, ``device="cpu"``, one epoch, no downloads.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import CrossEntropyLoss
from torch.optim import Adam
from torch.utils.data import DataLoader

from visionforge.compat.library import (
    CBAM,
    BaseExplainer,
    ClassificationDataset,
    ClassificationMetrics,
    CNNBackbone,
    DummyClassificationDataset,
    DummySegmentationDataset,
    Evaluator,
    Explainer,
    MixedPrecisionManager,
    MultitaskModel,
    SegmentationDataset,
    SegmentationMetrics,
    Trainer,
    Transforms,
    UNetDecoder,
    VisionTransformer,
    ViTSpatial,
    enable_cudnn_determinism,
    set_seed,
)

TINY_VIT = {"patch_size": 8, "num_layers": 2, "hidden_dim": 32, "num_heads": 2, "mlp_dim": 64}
device = "cpu"  # the document uses "cuda"


@pytest.fixture(scope="module")
def image_folders(tmp_path_factory):
    """data/{train,val}/<class>/*.png and a segmentation images/masks pair of folders."""
    root = tmp_path_factory.mktemp("lib")
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 4)):
        for k, cls in enumerate(("cat", "dog")):
            (root / "data" / split / cls).mkdir(parents=True)
            for i in range(n):
                img = (rng.random((40, 48, 3)) * 80 + 120 * k).astype(np.uint8)
                Image.fromarray(img).save(root / "data" / split / cls / f"{i}.png")
    (root / "seg" / "images").mkdir(parents=True)
    (root / "seg" / "masks").mkdir()
    for i in range(4):
        mask = np.zeros((40, 48), np.uint8)
        mask[:20] = 1 + i % 2
        Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(
            root / "seg" / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "seg" / "masks" / f"{i}.png")
    return root


# -- Module inventory ---------------------------------------------------------------------------
def test_backbones_attention_decoder_shapes():
    backbone = CNNBackbone(depth=18, pretrained=False)
    x = torch.randn(2, 3, 64, 96)
    feats = backbone(x)
    assert [tuple(f.shape[2:]) for f in feats] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    schedule = backbone.get_channel_schedule()
    assert schedule == [64, 128, 256, 512] and schedule.strides == [4, 8, 16, 32]
    assert CNNBackbone(depth=50).get_channel_schedule() == [256, 512, 1024, 2048]
    vit = VisionTransformer(image_size=32, **TINY_VIT)
    assert vit(torch.randn(2, 3, 32, 32)).shape == (2, 32, 4, 4)  # [B, hidden, H/16...]
    vit_spatial = ViTSpatial(image_size=32, **TINY_VIT)
    assert vit_spatial(torch.randn(1, 3, 32, 32)).shape == (1, 32, 4, 4)
    cbam = CBAM(in_channels=512, reduction=16)
    assert cbam(feats[-1]).shape == feats[-1].shape
    # UNetDecoder: the pyramid in, full input resolution out, without being told the size
    decoder = UNetDecoder(backbone_channels=[64, 128, 256, 512], output_channels=21)
    assert decoder(feats).shape == (2, 21, 64, 96)


def test_multitask_model_chooses_heads_from_batch_keys():
    backbone = CNNBackbone(depth=18)
    model = MultitaskModel(backbone=backbone, attention=CBAM(512),
                           num_classes_classification=10, num_classes_segmentation=21).eval()
    images = torch.randn(2, 3, 32, 32)
    labels, masks = torch.tensor([1, 2]), torch.zeros(2, 32, 32, dtype=torch.long)
    with torch.no_grad():
        assert model({"image": images, "label": labels}).shape == (2, 10)
        assert model({"image": images, "mask": masks}).shape == (2, 21, 32, 32)
        both = model({"image": images, "label": labels, "mask": masks})
        output = model(images)  # Example 4: the images alone run both heads
    assert set(both) == set(output) == {"classification", "segmentation"}
    assert output["segmentation"].shape == (2, 21, 32, 32)


def test_mixed_precision_manager_loop():
    amp = MixedPrecisionManager(enabled=True)
    assert not amp.active or amp.device_type == "cuda"  # fp32 fallback on CPU
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.weight.detach().clone()
    loader = [torch.randn(8, 4) for _ in range(2)]
    for batch in loader:
        with amp.autocast():
            loss = model(batch).pow(2).mean()
        amp.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
    assert not torch.equal(before, model.weight)


# -- Data -----------------------------------------------------------------------------------------
def test_datasets_transforms_and_tuples(image_folders):
    root = image_folders / "data"
    train_dataset = ClassificationDataset(root=root / "train", split="train",
                                          transform=Transforms(resize=32, augment=True))
    loader = DataLoader(train_dataset, batch_size=4, shuffle=True)
    images, labels = next(iter(loader))  # (image, target) tuples
    assert images.shape == (4, 3, 32, 32) and labels.dtype == torch.int64
    assert float(images.min()) < 0  # normalised (ImageNet mean/std)
    seg_dataset = SegmentationDataset(images_dir=image_folders / "seg" / "images",
                                      masks_dir=image_folders / "seg" / "masks",
                                      transform=Transforms(resize=24, augment=True))
    image, mask = seg_dataset[0]
    assert image.shape == (3, 24, 24) and mask.shape == (24, 24)
    assert set(mask.unique().tolist()) <= {0, 1, 2}  # nearest-neighbour for the mask
    dummy = DummyClassificationDataset(num_samples=4, image_size=(24, 40), num_classes=10)
    batch = next(iter(DataLoader(dummy, batch_size=2)))
    assert batch["image"].shape == (2, 3, 24, 40)  # dicts, as the testing utilities use them
    seg = DummySegmentationDataset(num_samples=2, image_size=(16, 20), return_tuple=True)
    assert seg[0][1].shape == (16, 20)


# -- Evaluation -----------------------------------------------------------------------------------
def test_metrics_keys_and_reproducibility():
    clf_metrics = ClassificationMetrics(num_classes=10)
    predictions = torch.eye(10)[torch.tensor([0, 1, 2, 3])] * 5
    clf_metrics.update(predictions, torch.tensor([0, 1, 2, 4]))
    scores = clf_metrics.compute()
    assert scores["accuracy"] == pytest.approx(0.75) and "top5_accuracy" in scores
    clf_metrics.reset()
    seg_metrics = SegmentationMetrics(num_classes=3)
    target = torch.tensor([[[0, 1], [2, 2]]])
    seg_metrics.update(torch.tensor([[[0, 1], [2, 1]]]), target)
    scores = seg_metrics.compute()
    assert scores["class_iou"] == scores["per_class_iou"] and len(scores["class_dice"]) == 3
    assert scores["mean_iou"] == pytest.approx(np.mean([1.0, 0.5, 0.5]))
    set_seed(42)
    a = torch.rand(3)
    set_seed(42)
    assert torch.equal(a, torch.rand(3))
    previous = enable_cudnn_determinism()
    try:
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.deterministic = previous["cudnn_deterministic"]
        torch.backends.cudnn.benchmark = previous["cudnn_benchmark"]


# -- Examples 1 and 3: train a classifier, evaluate, explain ---------------------------------------
@pytest.mark.slow
def test_example_train_classification_then_explain(image_folders, tmp_path):
    set_seed(42)
    train_transforms = Transforms(resize=32, augment=True)
    val_transforms = Transforms(resize=32, augment=False)
    train_dataset = ClassificationDataset(image_folders / "data" / "train", transform=train_transforms)
    val_dataset = ClassificationDataset(image_folders / "data" / "val", transform=val_transforms)
    train_loader = DataLoader(train_dataset, batch_size=4, shuffle=True)
    val_loader = DataLoader(val_dataset, batch_size=4, shuffle=False)
    backbone = CNNBackbone(depth=18, pretrained=False)
    model = MultitaskModel(backbone=backbone, num_classes_classification=2).to(device)
    criterion = CrossEntropyLoss()
    optimizer = Adam(model.parameters(), lr=0.001)
    trainer = Trainer(model=model, criterion=criterion, optimizer=optimizer, max_epochs=2,
                      device=device, output_dir=tmp_path / "run", progress=False)
    history = trainer.train(train_loader, val_loader)
    assert len(history["train_loss"]) == 2 and len(history["val_loss"]) == 2
    assert "accuracy" in history["val_metrics"]
    assert len(history["train_loss_step"]) == 2 * len(train_loader)  # per-iteration losses
    metrics = Evaluator(model=model, device=device).evaluate(val_loader)
    assert 0.0 <= metrics["accuracy"] <= 1.0
    # Example 3
    model.eval()
    explainer = Explainer(model=model, methods=["grad_cam", "smoothgrad", "attention"])
    with torch.no_grad():
        images, labels = next(iter(val_loader))
        explanations = explainer.explain(images.to(device), target_class=0)
    assert explanations["grad_cam"].shape == (4, 32, 32)
    assert explanations["smoothgrad"].shape == (4, 3, 32, 32)
    assert "attention" in explanations["skipped"]  # a CNN has no attention: skipped, not fatal


def test_custom_explainer_subclass():
    class MyExplainer(BaseExplainer):
        def explain(self, inputs, model, target_class):
            x = inputs.detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(model(x)[:, target_class].sum(), x)
            return grad.abs().amax(dim=1)  # [B, H, W]

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2))
    inputs = torch.randn(2, 3, 8, 8)
    assert MyExplainer().explain(inputs, model, target_class=1).shape == (2, 8, 8)
    assert MyExplainer(model).attribute(inputs, 0).shape == (2, 8, 8)


# -- Examples 2 and 4, testing utilities: segmentation and multitask with dummy data ---------------
@pytest.mark.slow
def test_example_multitask_and_testing_utilities(tmp_path):
    backbone = ViTSpatial(image_size=32, **TINY_VIT)
    decoder = UNetDecoder(backbone_channels=backbone.get_channel_schedule(), output_channels=21)
    seg_model = MultitaskModel(backbone=backbone, decoder=decoder, num_classes_segmentation=21)
    with torch.no_grad():
        assert seg_model(torch.randn(1, 3, 32, 32)).shape == (1, 21, 32, 32)
    assert decoder([torch.randn(1, 32, 4, 4)]).shape == (1, 21, 32, 32)  # stride 8 from the ViT
    dummy = DummyClassificationDataset(num_samples=4, image_size=(32, 32), num_classes=10)
    dummy_loader = DataLoader(dummy, batch_size=2)
    model = MultitaskModel(backbone=CNNBackbone(depth=18), attention=CBAM(512),
                           num_classes_classification=10)
    model.eval()
    with torch.no_grad():
        for batch in dummy_loader:
            output = model(batch["image"])
            assert output.shape == (2, 10)
    trainer = Trainer(model=model, max_epochs=1, device=device, output_dir=tmp_path / "t",
                      progress=False)
    history = trainer.train(dummy_loader, dummy_loader)
    assert len(history["train_loss"]) == 1 and np.isfinite(history["val_loss"][-1])
