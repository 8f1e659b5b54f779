"""Two-stage training: train the head on a frozen backbone, then fine-tune everything."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from torch import nn

from visionforge.engine.checkpoint import model_state_from_checkpoint
from visionforge.engine.trainer import Trainer, default_mode
from visionforge.errors import ConfigError

__all__ = ["train_staged", "freeze", "unfreeze", "better_score"]

_log = logging.getLogger(__name__)


def freeze(module: nn.Module) -> None:
    """Stop gradients for every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(False)


def unfreeze(module: nn.Module) -> None:
    """Let every parameter of ``module`` train again."""
    for p in module.parameters():
        p.requires_grad_(True)


def better_score(a: float | None, b: float | None, mode: str) -> bool:
    """True if score ``a`` beats ``b`` under ``mode`` (``min``/``max``); a missing score never
    wins and any score beats a missing one."""
    if a is None:
        return False
    if b is None:
        return True
    return a < b if mode == "min" else a > b


def train_staged(
    model: nn.Module,
    train_loader: Any,
    val_loader: Any = None,
    *,
    head_epochs: int = 5,
    finetune_epochs: int = 10,
    head_lr: float = 1e-3,
    finetune_lr: float = 1e-4,
    head_patience: int | None = 5,
    finetune_patience: int | None = 5,
    head_scheduler: Any = None,
    finetune_scheduler: Any = None,
    backbone: str = "backbone",
    output_dir: str | os.PathLike[str] = "runs/staged",
    monitor: str = "val_loss",
    mode: str | None = None,
    **trainer_kwargs: Any,
) -> dict[str, Any]:
    """Train ``model``'s head with ``model.<backbone>`` frozen, then fine-tune all of it.

    Stage 1 (``head``) trains the trainable parameters outside the backbone with
    ``head_lr``, ``head_scheduler`` and early-stopping ``head_patience``; stage 2
    (``finetune``) unfreezes everything and trains with ``finetune_lr`` and its own
    scheduler and patience. Each stage keeps its ``best.ckpt`` under
    ``output_dir/stage1_head`` and ``output_dir/stage2_finetune``; the best of the two
    (by ``monitor``) is loaded into ``model`` at the end and saved to ``output_dir/model``.

    Returns ``{"head": history, "finetune": history, "best_stage": name, "best_score": x}``.
    Extra keywords go to both stages' :class:`Trainer`.
    """
    # imported here: the models package is heavy and imports parts of the engine
    from visionforge.io import atomic_write_json
    from visionforge.models.spec import model_spec

    part = getattr(model, backbone, None)
    if not isinstance(part, nn.Module):
        raise ConfigError(
            f"train_staged needs model.{backbone} (the part to freeze in stage 1); "
            f"{type(model).__name__} has no such sub-module. Pass backbone='<attribute name>'."
        )
    mode = mode or default_mode(monitor)
    out = Path(output_dir)
    save_model = trainer_kwargs.pop("save_model", True)
    stages = _Stages(model, train_loader, val_loader, out, monitor, mode, trainer_kwargs)
    freeze(part)
    try:
        if not any(p.requires_grad for p in model.parameters()):
            raise ConfigError("stage 1 has nothing to train: every parameter is in the backbone")
        stages.run(
            "head",
            "stage1_head",
            lr=head_lr,
            max_epochs=head_epochs,
            early_stopping_patience=head_patience,
            scheduler=head_scheduler,
        )
    finally:
        unfreeze(part)
    last = stages.run(
        "finetune",
        "stage2_finetune",
        lr=finetune_lr,
        max_epochs=finetune_epochs,
        early_stopping_patience=finetune_patience,
        scheduler=finetune_scheduler,
    )
    result = stages.load_best()
    atomic_write_json(out / "history.json", result)
    if save_model and model_spec(model):
        metrics = {f"best_{monitor}": result["best_score"], "best_stage": result["best_stage"]}
        _save_best(model, last, out / "model", metrics)
    return result


class _Stages:
    """Runs the stages of :func:`train_staged` on one model and keeps each stage's history,
    best checkpoint and best score."""

    def __init__(
        self,
        model: nn.Module,
        train_loader: Any,
        val_loader: Any,
        out: Path,
        monitor: str,
        mode: str,
        trainer_kwargs: dict[str, Any],
    ) -> None:
        self.model, self.train_loader, self.val_loader = model, train_loader, val_loader
        self.out, self.monitor, self.mode, self.trainer_kwargs = out, monitor, mode, trainer_kwargs
        self.histories: dict[str, Any] = {}
        self.best_paths: dict[str, str | None] = {}
        self.scores: dict[str, float | None] = {}

    def run(self, name: str, sub: str, **kw: Any) -> Trainer:
        """Train stage ``name`` in ``out/sub`` with the stage's own settings ``kw``."""
        trainer = Trainer(
            self.model,
            output_dir=self.out / sub,
            monitor=self.monitor,
            mode=self.mode,
            save_model=False,
            **kw,
            **self.trainer_kwargs,
        )
        self.histories[name] = trainer.train(self.train_loader, self.val_loader)
        self.best_paths[name] = trainer.best_model_path
        self.scores[name] = self.histories[name].get("best", {}).get(f"best_{self.monitor}")
        return trainer

    def load_best(self) -> dict[str, Any]:
        """Load the better stage's best checkpoint into the model; returns the histories with
        ``best_stage`` and ``best_score``."""
        head, finetune = self.scores["head"], self.scores["finetune"]
        best = "head" if better_score(head, finetune, self.mode) else "finetune"
        if self.best_paths.get(best):
            self.model.load_state_dict(model_state_from_checkpoint(self.best_paths[best]))
        return {**self.histories, "best_stage": best, "best_score": self.scores[best]}


def _save_best(model: nn.Module, last: Trainer, model_dir: Path, metrics: dict[str, Any]) -> None:
    """Save ``model`` (holding the best stage's weights) as a model dir, with the task, class
    names, input size and preprocessing the last stage's trainer used."""
    from visionforge.models.model_dir import save_model_dir

    assert last.module is not None
    save_model_dir(
        model,
        model_dir,
        task=last.module.task,
        class_names=last.class_names,
        input_size=last.input_size,
        preprocessing=last.preprocessing,
        metrics=metrics,
    )
