"""Stratified k-fold cross-validation (optionally nested, optionally staged)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from torch.utils.data import DataLoader, Subset

from visionforge.errors import ConfigError, DataError

__all__ = ["run_kfold", "dataset_labels", "format_summary_table"]


def dataset_labels(dataset: Any) -> np.ndarray:
    """Class labels of every sample (``targets``/``labels`` attribute, else read each item)."""
    for attr in ("targets", "labels"):
        values = getattr(dataset, attr, None)
        if values is not None and len(values) == len(dataset):
            return np.asarray([int(v) for v in values])
    out = []
    for i in range(len(dataset)):
        item = dataset[i]
        if isinstance(item, dict):
            if "label" not in item:
                raise DataError("k-fold needs class labels: dataset items have no 'label' key")
            out.append(int(item["label"]))
        else:
            out.append(int(item[1]))
    return np.asarray(out)


def _summarise(folds: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    names = sorted({k for f in folds for k in f["metrics"]})
    mean, std = {}, {}
    for n in names:
        vals = np.asarray([f["metrics"][n] for f in folds if n in f["metrics"]], dtype=float)
        mean[n] = float(vals.mean())
        std[n] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    return mean, std


def format_summary_table(summary: dict[str, Any]) -> str:
    """A plain-text table: one row per fold, then ``mean ± std``."""
    names = sorted(summary["mean"])
    header = ["fold", *names]
    rows = [
        [str(f["fold"]), *[f"{f['metrics'].get(n, math.nan):.4f}" for n in names]]
        for f in summary["folds"]
    ]
    rows.append(
        ["mean ± std", *[f"{summary['mean'][n]:.4f} ± {summary['std'][n]:.4f}" for n in names]]
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)


def run_kfold(
    model_fn: Callable[[], nn.Module],
    dataset: Any,
    *,
    k: int = 5,
    labels: Sequence[int] | None = None,
    seed: int = 0,
    batch_size: int = 32,
    num_workers: int = 0,
    output_dir: str | os.PathLike[str] = "runs/kfold",
    staged: bool = False,
    staged_kwargs: dict[str, Any] | None = None,
    nested: bool = False,
    inner_k: int = 3,
    verbose: bool = True,
    **trainer_kwargs: Any,
) -> dict[str, Any]:
    """Train one model per stratified fold and summarise the held-out metrics.

    ``model_fn()`` builds a fresh model for every training. Without ``nested`` the
    held-out fold is both the validation set (early stopping, best checkpoint) and the
    scored set. With ``nested=True`` each outer fold's training part is split again into
    ``inner_k`` stratified folds; the inner model with the best validation score is then
    scored on the untouched outer fold. ``staged=True`` trains each model with
    :func:`train_staged` (``staged_kwargs``). Per-fold metrics and ``mean``/``std`` are
    written to ``output_dir/kfold_summary.json`` and printed as a table.
    """
    from sklearn.model_selection import StratifiedKFold

    from visionforge.engine.trainer import default_mode

    if k < 2:
        raise ConfigError(f"k-fold needs k >= 2, got k={k}")
    y = np.asarray(labels) if labels is not None else dataset_labels(dataset)
    if len(y) != len(dataset):
        raise DataError(f"{len(y)} labels for {len(dataset)} samples")
    monitor = trainer_kwargs.get("monitor", "val_loss")
    fitter = _FoldFitter(
        model_fn,
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        staged_kwargs=staged_kwargs if staged else None,
        trainer_kwargs={"seed": seed, **trainer_kwargs},
        monitor=monitor,
        mode=trainer_kwargs.get("mode") or default_mode(monitor),
    )
    out = Path(output_dir)
    outer = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    folds: list[dict[str, Any]] = []
    for i, (train_idx, test_idx) in enumerate(outer.split(np.zeros(len(y)), y)):
        fold_dir = out / f"fold_{i}"
        chosen = None
        if nested:
            trainer, chosen = fitter.fit_nested(train_idx, y[train_idx], inner_k, seed, fold_dir)
        else:
            trainer, _ = fitter.fit(train_idx, test_idx, fold_dir)
        entry = {
            "fold": i,
            "n_train": int(len(train_idx)),
            "n_test": int(len(test_idx)),
            "metrics": trainer.evaluate(fitter.loader(test_idx, False)),
        }
        if chosen is not None:
            entry["inner_fold_chosen"] = chosen
        folds.append(entry)
    summary = {"k": k, "seed": seed, "nested": nested, "staged": staged, "folds": folds}
    return _write_summary(summary, out, verbose)


def _write_summary(summary: dict[str, Any], out: Path, verbose: bool) -> dict[str, Any]:
    """Add ``mean``/``std`` and the table to ``summary``; write and (``verbose``) print it."""
    from visionforge.io import atomic_write_json

    summary["mean"], summary["std"] = _summarise(summary["folds"])
    summary["table"] = format_summary_table(summary)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "kfold_summary.json", summary)
    if verbose:
        print(summary["table"])
    return summary


class _FoldFitter:
    """Trains one fresh model on given sample indices (plain or staged) for :func:`run_kfold`."""

    def __init__(
        self,
        model_fn: Callable[[], nn.Module],
        dataset: Any,
        *,
        batch_size: int,
        num_workers: int,
        staged_kwargs: dict[str, Any] | None,
        trainer_kwargs: dict[str, Any],
        monitor: str,
        mode: str,
    ) -> None:
        self.model_fn, self.dataset = model_fn, dataset
        self.batch_size, self.num_workers = batch_size, num_workers
        # None: plain training; a dict (possibly empty): train_staged with these keywords
        self.staged_kwargs = staged_kwargs
        self.trainer_kwargs, self.monitor, self.mode = trainer_kwargs, monitor, mode

    def loader(self, idx: np.ndarray, shuffle: bool) -> DataLoader:
        """A loader over the samples ``idx`` of the dataset."""
        return DataLoader(
            Subset(self.dataset, idx.tolist()),
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
        )

    def fit(self, train_idx: np.ndarray, val_idx: np.ndarray, run_dir: Path) -> tuple[Any, Any]:
        """Train on ``train_idx`` validating on ``val_idx``; returns (trainer, best score)."""
        from visionforge.engine.trainer import Trainer

        model = self.model_fn()
        kw = self.trainer_kwargs
        if self.staged_kwargs is not None:
            from visionforge.engine.staged import train_staged

            hist = train_staged(
                model,
                self.loader(train_idx, True),
                self.loader(val_idx, False),
                output_dir=run_dir,
                **{**kw, **self.staged_kwargs},
            )
            # a Trainer around the already trained model, for trainer.evaluate on the test fold
            trainer = Trainer(model, output_dir=run_dir, **{**kw, "save_model": False})
            return trainer, hist.get("best_score")
        trainer = Trainer(model, output_dir=run_dir, **kw)
        hist = trainer.train(self.loader(train_idx, True), self.loader(val_idx, False))
        return trainer, hist.get("best", {}).get(f"best_{self.monitor}")

    def fit_nested(
        self, train_idx: np.ndarray, y: np.ndarray, inner_k: int, seed: int, fold_dir: Path
    ) -> tuple[Any, int]:
        """Split ``train_idx`` into ``inner_k`` stratified folds, train on each and return the
        trainer with the best validation score and its inner fold index."""
        from sklearn.model_selection import StratifiedKFold

        from visionforge.engine.staged import better_score

        inner = StratifiedKFold(n_splits=inner_k, shuffle=True, random_state=seed)
        best: tuple[Any, Any, int] | None = None
        for j, (a, b) in enumerate(inner.split(np.zeros(len(train_idx)), y)):
            trainer, score = self.fit(train_idx[a], train_idx[b], fold_dir / f"inner_{j}")
            if best is None or better_score(score, best[1], self.mode):
                best = (trainer, score, j)
        assert best is not None
        return best[0], best[2]
