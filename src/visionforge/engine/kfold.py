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

    from visionforge.engine.trainer import Trainer, default_mode
    from visionforge.io import atomic_write_json

    if k < 2:
        raise ConfigError(f"k-fold needs k >= 2, got k={k}")
    y = np.asarray(labels) if labels is not None else dataset_labels(dataset)
    if len(y) != len(dataset):
        raise DataError(f"{len(y)} labels for {len(dataset)} samples")
    out = Path(output_dir)
    monitor = trainer_kwargs.get("monitor", "val_loss")
    mode = trainer_kwargs.get("mode") or default_mode(monitor)

    def loader(idx: np.ndarray, shuffle: bool) -> DataLoader:
        return DataLoader(
            Subset(dataset, idx.tolist()),
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=num_workers,
        )

    def fit_one(train_idx: np.ndarray, val_idx: np.ndarray, run_dir: Path) -> tuple[Trainer, Any]:
        model = model_fn()
        kw = {"seed": seed, **trainer_kwargs}
        if staged:
            from visionforge.engine.staged import train_staged

            hist = train_staged(
                model,
                loader(train_idx, True),
                loader(val_idx, False),
                output_dir=run_dir,
                **{**kw, **(staged_kwargs or {})},
            )
            trainer = Trainer(model, output_dir=run_dir, **{**kw, "save_model": False})
            return trainer, hist.get("best_score")
        trainer = Trainer(model, output_dir=run_dir, **kw)
        hist = trainer.train(loader(train_idx, True), loader(val_idx, False))
        return trainer, hist.get("best", {}).get(f"best_{monitor}")

    outer = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    folds: list[dict[str, Any]] = []
    for i, (train_idx, test_idx) in enumerate(outer.split(np.zeros(len(y)), y)):
        fold_dir = out / f"fold_{i}"
        if nested:
            inner = StratifiedKFold(n_splits=inner_k, shuffle=True, random_state=seed)
            best: tuple[Any, Any, int] | None = None
            for j, (a, b) in enumerate(inner.split(np.zeros(len(train_idx)), y[train_idx])):
                trainer, score = fit_one(train_idx[a], train_idx[b], fold_dir / f"inner_{j}")
                if best is None or (
                    score is not None
                    and (best[1] is None or (score < best[1] if mode == "min" else score > best[1]))
                ):
                    best = (trainer, score, j)
            assert best is not None
            trainer, chosen = best[0], best[2]
        else:
            trainer, _ = fit_one(train_idx, test_idx, fold_dir)
            chosen = None
        metrics = trainer.evaluate(loader(test_idx, False))
        entry = {
            "fold": i,
            "n_train": int(len(train_idx)),
            "n_test": int(len(test_idx)),
            "metrics": metrics,
        }
        if chosen is not None:
            entry["inner_fold_chosen"] = chosen
        folds.append(entry)

    mean, std = _summarise(folds)
    summary = {
        "k": k,
        "seed": seed,
        "nested": nested,
        "staged": staged,
        "folds": folds,
        "mean": mean,
        "std": std,
    }
    summary["table"] = format_summary_table(summary)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "kfold_summary.json", summary)
    if verbose:
        print(summary["table"])
    return summary
