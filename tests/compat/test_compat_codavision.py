"""CODAvision's usage examples (seed 000) against ``visionforge.compat.codavision``.

Sizes are shrunk (64 px tiles, a few images, one epoch); paths are temporary folders.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from visionforge.compat.codavision import (
    FrameworkConfig,
    PyTorchDeepLabV3Plus,
    PyTorchDeepLabV3PlusTrainer,
    PyTorchKerasAdapter,
    PyTorchSegmentationTrainer,
    TensorFlowKerasAdapter,
    WeightedCrossEntropyLoss,
    create_model_adapter,
    create_training_dataloader,
    create_validation_dataloader,
    load_model,
    model_call,
    unfreeze_model,
)

HAS_TF = importlib.util.find_spec("tensorflow") is not None
SIZE = 64


@pytest.fixture(scope="module")
def images():
    return (np.random.default_rng(0).random((2, SIZE, SIZE, 3)) * 255).astype(np.float32)


# -- section 8: FrameworkConfig and the environment -------------------------------------------
def test_env_aliases_reach_framework_config_and_run_config(monkeypatch, capsys):
    from visionforge.cli.main import main
    from visionforge.config import FrameworkConfig as CoreConfig
    from visionforge.config.framework import get_framework
    from visionforge.config.loader import compose_config

    monkeypatch.setenv("CODAVISION_FRAMEWORK", "tensorflow")
    monkeypatch.setenv("CODAVISION_PYTORCH_DEVICE", "cpu")
    monkeypatch.setenv("CODAVISION_PYTORCH_AMP", "1")
    monkeypatch.setenv("CODAVISION_GRADIENT_ACCUMULATION_STEPS", "4")
    monkeypatch.setenv("CODAVISION_VALIDATION_FREQUENCY", "128")
    monkeypatch.setenv("CODAVISION_TILE_GENERATION_MODE", "legacy")
    # the class methods as documented
    assert FrameworkConfig.get_framework() == "tensorflow" == get_framework()
    assert FrameworkConfig.get_device() == "cpu" and FrameworkConfig.is_amp_enabled()
    assert not FrameworkConfig.is_pytorch_compile_enabled()
    assert FrameworkConfig.get_gradient_accumulation_steps() == 4
    assert FrameworkConfig.get_validation_frequency() == 128
    assert FrameworkConfig.get_tile_generation_mode() == "legacy"
    core = CoreConfig()
    assert core.env_variable("gradient_accumulation_steps") == "CODAVISION_GRADIENT_ACCUMULATION_STEPS"
    # the run config `visionforge train` uses
    cfg = compose_config([]).cfg
    assert cfg.framework == "tensorflow" and cfg.trainer.val_check_interval == 128
    assert cfg.trainer.accumulate_grad_batches == 4 and cfg.trainer.device == "cpu"
    # our own name wins over CODAvision's, and `config show` prints every one with its source
    monkeypatch.setenv("VISIONFORGE_GRADIENT_ACCUMULATION_STEPS", "2")
    monkeypatch.setenv("VISIONFORGE_VALIDATION_FREQUENCY", "3")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "trainer.accumulate_grad_batches" in out and "[env VISIONFORGE_GRADIENT_ACCUMULATION_STEPS]" in out
    assert "[env CODAVISION_VALIDATION_FREQUENCY]" in out and "[env VISIONFORGE_VALIDATION_FREQUENCY]" in out
    assert "'legacy'" in out and "[env CODAVISION_TILE_GENERATION_MODE]" in out


def test_tile_mode_from_env_takes_effect(monkeypatch, tmp_path):
    from visionforge.data.tiles import make_tiles
    from visionforge.errors import ConfigError

    image = np.zeros((40, 40, 3), np.uint8)
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 10:30] = 1
    monkeypatch.setenv("CODAVISION_TILE_GENERATION_MODE", "simple")
    result = make_tiles([(image, mask)], tmp_path / "t", tile_size=16, val_fraction=0.0)
    assert result.mode == "simple"
    monkeypatch.setenv("CODAVISION_TILE_GENERATION_MODE", "legacy")
    with pytest.raises(ConfigError, match="slides tiles"):
        make_tiles([(image, mask)], tmp_path / "u", tile_size=16)


def test_troubleshooting_reset_and_set_framework(monkeypatch):
    monkeypatch.setenv("CODAVISION_FRAMEWORK", "tensorflow")
    assert FrameworkConfig.get_framework() == "tensorflow"
    FrameworkConfig._framework = None  # 12.2: clear the cache before switching
    FrameworkConfig.set_framework("pytorch")
    assert FrameworkConfig.get_framework() == "pytorch"
    with pytest.raises(Exception, match="Invalid framework"):
        FrameworkConfig.set_framework("jax")


# -- sections 4.4, 5.2, 9.3, 12.6: the adapter, model_call, save and load ----------------------
def test_model_call_predicts_nhwc_and_keeps_sizes(images):
    FrameworkConfig.set_framework("pytorch")
    model = model_call("DeepLabV3_plus", IMAGE_SIZE=SIZE, NUM_CLASSES=5)
    assert isinstance(model, PyTorchKerasAdapter) and isinstance(model.model, torch.nn.Module)
    assert model.IMAGE_SIZE == SIZE and model.input_size == SIZE and model.NUM_CLASSES == 5
    predictions = model.predict(images, batch_size=4)
    assert predictions.shape == (2, SIZE, SIZE, 5)  # "Both return NHWC format"
    raw = model_call("DeepLabV3_plus", IMAGE_SIZE=SIZE, NUM_CLASSES=5, wrap_with_adapter=False)
    assert isinstance(raw, torch.nn.Module) and raw.IMAGE_SIZE == SIZE


def test_encoder_frozen_by_default_then_unfrozen():
    pytorch_model = PyTorchDeepLabV3Plus(IMAGE_SIZE=SIZE, NUM_CLASSES=5, encoder_id=0).build_model()
    total = sum(p.numel() for p in pytorch_model.parameters())
    trainable = sum(p.numel() for p in pytorch_model.parameters() if p.requires_grad)
    encoder = sum(p.numel() for p in pytorch_model.backbone.parameters())
    assert total == 40_360_357 and trainable == total - encoder  # 10.3: encoder frozen
    model = PyTorchKerasAdapter(pytorch_model)
    assert not model.trainable
    unfreeze_model(model)
    assert model.trainable and all(p.requires_grad for p in pytorch_model.parameters())


def test_adapter_fit_save_pth_and_load_model_dir(images, tmp_path):
    # 4.4: build, wrap, compile, fit, save('model.pth'); 11.3 / 12.6: load it back
    builder = PyTorchDeepLabV3Plus(IMAGE_SIZE=SIZE, NUM_CLASSES=5, encoder_id=0)
    model = PyTorchKerasAdapter(builder.build_model())
    labels = np.eye(5, dtype=np.float32)[np.random.default_rng(1).integers(0, 5, (2, SIZE, SIZE))]
    model.compile(optimizer="adam", loss="categorical_crossentropy", learning_rate=1e-4)
    history = model.fit(x=images, y=labels, batch_size=2, epochs=1,
                        validation_data=(images, labels), verbose=0)
    assert math.isfinite(history.history["loss"][0])
    model.model.eval()
    path = model.save(tmp_path / "model" / "model.pth")
    state = torch.load(path, weights_only=True)  # weights only: no pickled code
    assert set(state) == set(model.model.state_dict())
    again = load_model(tmp_path / "model")  # the folder: model.json says pytorch
    assert isinstance(again, PyTorchKerasAdapter)
    np.testing.assert_allclose(again.predict(images), model.predict(images), atol=1e-4)
    manual = PyTorchKerasAdapter(PyTorchDeepLabV3Plus(input_size=SIZE, num_classes=5,
                                                      l2_regularization_weight=0.0).build_model())
    manual.load_weights(path)  # 12.6's manual loading
    manual.model.eval()
    np.testing.assert_allclose(manual.predict(images), model.predict(images), atol=1e-4)


def test_load_model_dir_picks_framework(tmp_path, monkeypatch):
    from visionforge.errors import WeightsError
    from visionforge.interop.model_call import _resolve_model_dir

    d = tmp_path / "m"
    d.mkdir()
    (d / "model.keras").write_bytes(b"zip")
    assert _resolve_model_dir(d, None) == ("tensorflow", d / "model.keras")
    (d / "model.pth").write_bytes(b"x")
    monkeypatch.setenv("CODAVISION_FRAMEWORK", "tensorflow")  # both kinds: the env decides
    assert _resolve_model_dir(d, None)[0] == "tensorflow"
    monkeypatch.setenv("CODAVISION_FRAMEWORK", "pytorch")
    assert _resolve_model_dir(d, None) == ("pytorch", d / "model.pth")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="no model found"):
        load_model(tmp_path / "empty")


# -- section 6.2: the loss ---------------------------------------------------------------------
def _doc_weighted_ce(predictions, targets, weights, epsilon=1e-7):
    """CODAvision's WeightedCrossEntropyLoss.forward as written in the document."""
    probs = torch.clamp(F.softmax(predictions, dim=1), epsilon, 1 - epsilon)
    one_hot = F.one_hot(targets, num_classes=probs.shape[1]).permute(0, 3, 1, 2).float()
    weighted = -one_hot * torch.log(probs) * weights.view(1, -1, 1, 1)
    per_class = weighted.sum(dim=(0, 2, 3)) / (one_hot.sum(dim=(0, 2, 3)) + epsilon)
    return per_class.mean()


def test_loss_equals_codavision_reference():
    from visionforge.engine.losses import build_loss

    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 3, 16, 16, generator=g) * 2, torch.randint(0, 3, (2, 16, 16), generator=g)
    weights = torch.tensor([0.5, 2.0, 3.0])
    ours = WeightedCrossEntropyLoss(weights)(logits, target)
    torch.testing.assert_close(ours, _doc_weighted_ce(logits, target, weights), rtol=1e-5, atol=1e-6)
    # the core `codavision` loss by default: CODAvision's value with uniform weights
    reference = _doc_weighted_ce(logits, target, torch.ones(3))
    core = build_loss("codavision", "segmentation")(logits, target)
    torch.testing.assert_close(core, reference, rtol=1e-5, atol=1e-6)
    mean = build_loss("codavision", "segmentation", reduction="mean")(logits, target)
    torch.testing.assert_close(mean * 3, reference, rtol=1e-5, atol=1e-6)  # the old 1/C value


# -- sections 6.3, 7, 11.2: tiles -> dataloaders -> trainer -> history -> load_model ----------
def _write_tiles(root, n, seed):
    rng = np.random.default_rng(seed)
    (root / "im").mkdir(parents=True)
    (root / "label").mkdir()
    for i in range(n):
        mask = np.zeros((SIZE, SIZE), np.uint8)
        mask[: SIZE // 4] = rng.integers(1, 5)  # class k on a quarter, background the rest
        img = (rng.random((SIZE, SIZE, 3)) * 60 + mask[..., None] * 40).astype(np.uint8)
        Image.fromarray(img).save(root / "im" / f"t{i}.png")
        Image.fromarray(mask).save(root / "label" / f"t{i}.png")


@pytest.mark.slow
def test_training_example_with_env_settings(tmp_path, monkeypatch, images):
    _write_tiles(tmp_path / "tiles", 4, 0)
    _write_tiles(tmp_path / "val_tiles", 2, 1)
    monkeypatch.setenv("CODAVISION_VALIDATION_FREQUENCY", "2")
    monkeypatch.setenv("CODAVISION_GRADIENT_ACCUMULATION_STEPS", "2")
    monkeypatch.setenv("CODAVISION_PYTORCH_DEVICE", "cpu")
    trainer = PyTorchDeepLabV3PlusTrainer(model_path=tmp_path / "model", image_size=SIZE,
                                          num_classes=5, freeze_encoder=True)
    # num_workers=0: the 2-core test machine (the document's default is 4)
    train_loader = create_training_dataloader(tmp_path / "tiles", batch_size=2, augment=True,
                                              num_workers=0)
    val_loader = create_validation_dataloader(tmp_path / "val_tiles", batch_size=2, num_workers=0)
    images_batch, masks_batch = next(iter(train_loader))
    assert images_batch.shape == (2, 3, SIZE, SIZE) and masks_batch.dtype == torch.int64
    assert float(images_batch.max()) > 1.0  # RGB 0-255, as the model expects
    history = trainer.train(train_loader=train_loader, val_loader=val_loader, epochs=2,
                            learning_rate=1e-4, early_stopping_patience=10)
    pl_trainer = trainer.engine_trainer.pl_trainer
    assert pl_trainer.accumulate_grad_batches == 2 and pl_trainer.val_check_interval == 2
    assert len(history["loss"]) == 2 and len(history["loss_step"]) == 4  # 2 batches x 2 epochs
    assert len(history["val_loss"]) == 2 and all(math.isfinite(v) for v in history["val_loss"])
    assert isinstance(trainer.criterion, WeightedCrossEntropyLoss)  # weights from the masks
    assert not torch.allclose(trainer.criterion.weights, torch.ones(5))
    assert (tmp_path / "model" / "model_best.pth").is_file()
    loaded = load_model(tmp_path / "model")  # 11.1: the model dir is found
    trainer.model.eval()
    np.testing.assert_allclose(loaded.predict(images), PyTorchKerasAdapter(trainer.model).predict(images),
                               atol=1e-4)


def test_training_without_adapter_uses_env_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("CODAVISION_PYTORCH_DEVICE", "cpu")
    FrameworkConfig.set_framework("pytorch")
    pytorch_model = model_call("DeepLabV3_plus", IMAGE_SIZE=SIZE, NUM_CLASSES=5,
                               wrap_with_adapter=False)
    trainer = PyTorchSegmentationTrainer(model_path=tmp_path / "model")
    trainer.model = pytorch_model  # 5.2: assign the raw model
    settings = trainer.trainer_settings(epochs=100, learning_rate=1e-4, early_stopping_patience=10)
    assert settings["val_check_interval"] == 128  # ModelDefaults.VALIDATION_FREQUENCY
    assert settings["optimizer"] == "adam" and settings["scheduler"] == "plateau"
    assert settings["criterion"] == "codavision" and settings["accumulate_grad_batches"] == 1


# -- section 4.5: TensorFlowKerasAdapter and framework-agnostic code --------------------------
@pytest.mark.slow
@pytest.mark.skipif(not HAS_TF, reason='TensorFlow not installed (pip install "visionforge[tf]")')
def test_tensorflow_adapter_and_framework_switch(tmp_path, monkeypatch):
    from visionforge.interop.tensorflow import require_tensorflow

    _, keras = require_tensorflow("tests")
    keras_model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(2, 1),
                                    keras.layers.Softmax()])
    adapter = create_model_adapter(keras_model)
    assert isinstance(adapter, TensorFlowKerasAdapter) and adapter.model is keras_model
    x = np.random.default_rng(0).random((4, 4, 4, 3)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[np.random.default_rng(1).integers(0, 2, (4, 4, 4))]
    adapter.compile(optimizer="adam", loss="crossentropy", learning_rate=1e-4)
    history = adapter.fit(x, y, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    assert adapter.predict(x).shape == (4, 4, 4, 2)
    adapter.save(tmp_path / "m" / "model.keras")
    monkeypatch.setenv("CODAVISION_FRAMEWORK", "tensorflow")
    loaded = load_model(tmp_path / "m")  # a dir with only a .keras file: TensorFlow
    np.testing.assert_allclose(loaded.predict(x, verbose=0), adapter.predict(x), atol=1e-6)
    adapter.trainable = False
    assert unfreeze_model(adapter).trainable


def test_tensorflow_missing_or_selected_is_clear(monkeypatch):
    """CODAVISION_FRAMEWORK=tensorflow selects the TensorFlow backend (no silent PyTorch)."""
    from visionforge.interop.tensorflow import TensorFlowMissingError

    monkeypatch.setenv("CODAVISION_FRAMEWORK", "tensorflow")
    if HAS_TF:
        from visionforge.config.framework import get_framework

        assert get_framework() == "tensorflow" == FrameworkConfig.get_framework()
        return
    with pytest.raises(TensorFlowMissingError, match="pip install"):
        model_call("DeepLabV3_plus", IMAGE_SIZE=SIZE, NUM_CLASSES=5)
