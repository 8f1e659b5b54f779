"""The Vision PyTorch Lightning framework document's examples, run against the compat layer.

Each test quotes the document's block it runs; ``...`` bodies of the document are filled
with tiny networks/data (the only adaptation).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from visionforge.compat.lightning import (
    BaseVisionCallback,
    BaseVisionDataModule,
    BaseVisionModel,
    CutMixTransform,
    DataContract,
    DataInterface,
    MixupTransform,
    ModelContract,
    ModelInterface,
    ModelRegistry,
    TaskType,
    TrainerFactory,
    TrainerInterface,
    register_callback,
    register_datamodule,
    register_model,
)
from visionforge.errors import ConfigError
from visionforge.registry import CALLBACKS, DATAMODULES


@pytest.fixture
def registered():
    """Names registered by a test are removed afterwards (the registries are global)."""
    from visionforge.compat.lightning import LIGHTNING_MODELS

    added: list[tuple] = []
    yield added
    for reg, name in ((LIGHTNING_MODELS, "resnet"), (DATAMODULES, "tiny_blobs"),
                      (CALLBACKS, "epoch_counter")):
        if name in reg:
            reg.remove(name)


# "Adding New Models: 1. inherit from BaseVisionModel 2. @register_model("model_name")"
def _register_resnet():
    @register_model("resnet", task_type="classification")
    class ResNetClassifier(BaseVisionModel):
        # "Template Method Pattern": subclasses implement the backbone
        def _build_backbone(self):
            return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten())

        def _build_head(self):
            return nn.Linear(8, self.num_classes)

    return ResNetClassifier


# "Adding New Datasets: 1. inherit from BaseVisionDataModule 2. @register_datamodule(...)"
def _register_blobs():
    @register_datamodule("tiny_blobs")
    class TinyBlobs(BaseVisionDataModule):
        default_image_size = 12

        def _build(self):
            g = torch.Generator().manual_seed(0)
            y = torch.arange(24) % 2
            s = self.image_size
            x = torch.rand(24, 3, s, s, generator=g) * 0.2 + y.view(-1, 1, 1, 1) * 0.8
            self.train_set = TensorDataset(x[:16], y[:16])
            self.val_set = TensorDataset(x[16:], y[16:])
            self.class_names = ["dark", "bright"]

    return TinyBlobs


def test_registry_pattern_and_factory_pattern_train_a_model(registered, tmp_path):
    """``model = ModelRegistry.create_model("resnet", config)`` and
    ``TrainerFactory.create_trainer(config)`` -> ``pl.Trainer``, then Lightning's fit."""
    import lightning.pytorch as pl

    from visionforge.config.loader import compose_config

    _register_resnet()
    blobs = _register_blobs()
    config = compose_config(
        ["trainer=cpu", "trainer.max_epochs=3", "optimizer.lr=0.05", "scheduler=none",
         "callbacks.progress=false", "data.num_classes=2"], env={}).cfg
    model = ModelRegistry.create_model("resnet", config)
    assert ModelRegistry.get_task_type("resnet") == "classification"
    assert model.lr == 0.05 and model.num_classes == 2
    trainer = TrainerFactory.create_trainer(config, output_dir=tmp_path / "run")
    assert isinstance(trainer, pl.Trainer) and trainer.max_epochs == 3
    assert any(type(c).__name__ == "EarlyStopping" for c in trainer.callbacks)
    dm = DATAMODULES.get("tiny_blobs")(batch_size=8, num_workers=0)
    assert isinstance(dm, blobs)
    trainer.fit(model, datamodule=dm)
    # the template step logged "train/loss"; TaskModule's validation metrics are there too
    assert "train/loss" in trainer.logged_metrics
    assert float(trainer.callback_metrics["val_accuracy"]) == 1.0
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_factory_settings_reach_lightning(tmp_path):
    """``config.trainer`` settings mean what they mean in ``visionforge train``."""
    from visionforge.config.loader import compose_config

    config = compose_config(["trainer=cpu", "trainer.accumulate_grad_batches=2",
                             "trainer.gradient_clip_value=0.5", "trainer.validation_freq=3",
                             "callbacks.early_stopping=false", "callbacks.progress=false"],
                            env={}).cfg
    trainer = TrainerFactory.create_trainer(config, output_dir=tmp_path / "run", task="signal")
    assert trainer.accumulate_grad_batches == 2 and trainer.gradient_clip_val == 0.5
    assert trainer.check_val_every_n_epoch == 3 and trainer.max_epochs == 30  # signal default
    assert not any(type(c).__name__ == "EarlyStopping" for c in trainer.callbacks)


def test_template_method_needs_the_backbone():
    """``@abstractmethod def _build_backbone(self)``: the base class cannot be built alone."""
    with pytest.raises(TypeError, match="_build_backbone"):
        BaseVisionModel({"num_classes": 2})


def test_type_safety_forward_is_backbone_then_head(registered):
    """``features = self.backbone(x); output = self.head(features)``"""
    model = _register_resnet()({"num_classes": 3})
    x = torch.rand(2, 3, 16, 16)
    features: torch.Tensor = model.backbone(x)
    assert torch.equal(model(x), model.head(features)) and model(x).shape == (2, 3)


def test_contract_validation():
    """``ModelContract.validate_model(model, task_type) -> bool``"""
    model = ModelRegistry.create_model("small_cnn", {"model": {"kwargs": {"width": 8}},
                                                     "num_classes": 4})
    assert ModelContract.validate_model(model, TaskType.CLASSIFICATION) is True
    assert isinstance(model, ModelInterface)
    with pytest.raises(ConfigError, match="training_step"):
        ModelContract.validate_model(nn.Linear(2, 2), TaskType.CLASSIFICATION)
    with pytest.raises(ConfigError, match="not segmentation"):
        ModelContract.validate_model(model, "segmentation")


def test_data_and_trainer_interfaces():
    """"Interfaces: clear contracts for models, data, and training components"."""
    import lightning.pytorch as pl

    from visionforge.data.datamodules import ImageFolderDataModule
    from visionforge.engine import Trainer

    assert issubclass(ImageFolderDataModule, DataInterface)
    assert isinstance(pl.Trainer(logger=False, enable_progress_bar=False), TrainerInterface)
    assert isinstance(Trainer(nn.Linear(2, 2)), TrainerInterface)
    assert isinstance(pl.LightningDataModule(), DataInterface)
    assert DataContract.validate_datamodule(pl.LightningDataModule())
    with pytest.raises(ConfigError, match="train_dataloader"):
        DataContract.validate_datamodule(object())


def test_custom_callback_registration(registered, tmp_path):
    """``Adding Custom Callbacks: inherit from BaseVisionCallback, @register_callback(...)``"""

    @register_callback("epoch_counter")
    class EpochCounter(BaseVisionCallback):
        def __init__(self):
            self.epochs = 0

        def on_train_epoch_end(self, trainer, pl_module):
            self.epochs += 1

    _register_resnet()
    trainer = TrainerFactory.create_trainer(
        {"trainer": {"max_epochs": 2, "device": "cpu"}, "callbacks": {"progress": False}},
        output_dir=tmp_path / "run", callbacks=["epoch_counter"], has_val=False)
    counters = [c for c in trainer.callbacks if isinstance(c, EpochCounter)]
    assert len(counters) == 1
    data = torch.utils.data.DataLoader(
        TensorDataset(torch.rand(8, 3, 8, 8), torch.arange(8) % 2), batch_size=4)
    trainer.fit(ModelRegistry.create_model("resnet", {"num_classes": 2}), data)
    assert counters[0].epochs == 2


def test_strategy_pattern_mixup_cutmix():
    """``MixupTransform()(images, targets)`` / ``CutMixTransform()(images, targets)``"""
    images, targets = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 1])
    for strategy in (MixupTransform(num_classes=3), CutMixTransform(num_classes=3)):
        mixed, soft = strategy(images, targets)
        assert mixed.shape == images.shape and soft.shape == (4, 3)
        assert torch.allclose(soft.sum(1), torch.ones(4))


def test_configuration_composition():
    """``python main.py model=resnet data=cifar10 trainer=multi_gpu`` composes the same way."""
    from visionforge.config.loader import compose_config

    cfg = compose_config(["model=resnet", "data=cifar10", "trainer=multi_gpu"], env={}).cfg
    assert cfg.model.name.startswith("resnet") and cfg.data.kind == "cifar10"
    assert cfg.trainer.devices == -1
