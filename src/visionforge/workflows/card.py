"""Model cards: ``model_card.md`` in Hugging Face's model-card layout, written beside ``model.json``.

The card is built only from files a run leaves behind (``model/model.json``, ``metrics.json``,
``dataset.json``, ``config.yaml`` of the run dir), so ``visionforge models card MODEL_DIR``
regenerates the same card long after training. The YAML header follows the Hub's card
metadata (``library_name``, ``pipeline_tag``, ``datasets``, ``metrics``, ``model-index``); the
``huggingface_hub`` card classes are not used because they need the hub package and a
template engine for what is a few lines of YAML and Markdown.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from visionforge.errors import WeightsError
from visionforge.io import atomic_write_text, read_json
from visionforge.models.model_dir import META_FILE, read_model_meta
from visionforge.workflows.summary import headline_metrics

__all__ = ["CARD_FILE", "write_model_card", "render_model_card", "card_inputs"]

CARD_FILE = "model_card.md"

_PIPELINE = {"classification": "image-classification", "segmentation": "image-segmentation",
             "multitask": "image-segmentation", "signal": "audio-classification"}
_INTENDED = {
    "classification": "assigns one of the classes listed above to a whole image",
    "segmentation": "labels every pixel of an image with one of the classes listed above",
    "multitask": "labels every pixel and classifies the whole image",
    "signal": "assigns one of the classes listed above to a 1-D signal window",
}


def card_inputs(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What the card is made of: ``meta`` (model.json), ``metrics``, ``dataset``, ``run_dir``.

    The run dir is the model dir's parent when it holds ``metrics.json`` or ``dataset.json``
    (``visionforge train`` writes ``RUN/model``); a lone model dir gives a card without
    training data or evaluation sections.
    """
    path = Path(model_dir)
    if not (path / META_FILE).is_file():
        raise WeightsError(f"{path}: not a model dir (no {META_FILE}); pass the folder that "
                           "visionforge train wrote as RUN_DIR/model")
    meta = read_model_meta(path)
    run = path.resolve().parent
    has_run = (run / "metrics.json").is_file() or (run / "dataset.json").is_file()
    metrics = read_json(run / "metrics.json") if (run / "metrics.json").is_file() else {}
    dataset = read_json(run / "dataset.json") if (run / "dataset.json").is_file() else {}
    return {"meta": meta, "metrics": metrics if isinstance(metrics, dict) else {},
            "dataset": dataset if isinstance(dataset, dict) else {},
            "run_dir": run if has_run else None, "model_dir": path}


def _yaml_header(name: str, meta: dict[str, Any], metrics: dict[str, Any],
                 dataset: dict[str, Any]) -> str:
    import yaml

    task = str(meta.get("task") or "classification")
    pipeline = _PIPELINE.get(task, "image-classification")
    data_name = Path(str(dataset["root"])).name if dataset.get("root") else None
    split = str(metrics.get("split", "test"))
    head = headline_metrics(metrics)
    header: dict[str, Any] = {
        "library_name": "visionforge",
        "pipeline_tag": pipeline,
        "tags": ["visionforge", pipeline, str(meta.get("name", ""))],
    }
    if data_name:
        header["datasets"] = [data_name]
    if head:
        header["metrics"] = sorted({k.split(".")[-1] for k in head})
        header["model-index"] = [{
            "name": name,
            "results": [{
                "task": {"type": pipeline},
                "dataset": {"name": data_name or "unknown", "type": data_name or "unknown",
                            "split": split},
                "metrics": [{"type": k.split(".")[-1], "value": round(v, 6),
                             "name": f"{split} {k}"} for k, v in head.items()],
            }],
        }]
    return "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _training_data(dataset: dict[str, Any], meta: dict[str, Any]) -> str:
    if not dataset:
        return ("No `dataset.json` beside this model dir: the training data is not recorded. "
                f"Classes: {', '.join(map(str, meta.get('class_names') or [])) or 'unknown'}.")
    out = []
    if dataset.get("root"):
        out.append(f"Data root: `{dataset['root']}`.")
    sizes = dataset.get("split_sizes") or {}
    if sizes:
        unit = "tiles/images" if meta.get("task") == "segmentation" else "images"
        out.append("Split sizes (" + unit + "):\n\n" + _table(
            ["split", "samples"], [[k, v] for k, v in sizes.items()]))
    counts = dataset.get("class_counts") or {}
    if counts:
        total = max(1, sum(int(v) for v in counts.values()))
        out.append("Class counts (all splits):\n\n" + _table(
            ["class", "samples", "share"],
            [[k, v, f"{100 * int(v) / total:.1f} %"] for k, v in counts.items()]))
    if dataset.get("skipped"):
        out.append(f"{dataset['skipped']} unreadable files were skipped.")
    return "\n\n".join(out) or "The run recorded no data summary."


def _evaluation(metrics: dict[str, Any], meta: dict[str, Any]) -> str:
    if not metrics:
        val = {k: v for k, v in (meta.get("metrics") or {}).items() if isinstance(v, int | float)}
        if not val:
            return "No evaluation was recorded for this model."
        return ("No held-out evaluation (`metrics.json`) beside this model dir; last validation "
                "metrics from training:\n\n" + _table(
                    ["metric", "value"], [[k, f"{v:.4f}"] for k, v in val.items()]))
    split = metrics.get("split", "test")
    head = headline_metrics(metrics)
    out = [f"Evaluated on the **{split}** split"
           + (" (held out from training and model selection)." if split == "test" else
              " (used for model selection: no test split was given, so this is optimistic).")]
    if head:
        out.append(_table(["metric", f"{split}"], [[k, f"{v:.4f}"] for k, v in head.items()]))
    per_class = _per_class(metrics)
    if per_class:
        out.append(per_class)
    return "\n\n".join(out)


def _per_class(metrics: dict[str, Any]) -> str:
    names = metrics.get("class_names") or []
    cols = [k for k in ("per_class_iou", "per_class_dice", "per_class_f1", "per_class_precision",
                        "per_class_recall") if isinstance(metrics.get(k), list)]
    if not names or not cols:
        return ""
    rows = []
    for i, name in enumerate(names):
        vals = [metrics[c][i] if i < len(metrics[c]) else None for c in cols]
        rows.append([name, *("-" if v is None else f"{float(v):.4f}" for v in vals)])
    return "Per class:\n\n" + _table(["class", *(c.removeprefix("per_class_") for c in cols)], rows)


def _limitations(meta: dict[str, Any], metrics: dict[str, Any], dataset: dict[str, Any]) -> str:
    out = ["- Trained for the data described above only; images from other scanners, stains, "
           "cameras or resolutions need their own validation before use.",
           "- Not a medical device: predictions must be checked by a qualified person."]
    for w in metrics.get("warnings") or []:
        out.append(f"- Evaluation warning: {w}")
    sizes = dataset.get("split_sizes") or {}
    split = metrics.get("split", "test")
    if sizes.get(split) is not None and int(sizes[split]) < 200:
        out.append(f"- The {split} split holds only {sizes[split]} samples: the metrics above "
                   "have wide confidence intervals.")
    counts = [int(v) for v in (dataset.get("class_counts") or {}).values()]
    if counts and min(counts) > 0 and max(counts) / min(counts) >= 5:
        out.append(f"- Classes are imbalanced (largest/smallest = {max(counts) / min(counts):.1f}); "
                   "read the per-class scores, not only the averages.")
    if meta.get("slide_mpp"):
        out.append(f"- Whole slides must be read at {meta['slide_mpp']} µm/px, as in training.")
    return "\n".join(out)


def _contract(meta: dict[str, Any]) -> str:
    pre = meta.get("preprocessing") or {}
    rows = [["input size", meta.get("input_size")], ["layout", meta.get("input_layout")]]
    for key in ("input_range", "channel_order", "mean", "std", "interpolation", "layout"):
        if key in pre and key != "layout":
            rows.append([key.replace("_", " "), pre[key]])
    rows = [[k, f"`{v}`"] for k, v in rows if v is not None]
    return ("Applied for you by `Predictor`, `visionforge predict` and `visionforge serve`; "
            "other runtimes must apply it themselves.\n\n" + _table(["", "value"], rows))


def _how_to(model_dir: str, meta: dict[str, Any]) -> str:
    task = meta.get("task") or "classification"
    onnx_out = "probabilities = session.run(None, {session.get_inputs()[0].name: x})[0]"
    if task == "segmentation":
        onnx_out = "logits = session.run(None, {session.get_inputs()[0].name: x})[0]  # [N, C, H, W]"
    return f"""Python:

```python
from visionforge.inference import Predictor

predictor = Predictor("{model_dir}")
result = predictor.predict(["image.png"])  # {"label map [N, H, W]" if task == "segmentation" else "probabilities [N, classes]"}
```

Command line (predict, or serve with a web page at http://127.0.0.1:8000/):

```bash
visionforge predict {model_dir} images/ out=predictions/
visionforge serve {model_dir}
```

ONNX (export once, then only `onnxruntime` and numpy are needed; apply the input contract above):

```bash
visionforge export {model_dir} formats=onnx out=exported/
```

```python
import onnxruntime as ort

session = ort.InferenceSession("exported/model.onnx")
{onnx_out}
```"""


def render_model_card(model_dir: str | os.PathLike[str]) -> str:
    """The Markdown text of the model card of ``model_dir`` (see :func:`card_inputs`)."""
    inputs = card_inputs(model_dir)
    meta, metrics, dataset = inputs["meta"], inputs["metrics"], inputs["dataset"]
    run_dir = inputs["run_dir"]
    name = str(meta.get("run_name") or (run_dir.name if run_dir else Path(model_dir).name))
    task = str(meta.get("task") or "classification")
    classes = [str(c) for c in meta.get("class_names") or []]
    details = [f"- Architecture: `{meta.get('name')}` ({meta.get('source', 'visionforge')})",
               f"- Task: {task}",
               f"- Classes ({len(classes)}): {', '.join(classes) or 'not recorded'}",
               f"- Created: {meta.get('created', 'unknown')}",
               "- Libraries: " + ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items())]
    if run_dir is not None:
        details.append(f"- Run dir: `{run_dir}` (config.yaml, metrics.json, report.html)")
    shown = str(inputs["model_dir"])
    sections = [
        _yaml_header(name, meta, metrics, dataset),
        f"# {name}",
        "## Model details\n\n" + "\n".join(details),
        f"## Intended use\n\nA {task} model that {_INTENDED.get(task, _INTENDED['classification'])}"
        ", for research and for checking by people who know the images. It is not meant for "
        "images unlike its training data (see Limitations).",
        "## Training data\n\n" + _training_data(dataset, meta),
        "## Evaluation\n\n" + _evaluation(metrics, meta),
        "## Limitations\n\n" + _limitations(meta, metrics, dataset),
        "## Input contract\n\n" + _contract(meta),
        "## How to use\n\n" + _how_to(shown, meta),
        "*Generated by visionforge from the run's files; regenerate with "
        f"`visionforge models card {shown}`.*",
    ]
    return "\n\n".join(s.rstrip() for s in sections) + "\n"


def write_model_card(model_dir: str | os.PathLike[str]) -> Path:
    """Write (atomically) and return ``model_dir/model_card.md``."""
    path = Path(model_dir) / CARD_FILE
    atomic_write_text(path, render_model_card(model_dir))
    return path
