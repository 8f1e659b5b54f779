"""``Experiment``: train with the engine's ``Trainer``, evaluate, and write the run's outputs.

The training loop, checkpoints (``checkpoints/last.ckpt``, ``best.ckpt``) and
``history.json`` come from :class:`visionforge.engine.Trainer`; the experiment
adds the final evaluation (``metrics.json``, ``plots/``) and ``report.html``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from torch import nn

from visionforge.errors import ConfigError
from visionforge.evaluation.evaluator import Evaluator

__all__ = ["Experiment"]


class Experiment:
    """Train ``model`` for ``num_epochs``, evaluate it on the validation data, write a report.

    Args:
        model: the model to train.
        trainer: a ``visionforge.engine.Trainer`` for ``model``; None builds one with
            ``Trainer(model, max_epochs=num_epochs, output_dir=checkpoint_dir, **trainer_kwargs)``.
            A given trainer is run with ``max_epochs=num_epochs`` and ``output_dir=checkpoint_dir``.
        evaluator: an :class:`Evaluator` (default ``Evaluator(model)``).
        num_epochs: training epochs.
        checkpoint_dir: the run directory (checkpoints, history, metrics, plots, report).
        report: write ``report.html`` at the end; ``pdf`` also writes ``report.pdf``.

    Example:
        >>> history = Experiment(model, None, None, 5, "runs/exp").run(train_dl, val_dl)
        >>> history["final_metrics"]["accuracy"], history["checkpoints"]["best"]
    """

    def __init__(
        self,
        model: nn.Module,
        trainer: Any = None,
        evaluator: Evaluator | None = None,
        num_epochs: int = 10,
        checkpoint_dir: str | os.PathLike[str] = "runs/experiment",
        *,
        report: bool = True,
        pdf: bool = False,
        trainer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if num_epochs < 1:
            raise ConfigError(f"num_epochs must be >= 1, got {num_epochs}")
        self.model = model
        self.num_epochs = int(num_epochs)
        self.checkpoint_dir = Path(checkpoint_dir)
        if trainer is None:
            from visionforge.engine import Trainer

            trainer = Trainer(
                model,
                max_epochs=self.num_epochs,
                output_dir=self.checkpoint_dir,
                **(trainer_kwargs or {}),
            )
        elif getattr(trainer, "model", model) is not model:
            raise ConfigError("the trainer was built for a different model than the experiment's")
        else:
            trainer.settings = trainer.settings.replace(
                max_epochs=self.num_epochs, output_dir=self.checkpoint_dir
            )
            trainer.output_dir = self.checkpoint_dir
        self.trainer = trainer
        self.evaluator = evaluator or Evaluator(model)
        if self.evaluator.model is not model:
            raise ConfigError("the evaluator was built for a different model than the experiment's")
        self.report = report
        self.pdf = pdf
        self.history: dict[str, Any] | None = None

    def run(self, train_loader: Any, val_loader: Any) -> dict[str, Any]:
        """Train, evaluate on ``val_loader`` and write outputs; returns the history with
        ``final_metrics``, ``checkpoints`` (paths) and ``runtimes`` added."""
        t0 = time.perf_counter()
        history = dict(self.trainer.train(train_loader, val_loader))
        t_train = time.perf_counter() - t0
        if getattr(self.trainer, "class_names", None) and not self.evaluator.class_names:
            self.evaluator.class_names = list(self.trainer.class_names)
        metrics = self.evaluator.evaluate(val_loader)
        self.evaluator.save(self.checkpoint_dir)
        ckpt_dir = self.checkpoint_dir / "checkpoints"
        history["final_metrics"] = metrics
        history["checkpoints"] = (
            {p.stem: str(p) for p in sorted(ckpt_dir.glob("*.ckpt"))} if ckpt_dir.is_dir() else {}
        )
        history["runtimes"] = {
            "train_seconds": round(t_train, 3),
            "evaluate_seconds": metrics["runtime"]["seconds"],
        }
        if self.report:
            from visionforge.evaluation.report import build_run_report

            history["report"] = str(
                build_run_report(self.checkpoint_dir, pdf=self.pdf, runtimes=history["runtimes"])
            )
        self.history = history
        return history
