"""One definition of every training setting: Python defaults = CLI defaults, mode inference,
callbacks.* flags, keyword-only Trainer arguments, scheduler=auto."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from engine_testkit import TinyCNN

from visionforge.config.loader import compose_config
from visionforge.config.settings import (
    FALLBACK_SCHEDULER,
    TrainSettings,
    default_mode,
    section_fields,
    settings_from_config,
)
from visionforge.engine import Trainer
from visionforge.errors import ConfigError


def test_python_and_cli_defaults_are_identical():
    cli = settings_from_config(compose_config([], env={}).cfg)
    python = Trainer(TinyCNN()).settings
    differing = {
        f.name: (getattr(cli, f.name), getattr(python, f.name))
        for f in dataclasses.fields(TrainSettings)
        if getattr(cli, f.name) != getattr(python, f.name)
    }
    assert differing == {}


def test_every_shipped_group_option_only_names_settings_keys():
    """trainer=cpu etc. may change values, but every key they set is a TrainSettings key."""
    from visionforge.config.loader import CONF_DIR, group_options
    from visionforge.config.settings import config_key

    for section in ("trainer", "optimizer", "callbacks"):
        keys = {config_key(f) for f in section_fields(section)}
        for option in group_options(section):
            import yaml

            values = yaml.safe_load((CONF_DIR / section / f"{option}.yaml").read_text()) or {}
            assert set(values) <= keys, (section, option, set(values) - keys)


@pytest.mark.parametrize(
    ("monitor", "mode"),
    [("val_loss", "min"), ("val_accuracy", "max"), ("val_mean_iou", "max"),
     ("val_f1_macro", "max"), ("train_loss", "min"), ("val_dice", "max")],
)
def test_mode_is_inferred_from_the_monitored_metric(monitor, mode):
    assert default_mode(monitor) == mode
    assert TrainSettings(monitor=monitor).resolved_mode == mode
    cfg = compose_config([f"trainer.monitor={monitor}"], env={}).cfg
    assert settings_from_config(cfg).resolved_mode == mode
    assert TrainSettings(monitor=monitor, mode="min").resolved_mode == "min"  # explicit wins


def _loaders():
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, 16, 16, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    ds = TensorDataset(x, y)
    return DataLoader(ds, batch_size=8, shuffle=True), DataLoader(ds, batch_size=16)


def test_monitoring_accuracy_keeps_the_best_not_the_worst_checkpoint(tmp_path):
    train, val = _loaders()
    trainer = Trainer(TinyCNN(), max_epochs=4, lr=0.05, monitor="val_accuracy",
                      output_dir=tmp_path, device="cpu", progress=False,
                      early_stopping=False, scheduler="none")
    hist = trainer.train(train, val)
    accs = hist["val_metrics"]["accuracy"]
    assert trainer.mode == "max"
    assert hist["best"]["best_val_accuracy"] == pytest.approx(max(accs))
    assert len(set(accs)) > 1, "accuracy never changed: the test cannot tell best from worst"


def test_callback_flags_take_effect(tmp_path):
    train, val = _loaders()
    trainer = Trainer(TinyCNN(), max_epochs=1, output_dir=tmp_path, device="cpu", progress=False,
                      checkpoint=False, early_stopping=False, lr_monitor=False)
    trainer.train(train, val)
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint

    kinds = (ModelCheckpoint, EarlyStopping, LearningRateMonitor)
    assert not [cb for cb in trainer.pl_trainer.callbacks if isinstance(cb, kinds)]
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())
    assert (tmp_path / "history.json").is_file()

    on = Trainer(TinyCNN(), max_epochs=1, output_dir=tmp_path / "on", device="cpu",
                 progress=False)
    on.train(train, val)
    for kind in kinds:
        assert any(isinstance(cb, kind) for cb in on.pl_trainer.callbacks), kind
    assert (tmp_path / "on" / "checkpoints" / "best.ckpt").is_file()


def test_cli_callbacks_checkpoint_false_reaches_the_trainer():
    cfg = compose_config(["callbacks.checkpoint=false", "callbacks.lr_monitor=false"], env={}).cfg
    s = settings_from_config(cfg)
    assert s.checkpoint is False and s.lr_monitor is False and s.early_stopping is True


def test_registered_callbacks_can_be_named(tmp_path):
    from visionforge.registry import CALLBACKS

    assert {"checkpoint", "early_stopping", "lr_monitor", "ema", "swa"} <= set(CALLBACKS.list())
    train, val = _loaders()
    trainer = Trainer(TinyCNN(), max_epochs=1, output_dir=tmp_path, device="cpu", progress=False,
                      ema=False, callbacks=["ema"])
    trainer.train(train, val)
    assert "EMAWeightAveraging" in {type(cb).__name__ for cb in trainer.pl_trainer.callbacks}


def test_trainer_arguments_after_model_are_keyword_only():
    with pytest.raises(TypeError):
        Trainer(TinyCNN(), None)  # type: ignore[misc]


def test_unknown_setting_names_the_closest_one():
    with pytest.raises(ConfigError, match="did you mean 'max_epochs'"):
        Trainer(TinyCNN(), max_epoch=3)


def test_bad_values_are_refused_with_the_setting_name():
    with pytest.raises(ConfigError, match="mode"):
        TrainSettings(mode="biggest")
    with pytest.raises(ConfigError, match="lr"):
        TrainSettings(lr=0)


def test_scheduler_auto_uses_the_family_preference_else_the_fallback():
    s = TrainSettings()
    assert s.scheduler == "auto"
    assert s.scheduler_for("warmup_cosine") == "warmup_cosine"
    assert s.scheduler_for(None) == FALLBACK_SCHEDULER
    assert TrainSettings(scheduler="none").scheduler_for("onecycle") is None
    assert TrainSettings(scheduler="plateau").scheduler_for("onecycle") == "plateau"


def test_max_epochs_none_means_the_task_default():
    s = TrainSettings()
    assert s.epochs_for("classification") == 10 and s.epochs_for("signal") == 30
    assert TrainSettings(max_epochs=3).epochs_for("signal") == 3


def test_schema_sections_are_generated_from_the_settings():
    from visionforge.config import schema

    for section, cls in (("trainer", schema.TrainerConfig), ("optimizer", schema.OptimizerConfig),
                         ("loss", schema.LossConfig), ("callbacks", schema.CallbacksConfig)):
        got = {f.metadata["setting"]: f.default for f in dataclasses.fields(cls)}
        want = {f.name: f.default for f in section_fields(section)}
        assert got == want


def test_lr_multiplier_setting_reaches_the_optimizer(tmp_path):
    import visionforge as vf

    train, val = _loaders()
    model = vf.create_model("custom_swin_transformer", size="tiny", num_classes=2, img_size=16)
    default = Trainer(model, max_epochs=1, output_dir=tmp_path / "a", device="cpu",
                      progress=False, scheduler="none", lr=1e-3)
    default.train(train, val)
    assert [lr for _, lr in default.module.effective_lrs] == pytest.approx([0.7e-3] * len(default.module.effective_lrs))  # Swin 0.7x
    cfg = compose_config(["optimizer.lr_multiplier=1.0", "scheduler.name=none"], env={}).cfg
    settings = settings_from_config(cfg, output_dir=tmp_path / "b", device="cpu", progress=False,
                                    max_epochs=1)
    override = Trainer(model, settings=settings)
    override.train(train, val)
    assert [lr for _, lr in override.module.effective_lrs] == pytest.approx([1e-3] * len(override.module.effective_lrs))
