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

__all__ = ["train_staged", "freeze", "unfreeze"]

_log = logging.getLogger(__name__)


def freeze(module: nn.Module) -> None:
    """Stop gradients for every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(False)


def unfreeze(module: nn.Module) -> None:
    """Let every parameter of ``module`` train again."""
    for p in module.parameters():
        p.requires_grad_(True)


def _better(a: float | None, b: float | None, mode: str) -> bool:
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
    part = getattr(model, backbone, None)
    if not isinstance(part, nn.Module):
        raise ConfigError(
            f"train_staged needs model.{backbone} (the part to freeze in stage 1); "
            f"{type(model).__name__} has no such sub-module. Pass backbone='<attribute name>'."
        )
    mode = mode or default_mode(monitor)
    out = Path(output_dir)
    save_model = trainer_kwargs.pop("save_model", True)
    stages: dict[str, Any] = {}
    best_paths: dict[str, str | None] = {}
    scores: dict[str, float | None] = {}

    def run(name: str, sub: str, **kw: Any) -> Trainer:
        trainer = Trainer(
            model,
            output_dir=out / sub,
            monitor=monitor,
            mode=mode,
            save_model=False,
            **kw,
            **trainer_kwargs,
        )
        stages[name] = trainer.train(train_loader, val_loader)
        best_paths[name] = trainer.best_model_path
        scores[name] = stages[name].get("best", {}).get(f"best_{monitor}")
        return trainer

    freeze(part)
    try:
        if not any(p.requires_grad for p in model.parameters()):
            raise ConfigError("stage 1 has nothing to train: every parameter is in the backbone")
        run(
            "head",
            "stage1_head",
            lr=head_lr,
            max_epochs=head_epochs,
            early_stopping_patience=head_patience,
            scheduler=head_scheduler,
        )
    finally:
        unfreeze(part)
    last = run(
        "finetune",
        "stage2_finetune",
        lr=finetune_lr,
        max_epochs=finetune_epochs,
        early_stopping_patience=finetune_patience,
        scheduler=finetune_scheduler,
    )

    best_stage = "head" if _better(scores["head"], scores["finetune"], mode) else "finetune"
    if best_paths.get(best_stage):
        model.load_state_dict(model_state_from_checkpoint(best_paths[best_stage]))
    result = {**stages, "best_stage": best_stage, "best_score": scores[best_stage]}

    from visionforge.io import atomic_write_json

    atomic_write_json(out / "history.json", result)
    if save_model and getattr(model, "visionforge_spec", None):
        from visionforge.models.model_dir import save_model_dir

        assert last.module is not None
        save_model_dir(
            model,
            out / "model",
            task=last.module.task,
            class_names=last.class_names,
            input_size=last.input_size,
            preprocessing=last.preprocessing,
            metrics={f"best_{monitor}": scores[best_stage], "best_stage": best_stage},
        )
    return result
