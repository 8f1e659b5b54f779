"""``visionforge train``: config -> data -> model -> Trainer -> evaluation -> report.

Each step writes into one run directory, and a failure in a later step (say the
report) leaves the results of the earlier ones (checkpoints, model dir,
metrics) in place.
"""

from __future__ import annotations

import inspect
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionforge.errors import ConfigError

__all__ = [
    "RunResult", "train_from_config", "build_trainer_kwargs", "make_loader", "prepare_run",
]

_log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    task: str
    model_name: str
    metrics: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    model_dir: Path | None = None
    report: Path | None = None
    seconds: float = 0.0


def build_trainer_kwargs(cfg: Any, run_dir: Path, data: Any, *,
                         resume_from: str | Path | None = None) -> dict[str, Any]:
    """``Trainer`` keyword arguments of a run: the config's settings plus what the data says."""
    from visionforge.config.settings import settings_from_config

    class_weights = cfg.loss.class_weights
    if class_weights == "auto":
        class_weights = _auto_class_weights(data)
    elif class_weights is not None:
        class_weights = [float(w) for w in class_weights]
    settings = settings_from_config(
        cfg, output_dir=run_dir, class_names=data.class_names, task=data.task,
        preprocessing=data.preprocessing, class_weights=class_weights,
        model_meta=data.model_meta or None,
        **({"resume_from": str(resume_from)} if resume_from is not None else {}),
    )
    return {"settings": settings}


def _auto_class_weights(data: Any) -> list[float] | None:
    from visionforge.engine.class_weights import classification_class_weights

    if data.task in ("classification", "signal"):
        ds = data.train
        labels = getattr(ds, "targets", None)
        if labels is None and hasattr(ds, "labels"):
            labels = list(ds.labels)
        if labels is not None:
            weights = classification_class_weights(labels, len(data.class_names))
            return [float(w) for w in weights]
    _log.warning("loss.class_weights=auto is only computed for classification/signal runs; "
                 "for segmentation pass a list (see visionforge.engine.class_weights)")
    return None


def make_loader(dataset: Any, batch_size: int, *, shuffle: bool, num_workers: int = 0,
                seed: int | None = None):
    """A DataLoader with the data layer's defaults (pinned memory on CUDA, persistent workers).

    ``seed`` fixes the shuffling order (used for evaluation, so the sample-prediction plots
    show a mix of classes rather than the first class of a sorted split).
    """
    import torch
    from torch.utils.data import DataLoader

    from visionforge.data import loader_kwargs

    kwargs = loader_kwargs(num_workers=num_workers)
    collate = getattr(dataset, "collate_fn", None)  # detection: targets stay a list
    if collate is not None:
        kwargs["collate_fn"] = collate
    if seed is not None:
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, **kwargs)


def _model_kwargs(cfg: Any, name: str, data: Any, defaults_kwargs: dict[str, Any]) -> dict[str, Any]:
    from omegaconf import OmegaConf

    from visionforge.models.factory import is_registered, model_entry

    kwargs = dict(defaults_kwargs)
    kwargs.update(OmegaConf.to_container(cfg.model.kwargs, resolve=True) or {})
    n = len(data.class_names)
    if is_registered(name):  # not `name in MODELS`: the built-ins may not be imported yet
        entry = model_entry(name)
        task = entry.metadata.get("task")
        accepted = inspect.signature(entry.obj).parameters
        if task == "multitask":
            kwargs.setdefault("num_classes_segmentation", n)
        elif "num_classes" in accepted:
            kwargs.setdefault("num_classes", n)
        if "in_chans" in accepted:
            kwargs.setdefault("in_chans", data.in_chans)
        if "img_size" in accepted and data.task != "signal":  # transformers fix their grid
            kwargs.setdefault("img_size", data.input_size[-1])
    else:  # a timm architecture
        kwargs.setdefault("num_classes", n)
        kwargs.setdefault("in_chans", data.in_chans)
    return kwargs


def _resolve_defaults(cfg: Any, kind: str, echo: Callable[[str], None]) -> tuple[str, dict]:
    """Fill model/batch size/epochs left to ``auto``/``None`` from the data kind's defaults."""
    from visionforge.config.loader import model_config_kwargs
    from visionforge.workflows.data_setup import default_image_size
    from visionforge.workflows.detect import task_defaults

    defaults = task_defaults(kind)
    chosen = []
    name = cfg.model.name
    kwargs: dict[str, Any] = {}
    if name == "auto":
        name, kwargs = defaults.model, model_config_kwargs(defaults.model)
        chosen.append(f"model={name}")
    if cfg.data.batch_size is None:
        cfg.data.batch_size = defaults.batch_size
        chosen.append(f"data.batch_size={defaults.batch_size}")
    if cfg.trainer.max_epochs is None:
        cfg.trainer.max_epochs = defaults.max_epochs
        chosen.append(f"trainer.max_epochs={defaults.max_epochs}")
    size = default_image_size(kind) if cfg.data.image_size is None else None
    if size is not None:  # set later from the data (a model may fix its own size)
        chosen.append(f"data.image_size={size}")
    if chosen:
        echo(f"detected {defaults.task} data ({kind}); chose " + ", ".join(chosen))
    return name, kwargs


def _model_contract(name: str) -> Any:
    """The input contract of model ``name``; an unknown name fails here, with suggestions."""
    from visionforge.models.contract import contract_for
    from visionforge.models.factory import is_registered, is_timm_model

    if not is_registered(name) and not is_timm_model(name):
        from visionforge.models import create_model

        create_model(name)  # raises UnknownNameError naming the closest registered models
    return contract_for(name)


def _absolute_paths(cfg: Any) -> None:
    """Store data and weight paths absolute, so the saved ``config.yaml`` re-runs from anywhere."""
    for key in ("root", "images_dir", "masks_dir"):
        value = cfg.data.get(key)
        if value:
            cfg.data[key] = str(Path(value).expanduser().resolve())
    pretrained = cfg.model.pretrained
    if isinstance(pretrained, str) and Path(pretrained).expanduser().exists():
        cfg.model.pretrained = str(Path(pretrained).expanduser().resolve())


@contextmanager
def _discard_on_error(run_dir: Path, created: list[Path]) -> Iterator[None]:
    """Remove the folders in ``created`` (a new run dir and the parents made for it) when the
    block fails, so a run that never started leaves nothing half-made behind."""
    try:
        yield
    except BaseException:
        for folder in created:
            if folder == run_dir:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                with suppress(OSError):
                    folder.rmdir()  # only when empty: another run may live there
        raise


def _open_run_dir(cfg: Any, task: str, run_dir: Path | None) -> tuple[Path, list[Path]]:
    """``run_dir`` (a resumed run) or a new one; also the folders this call created."""
    from visionforge.workflows.run_dir import new_run_dir

    if run_dir is not None:
        return run_dir, []
    parents = [Path(cfg.project_dir) / task, Path(cfg.project_dir)]
    missing = [p for p in parents if not p.exists()]
    run_dir = new_run_dir(cfg.project_dir, task, cfg.name)
    return run_dir, [run_dir, *missing]


#: Python keyword spellings in data errors -> the run config's spelling
_CONFIG_SPELLING = {"on_bad_image='skip'": "data.on_bad_image=skip"}


def _cli_spelled(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; a :class:`DataError` that advises a Python keyword is re-raised with the
    config key a run config needs (the data layer speaks to Python callers too)."""
    from visionforge.errors import DataError

    try:
        return fn(*args, **kwargs)
    except DataError as exc:
        text = str(exc)
        for python, config in _CONFIG_SPELLING.items():
            text = text.replace(python, config)
        if text == str(exc):
            raise
        raise DataError(text) from None


def _prepare(cfg: Any, echo: Callable[[str], None], run_dir: Path | None = None
             ) -> tuple[Any, Path, str, dict[str, Any], list[Path]]:
    """Resolve the data kind and the model (its input contract shapes the data), then the data.

    Everything that can be checked without reading the data (data kind, model name, input
    contract, run name) is checked before the run dir exists; a data error after that
    removes the new run dir again. Returns the data, the run dir, the model name and
    kwargs, and the folders created for the run (empty when resuming).
    """
    from visionforge.workflows.data_setup import default_image_size, prepare_data, resolve_kind
    from visionforge.workflows.detect import task_defaults
    from visionforge.workflows.run_dir import check_run_name

    kind = resolve_kind(cfg.data)
    task = cfg.task if cfg.task != "auto" else task_defaults(kind).task
    name, default_kwargs = _resolve_defaults(cfg, kind, echo)
    contract = _model_contract(name)
    check_run_name(cfg.name)
    _absolute_paths(cfg)
    run_dir, created = _open_run_dir(cfg, task, run_dir)
    with _discard_on_error(run_dir, created):
        image_size = cfg.data.image_size or default_image_size(kind)
        data = _cli_spelled(prepare_data, cfg.data, run_dir, image_size, contract,
                            model_name=name)
        if data.task != "signal":
            cfg.data.image_size = data.input_size[-1]
        cfg.data.kind = data.kind
        cfg.task = data.task
        kwargs = _model_kwargs(cfg, name, data, default_kwargs)
    cfg.model.name = name
    cfg.model.kwargs = kwargs
    return data, run_dir, name, kwargs, created


def prepare_run(cfg: Any, echo: Callable[[str], None], run_dir: Path | None = None
                ) -> tuple[Any, Path, str, dict[str, Any]]:
    """The data, run dir, model name and model kwargs of run config ``cfg`` (the first steps
    of :func:`train_from_config`, for workflows that train differently, e.g. the pipeline)."""
    data, run_dir, name, kwargs, _ = _prepare(cfg, echo, run_dir)
    return data, run_dir, name, kwargs


def train_from_config(
    cfg: Any,
    *,
    echo: Callable[[str], None] = print,
    after_train: Callable[[RunResult, Any, Any], None] | None = None,
    run_dir: Path | None = None,
    resume_from: str | Path | None = None,
    callbacks: Sequence[Any] = (),
) -> RunResult:
    """Run a whole training job described by a validated run config (``DictConfig``).

    ``run_dir`` continues an existing run dir instead of creating a new one and
    ``resume_from`` names the checkpoint to resume from (see ``resume=`` of
    ``visionforge train`` and :func:`visionforge.workflows.run_dir.resolve_resume`).
    ``callbacks`` are extra Lightning callbacks for the fit (a sweep's pruning callback).
    """

    from visionforge.config.loader import save_config
    from visionforge.engine import Trainer, set_seed
    from visionforge.io import atomic_write_json
    from visionforge.models import create_model

    start = time.perf_counter()
    if cfg.framework != "pytorch":
        raise ConfigError(
            f"framework={cfg.framework!r}: `visionforge train` runs PyTorch models; use "
            "visionforge.interop.model_call(..., framework='tensorflow') for Keras models, an "
            "nnTraining2 config (--config nnConfig.json) for a TensorFlow run, or pass "
            "framework=pytorch (VISIONFORGE_FRAMEWORK / CODAVISION_FRAMEWORK may have set it)"
        )
    auto_batch = cfg.data.batch_size == "auto"
    if auto_batch:  # the search starts from the data kind's default batch size
        cfg.data.batch_size = None
    data, run_dir, name, kwargs, created = _prepare(cfg, echo, run_dir)
    with _discard_on_error(run_dir, created):  # a bad model kwarg must not leave a run dir
        set_seed(cfg.seed)  # before building the model, so its initial weights follow the seed
        model = create_model(name, pretrained=cfg.model.pretrained, **kwargs)
        trainer = Trainer(model, **build_trainer_kwargs(cfg, run_dir, data,
                                                        resume_from=resume_from))
    trainer.callbacks.extend(callbacks)
    if auto_batch:
        cfg.data.batch_size = _find_batch_size(trainer, data, cfg, echo)
    save_config(cfg, run_dir / "config.yaml")
    atomic_write_json(run_dir / "dataset.json", data.summary)
    echo(f"run dir: {run_dir}" + (f" (resuming from {resume_from})" if resume_from else ""))

    bs, nw = cfg.data.batch_size, cfg.data.num_workers
    train_loader = make_loader(data.train, bs, shuffle=True, num_workers=nw)
    val_loader = make_loader(data.val, bs, shuffle=False, num_workers=nw) if data.val else None
    earlier = _read_csv_log(run_dir) if resume_from else []
    history = trainer.train(train_loader, val_loader)
    if earlier:
        _prepend_csv_log(run_dir, earlier)
    result = RunResult(run_dir=run_dir, task=data.task, model_name=name, history=history,
                       model_dir=getattr(trainer, "model_dir", None))

    result.metrics = _evaluate(trainer, data, cfg, run_dir, result.model_dir, echo) or result.metrics
    if after_train is not None:
        after_train(result, trainer, data)
    _write_card(result.model_dir)
    result.seconds = time.perf_counter() - start
    result.report = _write_report(run_dir, cfg, data, result.seconds)
    _track_results(trainer, run_dir, cfg)
    return result


def _evaluate(trainer: Any, data: Any, cfg: Any, run_dir: Path, model_dir: Path | None,
              echo: Callable[[str], None]) -> dict[str, Any] | None:
    """Test (else validation) metrics into the run dir; a detector first gets its counting
    score threshold, chosen on the validation split and stored in its model dir."""
    bs, nw = cfg.data.batch_size, cfg.data.num_workers
    threshold = None
    if data.task == "detection" and data.val is not None and model_dir is not None:
        threshold = store_score_threshold(
            trainer.model, make_loader(data.val, bs, shuffle=False, num_workers=nw),
            model_dir, echo)
    eval_data = data.test or data.val
    if eval_data is None:
        return None
    return evaluate_into_run_dir(
        trainer.model, make_loader(eval_data, bs, shuffle=True, num_workers=nw, seed=cfg.seed),
        run_dir, task=data.task, class_names=data.class_names,
        split="test" if data.test is not None else "val", count_threshold=threshold,
    )


def _write_report(run_dir: Path, cfg: Any, data: Any, seconds: float) -> Any:
    """The run report; a broken report must not lose the trained model and metrics."""
    from omegaconf import OmegaConf

    try:
        from visionforge.evaluation import build_run_report

        return build_run_report(
            run_dir, pdf=cfg.report_pdf, config=OmegaConf.to_container(cfg, resolve=True),
            dataset=data.summary, runtimes={"total_seconds": round(seconds, 1)},
        )
    except Exception as exc:
        _log.error("report generation failed (results are kept in %s): %s", run_dir, exc)
        return None


def _write_card(model_dir: Path | None) -> None:
    """``model_card.md`` beside ``model.json`` (a failure is logged: the model is kept)."""
    if model_dir is None:
        return
    from visionforge.workflows.card import write_model_card

    try:
        write_model_card(model_dir)
    except Exception as exc:  # a broken card must not lose the trained model and metrics
        _log.error("model card not written (the model dir %s is complete): %s", model_dir, exc)


def _find_batch_size(trainer: Any, data: Any, cfg: Any, echo: Callable[[str], None]) -> int:
    """``data.batch_size=auto``: Lightning's batch-size finder from the default size up."""
    from visionforge.data import loader_kwargs
    from visionforge.engine.batch_size import find_batch_size

    start = int(cfg.data.batch_size)
    size = find_batch_size(trainer, data.train, init_val=start,
                           loader_kwargs=loader_kwargs(num_workers=cfg.data.num_workers))
    echo(f"data.batch_size=auto: using {size} (largest that trains here, searched from {start})")
    return size


def _track_results(trainer: Any, run_dir: Path, cfg: Any) -> None:
    """Params, test metrics, report, plots and config into the run's MLflow run (if any)."""
    from omegaconf import OmegaConf

    from visionforge.engine.tracking import log_run_results

    try:
        log_run_results(trainer, run_dir, OmegaConf.to_container(cfg, resolve=True))
    except Exception as exc:  # tracking is a copy of what the run dir already holds
        _log.error("MLflow logging of the results failed (they are in %s): %s", run_dir, exc)


def _read_csv_log(run_dir: Path) -> list[dict[str, str]]:
    """Rows of ``logs/metrics.csv`` (Lightning's CSV logger rewrites it when a run resumes)."""
    import csv

    path = run_dir / "logs" / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _prepend_csv_log(run_dir: Path, earlier: list[dict[str, str]]) -> None:
    """Put the rows logged before a resume back in front of the resumed run's rows."""
    import csv
    import io

    from visionforge.io import atomic_write_text

    rows = earlier + _read_csv_log(run_dir)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(run_dir / "logs" / "metrics.csv", buf.getvalue())


def collapse_warnings(metrics: dict[str, Any]) -> list[str]:
    """Messages for heads that predict a single class for every sample/pixel.

    A confusion matrix (rows = truth, columns = prediction) with one non-empty column
    while the truth holds several classes means the model has collapsed: its accuracy
    is just that class's share, which a headline number hides.
    """
    out = []
    sections = [("", metrics)] + [(f"{k} ", v) for k, v in metrics.items()
                                  if k in ("classification", "segmentation") and isinstance(v, dict)]
    for prefix, section in sections:
        cm = section.get("confusion_matrix")
        if not cm or len(cm) < 2:
            continue
        names = section.get("class_names") or [str(i) for i in range(len(cm))]
        predicted = [j for j in range(len(cm)) if sum(row[j] for row in cm) > 0]
        present = [i for i, row in enumerate(cm) if sum(row) > 0]
        if len(predicted) == 1 and len(present) > 1:
            unit = "pixel" if "num_pixels" in section else "sample"
            out.append(
                f"{prefix}collapsed: the model predicts class {names[predicted[0]]!r} for every "
                f"{unit} although the labels hold {len(present)} classes; the scores only reflect "
                "that class's share. Train longer, lower optimizer.lr or set loss.class_weights"
            )
    return out


def store_score_threshold(model: Any, val_loader: Any, model_dir: Path,
                          echo: Callable[[str], None] = print) -> float:
    """Choose a detector's counting score threshold on the validation split (lowest mean
    absolute count error) and store it as ``score_threshold`` in ``model_dir/model.json``,
    where ``visionforge predict``, ``/detect`` and the evaluation report read it; returns it.
    """
    from visionforge.evaluation.detection import DetectionEvaluator, choose_count_threshold
    from visionforge.models.model_dir import update_model_meta

    ev = DetectionEvaluator(model, count_threshold=0.5)
    ev.evaluate(val_loader)
    threshold = choose_count_threshold(ev.artifacts["preds"], ev.artifacts["targets"])
    update_model_meta(model_dir, score_threshold=threshold)
    echo(f"score threshold {threshold:.2f} (lowest count error on the validation split) "
         f"stored in {model_dir / 'model.json'}")
    return threshold


def evaluate_into_run_dir(
    model: Any, loader: Any, run_dir: Path, *, task: str, class_names: list[str], split: str,
    count_threshold: float | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``loader``; write ``metrics.json`` and ``plots/`` into ``run_dir``.

    ``count_threshold`` (detection): score from which a box counts as an object (default:
    the model dir's stored ``score_threshold``, else 0.5).

    A collapsed model (one class predicted everywhere) is flagged in ``metrics.json``:
    ``"collapsed": true`` and a message in ``"warnings"``.
    """
    from visionforge.evaluation import Evaluator
    from visionforge.evaluation.detection import DetectionEvaluator

    evaluator: Any = (DetectionEvaluator(model, class_names=class_names,
                                         count_threshold=count_threshold)
                      if task == "detection" else Evaluator(model, task=task,
                                                           class_names=class_names))
    metrics = evaluator.evaluate(loader)
    metrics = {"split": split, **metrics}
    warnings = collapse_warnings(metrics)
    if warnings:
        metrics["collapsed"] = True
        metrics["warnings"] = [*metrics.get("warnings", []), *warnings]
    evaluator.metrics = metrics
    evaluator.save(run_dir)
    return metrics
