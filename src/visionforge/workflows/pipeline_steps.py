"""One backbone of ``visionforge pipeline``: verify -> split -> (k-fold) -> two-stage
training -> test metrics and plots -> exports with smoke tests -> throughput.

Each step is a method of :class:`BackboneRun` that reuses what ``visionforge train`` and
the library already do (:func:`~visionforge.workflows.train.prepare_run` for the seeded,
stratified split, :func:`~visionforge.models.verify.verify`,
:func:`~visionforge.engine.train_staged`, :func:`~visionforge.engine.run_kfold`,
:func:`~visionforge.workflows.train.evaluate_into_run_dir`,
:func:`~visionforge.export.export_model`); the pipeline only chains them and collects one
row of the comparison table.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from visionforge.workflows.pipeline_settings import PipelineSettings

__all__ = ["BackboneRun", "StepFailed", "STEPS"]

_log = logging.getLogger(__name__)

#: the steps of one backbone, in order (``kfold`` only runs with ``kfold>=2``)
STEPS = ("prepare", "verify", "kfold", "train", "evaluate", "export", "throughput")


class StepFailed(RuntimeError):
    """A step found a problem that is not a crash (e.g. a failed verification check)."""


class BackboneRun:
    """The steps of one backbone; ``on_step(name)`` is called before each step starts."""

    def __init__(
        self,
        name: str,
        settings: PipelineSettings,
        overrides: list[str],
        out: Path,
        *,
        echo: Callable[[str], None] = print,
        on_step: Callable[[str], None] = lambda step: None,
    ) -> None:
        self.name, self.settings, self.overrides = name, settings, list(overrides)
        self.out, self.echo, self.on_step = Path(out), echo, on_step
        self.row: dict[str, Any] = {"backbone": name}
        self.cfg: Any = None
        self.data: Any = None
        self.model: Any = None
        self.model_kwargs: dict[str, Any] = {}
        self.trainer_kwargs: dict[str, Any] = {}

    def run(self) -> dict[str, Any]:
        """Run every step; returns the row of the comparison table (raises on a failure)."""
        start = time.perf_counter()
        for step in STEPS:
            if step == "kfold" and self.settings.kfold < 2:
                continue
            self.on_step(step)
            t0 = time.perf_counter()
            getattr(self, step)()
            self.row.setdefault("step_seconds", {})[step] = round(time.perf_counter() - t0, 2)
        self.row["seconds"] = round(time.perf_counter() - start, 1)
        return self.row

    # -- steps ------------------------------------------------------------------------
    def _config_overrides(self) -> list[str]:
        extra = [f"model={self.name}", f"name={self.name}"]
        if self.settings.size is not None and not any(
            o.startswith("model.kwargs.size=") for o in self.overrides
        ):
            extra.append(f"model.kwargs.size={self.settings.size}")
        if _has_aux_head(self.name) and not any(
            o.startswith("model.kwargs.aux_logits=") for o in self.overrides
        ):  # Inception: train with its auxiliary classifier (loss weight 0.4)
            extra.append("model.kwargs.aux_logits=true")
        return [*self.overrides, *extra]

    def prepare(self) -> None:
        """Compose the backbone's run config, split the data (seeded and stratified, the same
        split for every backbone), build the model."""
        from visionforge.config.loader import compose_config, save_config
        from visionforge.engine import set_seed
        from visionforge.models import create_model
        from visionforge.workflows.train import build_trainer_kwargs, prepare_run

        cfg = compose_config(self._config_overrides()).cfg
        self.out.mkdir(parents=True, exist_ok=True)
        data, _, name, kwargs = prepare_run(cfg, self.echo, run_dir=self.out)
        if self.settings.max_per_class is not None:
            _limit_per_class(data, self.settings.max_per_class)
        set_seed(cfg.seed)  # before building: the initial weights follow the seed
        self.model = create_model(name, pretrained=cfg.model.pretrained, **kwargs)
        self.cfg, self.data, self.model_kwargs = cfg, data, kwargs
        self.trainer_kwargs = build_trainer_kwargs(cfg, self.out, data)
        save_config(cfg, self.out / "config.yaml")
        if kwargs.get("aux_logits"):
            from visionforge.engine.aux_loss import AUX_LOSS_WEIGHT

            self.row["aux_loss_weight"] = AUX_LOSS_WEIGHT
        self.row.update(
            model_kwargs=kwargs,
            n_train=len(data.train),
            n_val=len(data.val) if data.val is not None else 0,
            n_test=len(data.test) if data.test is not None else 0,
            params=sum(p.numel() for p in self.model.parameters()),
        )

    def verify(self) -> None:
        """The 7 model checks on the real input shape and class count; the model's weights
        and BatchNorm statistics are restored afterwards (the checks run a training step)."""
        from visionforge.io import atomic_write_json
        from visionforge.models.verify import verify

        state = copy.deepcopy(self.model.state_dict())
        result = verify(
            self.model,
            tuple(self.data.input_size),
            len(self.data.class_names),
            _verify_device(str(self.cfg.trainer.device)),
            task="classification",
            name=self.name,
        )
        self.model.load_state_dict(state)
        atomic_write_json(self.out / "verify.json", result.to_dict())
        self.row["verify"] = f"{sum(c.passed for c in result.checks)}/{len(result.checks)}"
        if not result.passed:
            raise StepFailed(f"verification failed: {result.summary()}")

    def _loaders(self) -> tuple[Any, Any]:
        from visionforge.workflows.train import make_loader

        bs, nw = self.cfg.data.batch_size, self.cfg.data.num_workers
        train = make_loader(self.data.train, bs, shuffle=True, num_workers=nw)
        val = make_loader(self.data.val, bs, shuffle=False, num_workers=nw) if self.data.val else None
        return train, val

    def _stage_kwargs(self) -> dict[str, Any]:
        """The two stages: head on a constant LR, then the family's LR and scheduler."""
        from visionforge.engine.optim import preferred_scheduler, registered_lr_multiplier

        s = self.settings
        settings = self.trainer_kwargs["settings"]
        finetune_scheduler = settings.scheduler_for(preferred_scheduler(self.model))
        self.row.update(
            lr_multiplier=settings.lr_multiplier or registered_lr_multiplier(self.model),
            finetune_scheduler=finetune_scheduler or "none",
        )
        return {
            "head_epochs": s.head_epochs,
            "finetune_epochs": s.finetune_epochs,
            "head_lr": s.head_lr,
            "finetune_lr": s.finetune_lr,
            "head_patience": s.patience,
            "finetune_patience": s.patience,
            "head_scheduler": None,
            "finetune_scheduler": finetune_scheduler,
            "monitor": settings.monitor,
        }

    def kfold(self) -> None:
        """Stratified k-fold CV of the two-stage training on the training split."""
        from visionforge.engine import run_kfold
        from visionforge.models import create_model

        stage = self._stage_kwargs()
        monitor = stage.pop("monitor")
        summary = run_kfold(
            lambda: create_model(self.name, pretrained=self.cfg.model.pretrained, **self.model_kwargs),
            self.data.train,
            k=self.settings.kfold,
            seed=int(self.cfg.seed or 0),
            batch_size=self.cfg.data.batch_size,
            num_workers=self.cfg.data.num_workers,
            output_dir=self.out / "kfold",
            staged=True,
            staged_kwargs={**stage, "save_model": False},
            verbose=False,
            monitor=monitor,
            settings=self.trainer_kwargs["settings"],
        )
        acc_key = next((k for k in summary["mean"] if k.endswith("accuracy")), None)
        if acc_key is not None:
            self.row["kfold_accuracy"] = f"{summary['mean'][acc_key]:.4f} ± {summary['std'][acc_key]:.4f}"

    def train(self) -> None:
        """Stage 1 trains the head on the frozen backbone, stage 2 fine-tunes everything."""
        from visionforge.engine import train_staged

        train_loader, val_loader = self._loaders()
        history = train_staged(
            self.model,
            train_loader,
            val_loader,
            output_dir=self.out / "train",
            **self._stage_kwargs(),
            **self.trainer_kwargs,
        )
        self.row["best_stage"] = history.get("best_stage")
        if not (self.out / "train" / "model" / "model.json").is_file():
            raise StepFailed(f"training wrote no model dir under {self.out / 'train'}")

    def evaluate(self) -> None:
        """Test-set metrics, confusion matrix, ROC curves and sample plots into the backbone dir."""
        from visionforge.workflows.train import evaluate_into_run_dir, make_loader

        data = self.data
        split = "test" if data.test is not None else "val"
        dataset = data.test if data.test is not None else data.val
        if dataset is None:
            raise StepFailed("no test or validation split to evaluate on; set data.splits")
        loader = make_loader(dataset, self.cfg.data.batch_size, shuffle=True,
                             num_workers=self.cfg.data.num_workers, seed=self.cfg.seed)
        metrics = evaluate_into_run_dir(
            self.model, loader, self.out, task=data.task, class_names=data.class_names, split=split
        )
        self.row["split"] = split
        for key in ("accuracy", "f1_macro", "roc_auc_macro"):
            if isinstance(metrics.get(key), int | float):
                self.row[key] = float(metrics[key])
        if metrics.get("collapsed"):
            self.row["warning"] = "collapsed: predicts one class for every sample"

    def export(self) -> None:
        """Export the model dir to the chosen formats, each smoke-tested in its own runtime;
        a format whose package is missing is reported as skipped with the reason."""
        from visionforge.export import export_model

        formats = self.settings.formats
        report = export_model(
            self.out / "train" / "model",
            None if formats == ["all"] else formats,
            out_dir=self.out / "export",
        )
        self.row["exports"] = {
            r.format: {"status": r.status, "reason": r.reason} for r in report.results
        }

    def throughput(self) -> None:
        """Inference images per second on this machine (median of 3 timed batches)."""
        import torch

        from visionforge.export.base import median_latency_ms

        batch = self.settings.throughput_batch
        x = torch.rand(batch, *self.data.input_size)
        model = self.model.eval().cpu()

        def forward() -> None:
            with torch.inference_mode():
                model(x)

        ms = median_latency_ms(forward, repeats=3, warmup=1)
        self.row["img_per_s"] = round(batch / (ms / 1000.0), 1) if ms > 0 else None


def _verify_device(device: str) -> str:
    """Where the checks run: the training device (``auto``: CUDA when there is one)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _has_aux_head(name: str) -> bool:
    """Whether registry model ``name``'s factory offers an auxiliary classifier."""
    import inspect

    from visionforge.models.factory import is_registered, model_entry

    if not is_registered(name):
        return False
    return "aux_logits" in inspect.signature(model_entry(name).obj).parameters


def _limit_per_class(data: Any, n: int) -> None:
    """Keep the first ``n`` samples of each class in every split (the ``tiny_data`` preset);
    the splits are already shuffled, so the first ones are a random draw."""
    from torch.utils.data import Subset

    from visionforge.engine.kfold import dataset_labels

    for split in ("train", "val", "test"):
        ds = getattr(data, split)
        if ds is None:
            continue
        labels = dataset_labels(ds).tolist()
        seen: dict[int, int] = {}
        keep = []
        for i, label in enumerate(labels):
            if seen.get(label, 0) < n:
                seen[label] = seen.get(label, 0) + 1
                keep.append(i)
        subset = Subset(ds, keep)
        subset.targets = [int(labels[i]) for i in keep]  # type: ignore[attr-defined]
        setattr(data, split, subset)
