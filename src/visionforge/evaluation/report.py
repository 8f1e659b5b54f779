"""Self-contained run reports: ``report.html`` with embedded PNGs, optionally a PDF.

``render_report`` turns metrics, history and figure files into one HTML file
(Jinja2 template, images base64-embedded so the file can be mailed on its own);
``build_run_report`` collects what a run directory holds and calls it.
PDFs are written with matplotlib's ``PdfPages`` (no extra dependency).
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from visionforge.io import atomic_write, atomic_write_text, read_json

__all__ = ["render_report", "build_run_report", "collect_versions", "SECTIONS", "classify_figure"]

PathLike = str | os.PathLike[str]
SECTIONS = (
    "summary",
    "training-curves",
    "confusion-matrix",
    "metrics",
    "sample-predictions",
    "explanations",
    "dataset",
    "runtimes",
    "config",
    "versions",
)
_VERSION_PACKAGES = (
    "visionforge",
    "torch",
    "torchvision",
    "timm",
    "lightning",
    "torchmetrics",
    "captum",
    "numpy",
    "scikit-learn",
    "scikit-image",
    "matplotlib",
    "jinja2",
)
_CONFIG_FILES = (
    "config.yaml",
    "config.yml",
    "config.json",
    "resolved_config.yaml",
    ".hydra/config.yaml",
)


def collect_versions() -> dict[str, str]:
    """Python, platform and installed versions of the libraries a run depends on."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in _VERSION_PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def classify_figure(path: PathLike) -> str:
    """The report section a figure belongs to, from its file name."""
    name = Path(path).stem.lower()
    if name.startswith(("training_curves", "history", "loss")):
        return "training"
    if name.startswith(("confusion_matrix", "roc")):
        return "confusion"
    if name.startswith(("sample", "prediction", "full_image")):
        return "samples"
    if Path(path).parent.name == "explanations" or name.startswith("explain"):
        return "explanations"
    return "metrics"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.4g}"
    if isinstance(v, list | tuple) and len(v) > 12:
        return f"[{len(v)} values]"
    return str(v)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            rows.extend(_flatten(v, key + "."))
        else:
            rows.append((key, _fmt(v)))
    return rows


def _metric_block(
    title: str, m: Mapping[str, Any], class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    skip = {
        "per_class",
        "confusion_matrix",
        "class_names",
        "per_class_iou",
        "per_class_dice",
        "support",
        "signal",
        "runtime",
        "classification",
        "segmentation",
        "warnings",
        "collapsed",
    }
    scalars = [
        (k, _fmt(v)) for k, v in m.items() if k not in skip and not isinstance(v, Mapping | list)
    ]
    block: dict[str, Any] = {"title": title, "scalars": scalars, "per_class": None, "sweep": None}
    names = class_names_for(m.get("task") or title, m.get("class_names")) or class_names
    if class_names and (not names or _is_index_names(m.get("class_names") or [])):
        names = list(class_names)
    per = dict(m.get("per_class") or {})
    for key, col in (("per_class_iou", "iou"), ("per_class_dice", "dice"), ("support", "support")):
        if isinstance(m.get(key), list):
            per[col] = m[key]
    if per:
        n = max(len(v) for v in per.values())
        names = names or [str(i) for i in range(n)]
        cols = list(per)
        block["per_class"] = {
            "columns": cols,
            "rows": [
                [names[i], *(_fmt(per[c][i]) if i < len(per[c]) else "" for c in cols)]
                for i in range(n)
            ],
        }
    sig = m.get("signal")
    if isinstance(sig, Mapping):
        block["scalars"] += [
            (f"signal.{k}", v)
            for k, v in _flatten(
                {k: sig[k] for k in ("threshold", "datapoint", "event") if k in sig}
            )
        ]
        levels = [lv for lv in ("datapoint", "event") if sig.get("sweep") and lv in sig["sweep"][0]]
        cols = ["threshold"] + [
            f"{lv} {k}" for lv in levels for k in ("tpr", "fpr", "ppv", "npv", "f1")
        ]
        rows = [
            [_fmt(r["threshold"])]
            + [_fmt(r[lv][k]) for lv in levels for k in ("tpr", "fpr", "ppv", "npv", "f1")]
            for r in sig.get("sweep", [])
        ]
        block["sweep"] = {"columns": cols, "rows": rows}
    return block


def _metric_blocks(
    metrics: Mapping[str, Any] | None, class_names: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    if not metrics:
        return []
    blocks = []
    top = {
        k: v
        for k, v in metrics.items()
        if k not in ("classification", "segmentation", "warnings", "collapsed")
    }
    if any(k not in ("task", "runtime") for k in top):
        blocks.append(_metric_block(f"{metrics.get('task', 'evaluation')}", top, class_names))
    for head in ("classification", "segmentation"):
        if isinstance(metrics.get(head), Mapping):
            blocks.append(_metric_block(head, metrics[head]))
    return blocks


_HEADLINE = {
    "classification": ("accuracy", "f1_macro", "roc_auc_macro", "num_samples"),
    "segmentation": ("mean_iou", "mean_dice", "pixel_accuracy", "num_samples"),
    "signal": ("accuracy", "f1_macro", "roc_auc_macro", "num_samples"),
    "detection": ("map_50", "map", "mar_100", "num_images"),
}
# Config keys that only mean something for some tasks (dotted paths of the resolved config).
_TASK_KEYS = {
    "data.window": {"signal"},
    "data.step": {"signal"},
    "data.images_dir": {"segmentation", "multitask"},
    "data.masks_dir": {"segmentation", "multitask"},
    "data.augment": {"classification", "segmentation", "multitask"},
    "data.channels": {"classification", "segmentation", "multitask"},
    "data.image_size": {"classification", "segmentation", "multitask"},
    "data.on_bad_image": {"classification", "segmentation", "multitask"},
    "loss.label_smoothing": {"classification", "signal", "multitask"},
}


def _is_index_names(names: Sequence[Any]) -> bool:
    return [str(n) for n in names] == [str(i) for i in range(len(names))]


def class_names_for(task: str | None, *candidates: Sequence[Any] | None) -> list[str] | None:
    """The first real class-name list among ``candidates`` (model.json, metrics, dataset).

    Lists that are only ``0, 1, 2, ...`` lose to real names; when nothing better exists a
    segmentation run labels class 0 as background (the mask convention) and the others
    ``class N``, so tables never show a bare ``0/1/2``.
    """
    lists = [list(map(str, c)) for c in candidates if isinstance(c, list | tuple) and c]
    for names in lists:
        if not _is_index_names(names):
            return names
    if not lists:
        return None
    n = max(len(x) for x in lists)
    if task == "segmentation":
        return ["0 background", *(f"{i} class {i}" for i in range(1, n))]
    return lists[0]


def _task_config(config: Mapping[str, Any], task: str | None) -> Mapping[str, Any]:
    """``config`` without the keys that do not apply to ``task`` (signal keys in an image run)."""

    def keep(path: str) -> bool:
        tasks = _TASK_KEYS.get(path)
        return tasks is None or task is None or task in tasks

    def walk(d: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            path = f"{prefix}{k}"
            if not keep(path):
                continue
            out[k] = walk(v, path + ".") if isinstance(v, Mapping) else v
        return out

    return walk(config, "")


def _warnings(metrics: Mapping[str, Any] | None) -> list[str]:
    """Warnings a run carries in ``metrics.json`` (``warnings`` list, ``collapsed`` flag)."""
    if not metrics:
        return []
    out: list[str] = []
    heads = [metrics] + [
        metrics[h]
        for h in ("classification", "segmentation")
        if isinstance(metrics.get(h), Mapping)
    ]
    for m in heads:
        for w in m.get("warnings") or ():
            text = w.get("message", str(w)) if isinstance(w, Mapping) else str(w)
            if text not in out:
                out.append(text)
        if m.get("collapsed") and not out:
            out.append("the model predicts a single class everywhere (collapsed)")
    return out


def _majority_baseline(m: Mapping[str, Any]) -> float | None:
    """Accuracy of always predicting the most common true class (from the confusion matrix)."""
    cm = m.get("confusion_matrix")
    if not isinstance(cm, list) or not cm:
        return None
    rows = [sum(float(x) for x in row) for row in cm]
    total = sum(rows)
    return max(rows) / total if total else None


def _headline(metrics: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The few numbers a reader looks for first, by task."""
    if not metrics:
        return []
    task = str(metrics.get("task", ""))
    out: list[tuple[str, str]] = []
    heads = [(task, metrics)] + [
        (h, metrics[h])
        for h in ("classification", "segmentation")
        if isinstance(metrics.get(h), Mapping)
    ]
    for head_task, m in heads:
        prefix = f"{head_task} " if head_task != task else ""
        for key in _HEADLINE.get(head_task, ()):
            if isinstance(m.get(key), int | float) and not isinstance(m.get(key), bool):
                out.append((prefix + key.replace("_", " "), _fmt(m[key])))
    counting = metrics.get("counting") if task == "detection" else None
    if isinstance(counting, Mapping) and "mean_absolute_count_error" in counting:
        # the count error is read at the threshold chosen on the validation split
        out.append((f"count error (score >= {_fmt(counting.get('score_threshold'))})",
                    _fmt(counting["mean_absolute_count_error"])))
    return out


def _verdict(metrics: Mapping[str, Any] | None, history: Mapping[str, Any] | None) -> str:
    """One sentence: the main score against the majority-class baseline, and the best epoch."""
    from visionforge.evaluation.plots import best_epoch

    parts: list[str] = []
    if metrics:
        m = (
            metrics.get("segmentation")
            if isinstance(metrics.get("segmentation"), Mapping)
            else metrics
        )
        if not isinstance(m, Mapping):
            m = metrics
        key = "pixel_accuracy" if "pixel_accuracy" in m else "accuracy"
        score, base = m.get(key), _majority_baseline(m)
        split = metrics.get("split")
        where = f" on the {split} split" if split else ""
        if isinstance(score, int | float) and base is not None:
            better = "better than" if score > base + 1e-9 else "NOT better than"
            parts.append(
                f"{key.replace('_', ' ')} {score:.3f}{where}: {better} always predicting the "
                f"most common class ({base:.3f})"
            )
        elif isinstance(score, int | float):
            parts.append(f"{key.replace('_', ' ')} {score:.3f}{where}")
    if history:
        best = best_epoch(history)
        n = len(history.get("train_loss") or history.get("val_loss") or [])
        if best is not None:
            parts.append(f"best epoch {best} of {n}")
    return "; ".join(parts) + ("." if parts else "")


def _embed(paths: Sequence[PathLike]) -> list[dict[str, str]]:
    out = []
    for p in paths:
        p = Path(p)
        if p.is_file() and p.stat().st_size > 0:
            out.append(
                {
                    "name": p.stem.replace("_", " "),
                    "data": base64.b64encode(p.read_bytes()).decode("ascii"),
                    "path": str(p),
                }
            )
    return out


def _groups_and_runtimes(
    figures: Sequence[PathLike],
    explanations: Sequence[PathLike],
    metrics: Mapping[str, Any] | None,
    runtimes: Mapping[str, Any] | None,
) -> tuple[dict[str, list[PathLike]], list[tuple[str, str]]]:
    """Figures by report section, and the runtime rows (the run's and the evaluation's)."""
    groups: dict[str, list[PathLike]] = {
        "training": [],
        "confusion": [],
        "samples": [],
        "metrics": [],
        "explanations": list(explanations),
    }
    for f in figures:
        groups[classify_figure(f)].append(f)
    runtime_rows = _flatten(dict(runtimes or {}))
    if metrics and isinstance(metrics.get("runtime"), Mapping):
        runtime_rows += _flatten({"evaluation": metrics["runtime"]})
    return groups, runtime_rows


def render_report(
    path: PathLike,
    *,
    title: str = "visionforge report",
    config: Mapping[str, Any] | str | None = None,
    dataset: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    figures: Sequence[PathLike] = (),
    explanations: Sequence[PathLike] = (),
    explanation_notes: Sequence[str] = (),
    runtimes: Mapping[str, Any] | None = None,
    versions: Mapping[str, str] | None = None,
    run_dir: PathLike | None = None,
    pdf: bool = False,
    history: Mapping[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Write a self-contained HTML report to ``path`` (and ``path`` with ``.pdf`` if ``pdf``).

    Args:
        config: resolved configuration (dict, shown as a table, or text, e.g. YAML).
        dataset: dataset summary (sizes, classes, ...).
        metrics: an ``Evaluator`` result (classification, segmentation, signal or multitask).
        figures: PNG files; each is placed in its section by file name (see :func:`classify_figure`).
        explanations: PNG overlays for the explanations section.
        runtimes: named durations (seconds) or throughputs.
        versions: library versions (default: :func:`collect_versions`).
        history: the training history (the verdict's best epoch); class_names: the run's
            names, used where ``metrics`` only holds ``0, 1, ...``.
    Warnings, headline metrics and a verdict come first; the task's config last, collapsed.
    """
    import jinja2

    groups, runtime_rows = _groups_and_runtimes(figures, explanations, metrics, runtimes)
    task = (metrics or {}).get("task") or (
        config.get("task") if isinstance(config, Mapping) else None
    )
    if isinstance(config, Mapping):
        config = _task_config(config, task)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    from visionforge.evaluation.report_template import REPORT_TEMPLATE

    html = env.from_string(REPORT_TEMPLATE).render(
        title=title,
        generated=_dt.datetime.now().isoformat(timespec="seconds"),
        run_dir=str(run_dir) if run_dir else "",
        warnings=_warnings(metrics),
        headline=_headline(metrics),
        verdict=_verdict(metrics, history),
        config_rows=_flatten(config) if isinstance(config, Mapping) else [],
        config_text=config if isinstance(config, str) else "",
        dataset_rows=_flatten(dataset) if dataset else [],
        training_figures=_embed(groups["training"]),
        metric_blocks=_metric_blocks(metrics, class_names),
        metric_figures=_embed(groups["metrics"]),
        confusion_figures=_embed(groups["confusion"]),
        sample_figures=_embed(groups["samples"]),
        explanation_figures=_embed(groups["explanations"]),
        explanation_notes=list(explanation_notes),
        runtime_rows=runtime_rows,
        version_rows=list((versions or collect_versions()).items()),
    )
    out = atomic_write_text(path, html)
    if pdf:
        write_pdf(
            Path(path).with_suffix(".pdf"),
            title=title,
            metrics=metrics,
            config=config,
            dataset=dataset,
            runtimes=runtime_rows,
            figures=[
                *groups["training"],
                *groups["metrics"],
                *groups["confusion"],
                *groups["samples"],
                *groups["explanations"],
            ],
        )
    return out


def write_pdf(
    path: PathLike,
    *,
    title: str,
    metrics: Mapping[str, Any] | None,
    config: Mapping[str, Any] | str | None,
    dataset: Mapping[str, Any] | None,
    runtimes: Sequence[tuple[str, str]],
    figures: Sequence[PathLike],
) -> Path:
    """A PDF version of the report: a text summary page, then one page per figure."""
    import matplotlib.image as mpimg
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    lines = [title, ""]
    if config:
        lines += (
            ["Configuration"]
            + (
                [f"  {k}: {v}" for k, v in _flatten(config)]
                if isinstance(config, Mapping)
                else ["  " + s for s in str(config).splitlines()]
            )
            + [""]
        )
    if dataset:
        lines += ["Dataset"] + [f"  {k}: {v}" for k, v in _flatten(dataset)] + [""]
    for block in _metric_blocks(metrics):
        lines += (
            [f"Metrics ({block['title']})"] + [f"  {k}: {v}" for k, v in block["scalars"]] + [""]
        )
    if runtimes:
        lines += ["Runtimes"] + [f"  {k}: {v}" for k, v in runtimes] + [""]
    lines += ["Library versions"] + [f"  {k}: {v}" for k, v in collect_versions().items()]
    with atomic_write(path) as tmp, PdfPages(tmp) as pdf:
        per_page = 60
        for start in range(0, len(lines), per_page):
            fig = Figure(figsize=(8.27, 11.69))
            fig.text(
                0.06,
                0.97,
                "\n".join(lines[start : start + per_page]),
                va="top",
                family="monospace",
                fontsize=8,
            )
            pdf.savefig(fig)
        for f in figures:
            f = Path(f)
            if not f.is_file():
                continue
            img = mpimg.imread(f)
            h, w = img.shape[:2]
            fig = Figure(figsize=(8.27, 8.27 * h / w + 0.5))
            ax = fig.add_axes((0, 0, 1, 0.95))
            ax.imshow(img)
            ax.axis("off")
            fig.suptitle(f.stem.replace("_", " "), fontsize=10)
            pdf.savefig(fig)
    return Path(path)


def _read_config(run_dir: Path) -> Mapping[str, Any] | str | None:
    """The run's config as a dict (YAML/JSON), or its text when it does not parse to one."""
    import yaml

    for name in _CONFIG_FILES:
        p = run_dir / name
        if p.is_file():
            if p.suffix == ".json":
                return read_json(p)
            text = p.read_text(encoding="utf-8")
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError:
                return text
            return data if isinstance(data, Mapping) else text
    return None


def _explanation_notes(rd: Path) -> list[str]:
    """Notes of ``explanations/explanations.json``: methods that were skipped, and why."""
    if not (rd / "explanations" / "explanations.json").is_file():
        return []
    info = read_json(rd / "explanations" / "explanations.json")
    return [f"{m}: skipped ({why})" for m, why in (info.get("skipped") or {}).items()]


def build_run_report(
    run_dir: PathLike,
    *,
    pdf: bool = False,
    title: str | None = None,
    config: Mapping[str, Any] | str | None = None,
    dataset: Mapping[str, Any] | None = None,
    runtimes: Mapping[str, Any] | None = None,
    out: PathLike | None = None,
) -> Path:
    """Collect a run dir (``history.json``, ``metrics.json``, ``plots/``, ``explanations/``,
    ``model/model.json``, config file) into ``report.html`` (default ``run_dir/report.html``).

    A training-curves figure is drawn from ``history.json`` when ``plots/`` lacks one.
    """
    from visionforge.evaluation.plots import plot_training_curves

    rd = Path(run_dir)
    if not rd.is_dir():
        from visionforge.errors import DataError

        raise DataError(f"{rd}: run directory not found")
    history = read_json(rd / "history.json") if (rd / "history.json").is_file() else None
    metrics = read_json(rd / "metrics.json") if (rd / "metrics.json").is_file() else None
    model_meta = (
        read_json(rd / "model" / "model.json") if (rd / "model" / "model.json").is_file() else None
    )
    plots_dir = rd / "plots"
    if history and not any(plots_dir.glob("training_curves*.png")):
        try:
            plot_training_curves(history, plots_dir / "training_curves.png")
        except ValueError:
            pass  # a history without any series: nothing to draw
    figures = sorted(plots_dir.glob("*.png")) if plots_dir.is_dir() else []
    explanations = (
        sorted((rd / "explanations" / "figures").glob("*.png"))
        or sorted((rd / "explanations").glob("*.png"))
        if (rd / "explanations").is_dir()
        else []
    )
    cfg = config if config is not None else _read_config(rd)
    if cfg is None and model_meta:
        cfg = {
            k: model_meta.get(k) for k in ("name", "kwargs", "task", "input_size", "preprocessing")
        }
    ds = dict(dataset or {})
    if not ds and (rd / "dataset.json").is_file():
        ds = read_json(rd / "dataset.json")
    if model_meta and "class_names" not in ds and model_meta.get("class_names"):
        ds["class_names"] = ", ".join(map(str, model_meta["class_names"]))
    rt = dict(runtimes or {})
    if not rt and history:
        rt = {
            k: history[k]
            for k in ("train_seconds", "total_seconds", "epoch_seconds", "runtime")
            if k in history
        }
    if not metrics and model_meta and model_meta.get("metrics"):
        metrics = model_meta["metrics"]
    notes = _explanation_notes(rd)
    task = (metrics or {}).get("task") or (model_meta or {}).get("task")
    names = class_names_for(
        task, (model_meta or {}).get("class_names"), (metrics or {}).get("class_names")
    )
    return render_report(
        out or rd / "report.html",
        title=title or f"visionforge run: {rd.name}",
        config=cfg,
        dataset=ds or None,
        metrics=metrics,
        figures=figures,
        explanations=explanations,
        explanation_notes=notes,
        runtimes=rt,
        run_dir=rd,
        pdf=pdf,
        history=history,
        class_names=names,
    )
