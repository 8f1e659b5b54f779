"""Evaluation figures written as PNG files (matplotlib, object API, Agg canvas).

Figures are built with ``matplotlib.figure.Figure`` rather than ``pyplot`` so that
no global figure state is kept and nothing needs a display. Every function takes
an output path, writes the PNG atomically and returns the path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.io import atomic_write

__all__ = [
    "save_figure",
    "display_image",
    "class_colors",
    "plot_training_curves",
    "best_epoch",
    "plot_confusion_matrix",
    "plot_roc_curves",
    "plot_per_class_iou",
    "plot_classification_samples",
    "plot_segmentation_samples",
    "plot_event_probabilities",
    "plot_threshold_sweep",
    "plot_explanation",
]

PathLike = str | os.PathLike[str]


def _figure(figsize: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=100, layout="constrained")


def save_figure(fig: Any, path: PathLike) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically and return the path."""
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def class_colors(n: int) -> np.ndarray:
    """``n`` distinct RGB colours in [0, 1] (``tab10``/``tab20``; class 0 is dark grey)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    cols = np.array([cmap(i % cmap.N)[:3] for i in range(n)], dtype=np.float64)
    if n:
        cols[0] = (0.15, 0.15, 0.15)  # background
    return cols


def display_image(image: Any, contract: Any = None) -> np.ndarray:
    """A model-input image as a float RGB ``[H, W, 3]`` array in ``[0, 1]`` for display.

    ``image`` is a ``[C, H, W]`` / ``[H, W, C]`` / ``[H, W]`` tensor or array. With the
    model's input ``contract`` (an :class:`~visionforge.models.contract.InputContract` or its
    ``to_dict()`` form) the contract is undone (``x * std + mean``, BGR back to RGB, the value
    range back to ``[0, 1]``), so the colours are the ones the image had on disk. Without one,
    or when the contract does not fit the image, values outside ``[0, 1]`` are rescaled by
    the image's min/max, which shows shapes but not true colours.
    """
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    arr = arr.astype(np.float64)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = arr.transpose(1, 2, 0)
    elif arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] > 4:
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 2:
        arr = arr[..., None]
    undone = _undo_contract(arr, _as_contract(contract))
    if undone is not None:
        arr = undone
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    arr = arr[..., :3]
    if undone is not None:
        return np.clip(arr, 0.0, 1.0)  # resampling overshoot only; the contract set the scale
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 1:  # unknown scale: rescale for display only
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return arr


def _as_contract(contract: Any) -> Any:
    if contract is None or hasattr(contract, "apply"):
        return contract
    from visionforge.models.contract import InputContract

    return InputContract.from_dict(contract)


def _undo_contract(hwc: np.ndarray, contract: Any) -> np.ndarray | None:
    """Invert ``contract.apply`` on a ``[H, W, C]`` array; ``None`` if it cannot apply."""
    if contract is None or contract.layout != "NCHW" or contract.input_range is None:
        return None
    channels = hwc.shape[-1]
    x = hwc
    if contract.mean is not None and contract.std is not None:
        if len(contract.mean) not in (1, channels):
            return None
        x = x * np.asarray(contract.std, dtype=np.float64) + np.asarray(
            contract.mean, dtype=np.float64
        )
    if contract.channel_order == "BGR" and channels >= 3:
        x = np.concatenate([x[..., 2::-1], x[..., 3:]], axis=-1)
    lo, hi = contract.input_range
    return (x - lo) / (hi - lo) if hi != lo else None


def best_epoch(history: Mapping[str, Any]) -> int | None:
    """The 1-based epoch of the best validation result (``None`` without validation).

    The monitored value is ``history["best"]``'s ``best_<monitor>`` key when present
    (``val_loss`` otherwise); losses are minimised, other metrics maximised.
    """
    monitor = "val_loss"
    for key in (history.get("best") or {}) if isinstance(history.get("best"), Mapping) else ():
        if key.startswith("best_"):
            monitor = key[5:]
    name = monitor[4:] if monitor.startswith("val_") else monitor
    values = (
        history.get("val_loss") if name == "loss" else (history.get("val_metrics") or {}).get(name)
    )
    vals = [math.nan if v is None else float(v) for v in (values or [])]
    if not vals or all(math.isnan(v) for v in vals):
        return None
    arr = np.asarray(vals)
    idx = int(np.nanargmin(arr) if "loss" in name else np.nanargmax(arr))
    epochs = history.get("val_epoch") or []
    return int(epochs[idx]) + 1 if len(epochs) == len(vals) else idx + 1


def _curve_x(label: str, n: int, history: Mapping[str, Any]) -> list[int]:
    """1-based epochs of a series: validation series follow ``val_epoch`` (validation may
    not run every epoch), per-epoch series count from 1."""
    epochs = history.get("val_epoch") or []
    if label.startswith("val_") and len(epochs) == n:
        return [int(e) + 1 for e in epochs]
    return list(range(1, n + 1))


def plot_training_curves(history: Mapping[str, Any], path: PathLike) -> Path:
    """Loss (train/val), each validation metric and the learning rate per epoch.

    Epoch ticks are integers; the best epoch (see :func:`best_epoch`) is marked on every panel.
    """
    from matplotlib.ticker import MaxNLocator

    panels: list[tuple[str, dict[str, Sequence[float]]]] = []
    loss = {k: history[k] for k in ("train_loss", "val_loss") if history.get(k)}
    if loss:
        panels.append(("loss", loss))
    for name, values in (history.get("val_metrics") or {}).items():
        if values:
            panels.append((name, {f"val_{name}": values}))
    for name, values in (history.get("train_metrics") or {}).items():
        if values:
            panels.append((f"train {name}", {f"train_{name}": values}))
    if history.get("lr"):
        panels.append(("learning rate", {"lr": history["lr"]}))
    if not panels:
        raise ValueError("history has no train_loss, val_loss, val_metrics or lr values to plot")
    best = best_epoch(history)
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _figure((4.2 * ncols, 3.2 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).reshape(-1)
    for ax, (title, series) in zip(axes, panels):
        for label, values in series.items():
            vals = [float("nan") if v is None else float(v) for v in values]
            ax.plot(_curve_x(label, len(vals), history), vals, marker="o", ms=3, label=label)
        if best is not None:
            ax.axvline(best, color="tab:red", ls="--", lw=1, label=f"best epoch {best}")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if title == "learning rate" and all(v and v > 0 for v in series["lr"]):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return save_figure(fig, path)


def plot_confusion_matrix(
    cm: Sequence[Sequence[int]] | np.ndarray,
    class_names: Sequence[str] | None,
    path: PathLike,
) -> Path:
    """Counts and row-normalised confusion matrices, with per-class recall (right margin)
    and precision (bottom margin) as CODAvision shows them."""
    cm = np.asarray(cm, dtype=np.float64)
    n = cm.shape[0]
    names = list(class_names) if class_names else [str(i) for i in range(n)]
    rows, cols = cm.sum(axis=1), cm.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(rows[:, None] > 0, cm / rows[:, None], 0.0)
        recall = np.where(rows > 0, np.diag(cm) / rows, np.nan)
        precision = np.where(cols > 0, np.diag(cm) / cols, np.nan)
    size = max(4.0, 0.55 * n + 2.5)
    fig = _figure((2 * size + 1.0, size + 0.6))
    axes = fig.subplots(1, 2)
    fs = 8 if n <= 12 else 6
    for ax, data, title, fmt in (
        (axes[0], cm, "counts", "{:.0f}"),
        (axes[1], norm, "row-normalised (recall)", "{:.2f}"),
    ):
        # Extend with a margin row/column: recall on the right, precision at the bottom.
        ext = np.full((n + 1, n + 1), np.nan)
        ext[:n, :n] = norm
        ax.imshow(np.ma.masked_invalid(ext), cmap="Blues", vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                val = data[i, j]
                ax.text(
                    j,
                    i,
                    fmt.format(val),
                    ha="center",
                    va="center",
                    fontsize=fs,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
            _margin_text(ax, n, i, recall[i], fs, "darkgreen")
        for j in range(n):
            _margin_text(ax, j, n, precision[j], fs, "darkblue")
        ax.axhline(n - 0.5, color="grey", lw=1)
        ax.axvline(n - 0.5, color="grey", lw=1)
        ax.set_xticks(range(n + 1), [*names, "recall"], rotation=45, ha="right", fontsize=fs)
        ax.set_yticks(range(n + 1), [*names, "precision"], fontsize=fs)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    return save_figure(fig, path)


def _margin_text(ax: Any, x: int, y: int, value: float, fontsize: int, color: str) -> None:
    """A recall/precision value in the confusion matrix margin (``-`` when undefined)."""
    text = "-" if math.isnan(value) else f"{value:.2f}"
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=color)


def plot_roc_curves(
    probs: np.ndarray,
    targets: np.ndarray,
    class_names: Sequence[str] | None,
    path: PathLike,
) -> Path:
    """One-vs-rest ROC curve per class with its AUC (classes without both outcomes are skipped)."""
    from sklearn.metrics import auc, roc_curve

    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets).reshape(-1)
    n = probs.shape[1]
    names = list(class_names) if class_names else [str(i) for i in range(n)]
    fig = _figure((5.5, 4.8))
    ax = fig.subplots()
    colors = class_colors(max(n, 2))
    for c in range(n):
        pos = targets == c
        if pos.all() or not pos.any():
            continue
        fpr, tpr, _ = roc_curve(pos, probs[:, c])
        ax.plot(
            fpr,
            tpr,
            color=colors[c] if c else "black",
            lw=1.5,
            label=f"{names[c]} (AUC {auc(fpr, tpr):.3f})",
        )
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC (one-vs-rest)")
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)


def plot_per_class_iou(
    iou: Sequence[float],
    class_names: Sequence[str] | None,
    path: PathLike,
    dice: Sequence[float] | None = None,
) -> Path:
    """Bar chart of IoU (and Dice when given) per class; undefined values are shown as gaps."""
    iou_arr = np.asarray(iou, dtype=np.float64)
    n = iou_arr.size
    names = list(class_names) if class_names else [str(i) for i in range(n)]
    fig = _figure((max(4.5, 0.6 * n + 2), 3.6))
    ax = fig.subplots()
    x = np.arange(n)
    width = 0.4 if dice is not None else 0.7
    bars = ax.bar(
        x - (width / 2 if dice is not None else 0),
        np.nan_to_num(iou_arr),
        width,
        color=class_colors(max(n, 2))[:n],
        label="IoU",
    )
    if dice is not None:
        ax.bar(
            x + width / 2,
            np.nan_to_num(np.asarray(dice, dtype=np.float64)),
            width,
            color="lightgrey",
            edgecolor="black",
            label="Dice",
        )
        ax.legend(fontsize=8)
    for rect, v in zip(bars, iou_arr):
        ax.text(
            rect.get_x() + rect.get_width() / 2,
            rect.get_height() + 0.01,
            "n/a" if math.isnan(v) else f"{v:.2f}",
            ha="center",
            fontsize=7,
        )
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score")
    ax.set_title(
        f"per-class IoU (mean {np.nanmean(iou_arr) if np.isfinite(iou_arr).any() else float('nan'):.3f})"
    )
    return save_figure(fig, path)


def plot_classification_samples(
    images: Sequence[Any],
    targets: Sequence[int],
    preds: Sequence[int],
    probs: Sequence[float],
    class_names: Sequence[str] | None,
    path: PathLike,
    ncols: int = 4,
    *,
    contract: Any = None,
) -> Path:
    """Grid of images titled with true class, predicted class and its probability
    (green when correct, red when wrong).

    ``images`` are model inputs; ``contract`` (the model's input contract) turns them back
    into true colours, see :func:`display_image`."""
    n = len(images)
    if n == 0:
        raise ValueError("no sample images to plot")
    names = list(class_names) if class_names else None
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = _figure((2.4 * ncols, 2.6 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).reshape(-1)
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= n:
            continue
        t, p = int(targets[i]), int(preds[i])
        ax.imshow(display_image(images[i], contract))
        tn = names[t] if names else str(t)
        pn = names[p] if names else str(p)
        ax.set_title(
            f"true: {tn}\npred: {pn} ({float(probs[i]):.2f})",
            fontsize=8,
            color="green" if t == p else "red",
        )
    return save_figure(fig, path)


def _colorize(mask: np.ndarray, colors: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask).astype(np.int64)
    valid = (mask >= 0) & (mask < len(colors))
    out = np.ones((*mask.shape, 3))
    out[valid] = colors[mask[valid]]
    return out


def plot_segmentation_samples(
    images: Sequence[Any],
    masks: Sequence[Any],
    preds: Sequence[Any],
    class_names: Sequence[str] | None,
    path: PathLike,
    alpha: float = 0.5,
    *,
    contract: Any = None,
) -> Path:
    """Rows of image | ground truth overlay | prediction overlay, with a class colour legend.

    ``contract`` (the model's input contract) restores the images' colours, see
    :func:`display_image`."""
    from matplotlib.patches import Patch

    n = len(images)
    if n == 0:
        raise ValueError("no sample images to plot")
    num = max(int(np.max([np.max(np.asarray(m)) for m in [*masks, *preds]])) + 1, 2)
    names = list(class_names) if class_names else [str(i) for i in range(num)]
    colors = class_colors(max(num, len(names)))
    fig = _figure((7.5, 2.5 * n + 0.6))
    axes = np.atleast_2d(fig.subplots(n, 3))
    for i in range(n):
        img = display_image(images[i], contract)
        gt = np.asarray(masks[i].cpu() if hasattr(masks[i], "cpu") else masks[i])
        pr = np.asarray(preds[i].cpu() if hasattr(preds[i], "cpu") else preds[i])
        for ax, title, lab in (
            (axes[i, 0], "image", None),
            (axes[i, 1], "ground truth", gt),
            (axes[i, 2], "prediction", pr),
        ):
            shown = img if lab is None else (1 - alpha) * img + alpha * _colorize(lab, colors)
            ax.imshow(np.clip(shown, 0, 1))
            ax.axis("off")
            if i == 0:
                ax.set_title(title, fontsize=9)
    handles = [Patch(color=colors[c], label=names[c]) for c in range(len(names))]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(6, len(handles)), fontsize=8)
    return save_figure(fig, path)


def plot_event_probabilities(
    event_ids: Sequence[Any],
    max_prob: Sequence[float],
    labels: Sequence[bool],
    path: PathLike,
    threshold: float = 0.5,
) -> Path:
    """Per-event maximum positive probability, coloured by true class, with the threshold line."""
    probs = np.asarray(max_prob, dtype=np.float64)
    lab = np.asarray(labels).astype(bool)
    order = np.lexsort((probs, lab))
    fig = _figure((max(5.0, 0.12 * probs.size + 3), 3.6))
    ax = fig.subplots()
    x = np.arange(probs.size)
    ax.bar(x, probs[order], color=np.where(lab[order], "tab:red", "tab:blue"))
    ax.axhline(threshold, ls="--", color="black", lw=1, label=f"threshold {threshold:g}")
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(color="tab:red", label="positive event"),
            Patch(color="tab:blue", label="negative event"),
            *ax.get_legend_handles_labels()[0],
        ],
        fontsize=8,
    )
    ids = [str(e) for e in np.asarray(event_ids)[order]]
    if len(ids) <= 40:
        ax.set_xticks(x, ids, rotation=90, fontsize=6)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("event")
    ax.set_ylabel("max window probability")
    ax.set_title("event probabilities")
    return save_figure(fig, path)


def plot_threshold_sweep(sweep: Sequence[Mapping[str, Any]], path: PathLike) -> Path:
    """TPR, FPR and F1 against threshold at datapoint (and event) level."""
    levels = [lv for lv in ("datapoint", "event") if sweep and lv in sweep[0]]
    fig = _figure((4.5 * len(levels), 3.5))
    axes = np.atleast_1d(fig.subplots(1, len(levels)))
    th = [row["threshold"] for row in sweep]
    for ax, level in zip(axes, levels):
        for key in ("tpr", "fpr", "ppv", "f1"):
            ax.plot(th, [row[level][key] for row in sweep], marker="o", ms=3, label=key.upper())
        ax.set_title(f"{level} level")
        ax.set_xlabel("threshold")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_explanation(
    image: Any,
    heatmaps: Mapping[str, Any],
    path: PathLike,
    *,
    title: str | None = None,
    alpha: float = 0.5,
) -> Path:
    """The original image beside each method's heatmap overlay, at a readable size, with a
    colour bar (attribution 0 = low, 1 = high) so colours can be read as values."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if not heatmaps:
        raise ValueError("no heatmaps to plot")
    img = np.clip(display_image(image), 0, 1)
    n = len(heatmaps) + 1
    fig = _figure((3.2 * n + 0.8, 3.6))
    axes = np.atleast_1d(fig.subplots(1, n))
    axes[0].imshow(img)
    axes[0].set_title("original", fontsize=10)
    cmap = colormaps["jet"]
    for ax, (name, heat) in zip(axes[1:], heatmaps.items()):
        h = np.asarray(heat.cpu() if hasattr(heat, "cpu") else heat, dtype=np.float64)
        span = np.nanmax(h) - np.nanmin(h) if h.size else 0.0
        h = (h - np.nanmin(h)) / span if span > 0 else np.zeros_like(h)
        ax.imshow(img)
        ax.imshow(
            h,
            cmap=cmap,
            alpha=alpha,
            vmin=0,
            vmax=1,
            extent=(-0.5, img.shape[1] - 0.5, img.shape[0] - 0.5, -0.5),
        )
        ax.set_title(name.replace("_", " "), fontsize=10)
    for ax in axes:
        ax.axis("off")
    fig.colorbar(
        ScalarMappable(Normalize(0, 1), cmap),
        ax=list(axes),
        shrink=0.8,
        label="attribution (normalised)",
    )
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)
