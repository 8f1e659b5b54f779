"""nnTraining2 JSON configs: translation into our settings, a training run, and its outputs.

nnTraining2 (OpenSeizureDetector) describes a run in one JSON file with
``modelConfig``, ``dataProcessing``, ``osdbConfig`` and ``randomSeed``. Here that file
is translated into our vocabulary (printed, and saved in the run dir as
``config_translated.json``), keys we do not use are reported, and the run trains
with the framework the file names (PyTorch through :class:`visionforge.Trainer`,
TensorFlow through Keras' ``fit``). Results are written in nnTraining2's vocabulary:
``testResults.json`` (datapoint- and event-level ``tp/fp/tn/fn/tpr/fpr``) and, for
k-fold runs, ``kfold_summary.json``; fold models can be combined by the mean or the
Harrell-Davis quantile (:func:`scipy.stats.mstats.hdquantiles`) of their seizure
probabilities.

Example:
    >>> result = run_nntraining2("nnConfig.json", "runs/nn")  # doctest: +SKIP
    >>> result["event"]["tpr"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import ConfigError, DataError
from visionforge.io import atomic_write_json

__all__ = [
    "is_nntraining2_config",
    "translate_config",
    "detect_framework",
    "load_nntraining2_config",
    "binary_counts",
    "event_level_predictions",
    "ensemble_probabilities",
    "run_nntraining2",
]

# modelConfig / dataProcessing keys -> our keys (a plain translation table)
_MODEL_KEYS = {
    "framework": "framework",
    "modelType": "model_type",
    "modelClass": "model",
    "modelFname": "model_fname",
    "epochs": "epochs",
    "batchSize": "batch_size",
    "lrStart": "lr",
    "lrFactor": "plateau_factor",
    "lrPatience": "plateau_patience",
    "lrMin": "plateau_min_lr",
    "earlyStoppingPatience": "early_stopping_patience",
    "useAdamW": "use_adamw",
    "weightDecay": "weight_decay",
    "adamwBeta1": "beta1",
    "adamwBeta2": "beta2",
    "useLrSchedule": "use_lr_schedule",
    "lrPeak": "lr_peak",
    "lrMainEnd": "lr_main_end",
    "warmupSteps": "warmup_steps",
    "mainSteps": "main_steps",
    "cooldownSteps": "cooldown_steps",
    "useBalancedBatches": "balanced_batches",
    "convDropout": "conv_dropout",
    "denseDropout": "dense_dropout",
}
_DATA_KEYS = {
    "window": "window",
    "step": "step",
    "noiseAugmentation": "noise_augmentation",
    "noiseAugmentationFactor": "noise_factor",
    "noiseAugmentationValue": "noise_sigma_mg",
    "phaseAugmentation": "phase_augmentation",
    "phaseAugmentationFactor": "phase_factor",
    "oversample": "oversample",
    "undersample": "undersample",
    "testProp": "test_prop",
    "validationProp": "validation_prop",
    "mgToG": "mg_to_g",
    "normalise": "normalize",
}
_DEFAULTS: dict[str, Any] = {
    "framework": None,  # None: detected as nnTraining2 does (detect_framework)
    "model_type": None,
    "model": "deepepicnn",
    "model_fname": "model",
    "epochs": 10,
    "batch_size": 32,
    "lr": 1e-3,
    "plateau_factor": 0.5,
    "plateau_patience": 5,
    "plateau_min_lr": 1e-7,
    "early_stopping_patience": 10,
    "use_adamw": False,
    "weight_decay": 0.0,
    "beta1": 0.9,
    "beta2": 0.999,
    "use_lr_schedule": False,
    "balanced_batches": False,
    "conv_dropout": 0.0,
    "dense_dropout": 0.025,
    "window": 750,
    "step": 125,
    "noise_augmentation": False,
    "noise_factor": 0,
    "noise_sigma_mg": 10.0,
    "phase_augmentation": False,
    "phase_factor": 4,
    "oversample": False,
    "undersample": False,
    "test_prop": 0.2,
    "validation_prop": 0.1,
    "mg_to_g": False,
    "normalize": None,
    "seed": 0,
    "osdb_files": [],
    "threshold": 0.5,
}
# nnTraining2 model class paths (and short names) -> our registry name
_MODEL_CLASSES = {
    "deepepicnn": "deepepicnn",
    "deepepicnnmodel": "deepepicnn",
    "deepepicnnmodel.deepepicnnmodel": "deepepicnn",
    "nntraining2.deepepicnnmodel.deepepicnnmodel": "deepepicnn",
    "user_tools.nntraining2.deepepicnnmodel.deepepicnnmodel": "deepepicnn",
    "deepepicnnmodel_torch.deepepicnnmodel": "deepepicnn",
    "deepepicnnmodel_pytorch.deepepicnnmodel": "deepepicnn",
}


def is_nntraining2_config(cfg: Any) -> bool:
    """True for a mapping in nnTraining2's layout (has ``modelConfig``)."""
    return isinstance(cfg, Mapping) and isinstance(cfg.get("modelConfig"), Mapping)


def _map_model_class(value: str) -> str:
    key = str(value).strip().lower()
    if key in _MODEL_CLASSES:
        return _MODEL_CLASSES[key]
    tail = key.rsplit(".", 1)[-1]
    if "deepepicnn" in tail:
        return "deepepicnn"
    raise ConfigError(
        f"modelConfig.modelClass {value!r} is not known; supported: nnTraining2's DeepEpiCnn "
        "classes (e.g. 'nnTraining2.deepEpiCnnModel.DeepEpiCnnModel') or any visionforge "
        "registry name for a signal model"
    )


_FRAMEWORK_WORDS = {"pytorch": "pytorch", "torch": "pytorch", "pt": "pytorch",
                    "tensorflow": "tensorflow", "tf": "tensorflow", "keras": "tensorflow"}


def _framework_of(value: Any) -> str | None:
    """The framework a ``modelType``/``modelClass`` value names, if any."""
    text = str(value).strip().lower()
    if text in _FRAMEWORK_WORDS:
        return _FRAMEWORK_WORDS[text]
    if "torch" in text:  # e.g. deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch
        return "pytorch"
    return None


def detect_framework(model_config: Mapping[str, Any]) -> str:
    """nnTraining2's ``_detect_framework``: ``modelConfig.framework``, else the legacy
    ``modelType`` (or a PyTorch model class name), else TensorFlow -- its default, kept so
    that old configs without the key train as they always did."""
    if model_config.get("framework") is not None:
        return str(model_config["framework"])
    for key in ("modelType", "modelClass"):
        found = _framework_of(model_config.get(key, ""))
        if found is not None:
            return found
    return "tensorflow"


def translate_config(
    cfg: Mapping[str, Any], *, base_dir: str | os.PathLike[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """nnTraining2 config -> ``(our settings, ignored keys)``; unknown keys are listed, not fatal."""
    if not is_nntraining2_config(cfg):
        raise ConfigError("not an nnTraining2 config: the top level needs a 'modelConfig' object")
    out = dict(_DEFAULTS)
    ignored: list[str] = []
    for section, mapping in (("modelConfig", _MODEL_KEYS), ("dataProcessing", _DATA_KEYS)):
        block = cfg.get(section) or {}
        if not isinstance(block, Mapping):
            raise ConfigError(f"{section} must be an object, got {type(block).__name__}")
        for key, value in block.items():
            if key in mapping:
                out[mapping[key]] = value
            else:
                ignored.append(f"{section}.{key}")
    osdb = cfg.get("osdbConfig") or {}
    for key, value in osdb.items():
        if key == "osdbFiles":
            files = [value] if isinstance(value, str) else list(value)
            base = Path(base_dir) if base_dir is not None else Path(".")
            out["osdb_files"] = [str(p if Path(p).is_absolute() else base / p) for p in files]
        else:
            ignored.append(f"osdbConfig.{key}")
    for key, value in cfg.items():
        if key == "randomSeed":
            out["seed"] = int(value)
        elif key not in ("modelConfig", "dataProcessing", "osdbConfig"):
            ignored.append(key)
    from visionforge.config.framework import get_framework

    out["framework"] = get_framework(detect_framework(cfg.get("modelConfig") or {}))
    if "modelClass" not in (cfg.get("modelConfig") or {}) and out["model_type"] is not None:
        if _framework_of(out["model_type"]) is None:  # a model name rather than a framework
            out["model"] = str(out["model_type"])
    out["model"] = _map_model_class(out["model"]) if out["model"] != "deepepicnn" else "deepepicnn"
    for key in ("epochs", "batch_size", "window", "step"):
        try:
            out[key] = int(out[key])
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be an integer, got {out[key]!r}") from None
        if out[key] < 1:
            raise ConfigError(f"{key} must be >= 1, got {out[key]}")
    for key in ("test_prop", "validation_prop"):
        if not 0.0 <= float(out[key]) < 1.0:
            raise ConfigError(
                f"dataProcessing.{'testProp' if key == 'test_prop' else 'validationProp'} must be in [0, 1)"
            )
    if float(out["test_prop"]) + float(out["validation_prop"]) >= 1.0:
        raise ConfigError("testProp + validationProp must be < 1")
    return out, sorted(ignored)


def load_nntraining2_config(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[str]]:
    """Read and translate an nnTraining2 JSON file (relative ``osdbFiles`` resolve next to it)."""
    from visionforge.io import read_json

    p = Path(path)
    cfg = read_json(p)
    try:
        return translate_config(cfg, base_dir=p.parent)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


# ----------------------------------------------------------------------------- metrics
# The rates come from visionforge.evaluation.signal_metrics (the one implementation),
# imported on use: the evaluation package is heavy and this module is read at CLI start.
def binary_counts(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray
) -> dict[str, float]:
    """nnTraining2's ``tp, fp, tn, fn, tpr, fpr`` (plus accuracy, PPV, F1...) for binary labels
    (1 = seizure); a rate with a zero denominator (no positives/negatives) is NaN, undefined."""
    from visionforge.evaluation.signal_metrics import binary_rates

    return binary_rates(y_true, y_pred)


def event_level_predictions(
    probs: np.ndarray, y: np.ndarray, event_ids: np.ndarray, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Per event: true label = max window label; predicted = any window's seizure probability
    >= ``threshold`` (an alarm during the event). Events in sorted id order."""
    from visionforge.evaluation.signal_metrics import group_events

    ev = group_events(np.asarray(probs), np.asarray(y).astype(int), event_ids)
    return ev["label"].astype(int), (ev["max_prob"] >= threshold).astype(int)


def ensemble_probabilities(
    fold_probs: Sequence[np.ndarray], method: str = "mean", quantile: float = 0.5
) -> np.ndarray:
    """Combine the fold models' seizure probabilities ``[folds, N]`` into ``[N]``.

    ``method="mean"`` averages; ``method="hd"`` takes the Harrell-Davis estimate of the
    ``quantile`` across folds (SciPy's :func:`scipy.stats.mstats.hdquantiles`).
    """
    arr = np.asarray(fold_probs, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ConfigError(f"fold probabilities must be [folds, N], got shape {arr.shape}")
    if method == "mean":
        return arr.mean(axis=0)
    if method in ("hd", "harrell_davis", "harrell-davis"):
        if not 0.0 < quantile < 1.0:
            raise ConfigError(f"quantile must be in (0, 1), got {quantile}")
        from scipy.stats.mstats import hdquantiles

        if arr.shape[0] == 1:
            return arr[0]
        return np.asarray(hdquantiles(arr, prob=[quantile], axis=0)).reshape(-1)
    raise ConfigError(f"ensemble method {method!r}: choose 'mean' or 'hd' (Harrell-Davis)")


def _results(probs: np.ndarray, y: np.ndarray, ids: np.ndarray, threshold: float) -> dict[str, Any]:
    """``testResults.json``: datapoint- and event-level rates at ``threshold`` (NaN = undefined)."""
    from visionforge.evaluation.signal_metrics import datapoint_metrics, event_metrics

    event = event_metrics(probs, y, ids, threshold)
    return {
        "threshold": threshold,
        "datapoint": datapoint_metrics(probs, y, threshold),
        "event": event,
        "n_windows": len(y),
        "n_events": event["num_events"],
    }


# ----------------------------------------------------------------------------- data
def _prepare_events(
    settings: Mapping[str, Any], events: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    from visionforge.data.signals import load_osdb_events

    if events is not None:
        return list(events)
    files = settings.get("osdb_files") or []
    if not files:
        raise ConfigError(
            "osdbConfig.osdbFiles is empty: list the OSDB JSON event files to train on"
        )
    return load_osdb_events(files)


def _augment(train_events: list[dict[str, Any]], s: Mapping[str, Any]) -> list[dict[str, Any]]:
    from visionforge.data.signals import (
        noise_copies,
        oversample_events,
        phase_shift_copies,
        undersample_events,
    )

    events = list(train_events)
    seed = int(s["seed"])
    if s.get("noise_augmentation") or int(s.get("noise_factor") or 0) > 0:
        events += noise_copies(
            train_events,
            factor=int(s.get("noise_factor") or 1),
            sigma_mg=float(s["noise_sigma_mg"]),
            seed=seed,
        )
    if s.get("phase_augmentation"):
        events += phase_shift_copies(train_events, factor=int(s.get("phase_factor") or 4))
    if s.get("oversample"):
        events = oversample_events(events, seed=seed)
    elif s.get("undersample"):
        events = undersample_events(events, seed=seed)
    return events


def _windows(
    events: list[dict[str, Any]], s: Mapping[str, Any], stats: Mapping[str, Any] | None = None
) -> Any:
    from visionforge.data.signals import windows_from_events

    kwargs: dict[str, Any] = {
        "window": int(s["window"]),
        "step": int(s["step"]),
        "mg_to_g": bool(s["mg_to_g"]),
    }
    if s.get("normalize"):
        kwargs["normalize"] = s["normalize"]
        if stats and s["normalize"] == "global":
            kwargs["mean"], kwargs["std"] = stats.get("mean"), stats.get("std")
    return windows_from_events(events, **kwargs)


def _split_event_list(
    events: list[dict[str, Any]], s: Mapping[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    from visionforge.data.signals import event_label
    from visionforge.data.splits import stratified_assign

    labelled = [(ev, event_label(ev)) for ev in events]
    labelled = [(ev, lab) for ev, lab in labelled if lab is not None]
    if not labelled:
        raise DataError(
            "no labelled events (types 'seizure', 'false alarm' or 'nda') in the OSDB files"
        )
    test, val = float(s["test_prop"]), float(s["validation_prop"])
    assign = stratified_assign(
        [lab for _, lab in labelled], (1.0 - test - val, val, test), int(s["seed"])
    )
    out: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    for (ev, _), part in zip(labelled, assign, strict=True):
        out[str(part)].append(ev)
    return out


# ----------------------------------------------------------------------------- training
def _pytorch_loaders(s: Mapping[str, Any], train: Any, val: Any) -> tuple[Any, Any]:
    """Training loader (balanced batches or a seeded shuffle) and the validation loader."""
    import torch
    from torch.utils.data import DataLoader

    from visionforge.data.signals import SignalDataset, balanced_sampler

    batch_size = int(s["batch_size"])
    train_ds = SignalDataset(
        train.x, train.y, train.event_ids, class_names=["nonSeizure", "seizure"]
    )
    # A last batch of one sample would break BatchNorm in training: drop it.
    drop_last = len(train_ds) % batch_size == 1
    if s.get("balanced_batches"):
        order: dict[str, Any] = {"sampler": balanced_sampler(train.y, seed=int(s["seed"]))}
    else:
        order = {"shuffle": True, "generator": torch.Generator().manual_seed(int(s["seed"]))}
    loader = DataLoader(train_ds, batch_size=batch_size, drop_last=drop_last, **order)
    val_loader = None
    if val is not None and len(val):
        val_loader = DataLoader(SignalDataset(val.x, val.y, val.event_ids), batch_size=batch_size)
    return loader, val_loader


def _pytorch_scheduler(s: Mapping[str, Any], has_val: bool) -> tuple[str | None, dict[str, Any]]:
    """nnTraining2's LR policy: its three-phase schedule, else plateau on validation loss."""
    if s.get("use_lr_schedule"):
        keys = ("lr_peak", "lr_main_end", "warmup_steps", "main_steps", "cooldown_steps")
        return "three_phase", {k: s[k] for k in keys if s.get(k) is not None}
    if has_val:
        return "plateau", {
            "factor": float(s["plateau_factor"]),
            "patience": int(s["plateau_patience"]),
            "min_lr": float(s["plateau_min_lr"]),
        }
    return None, {}


def _train_pytorch(s: Mapping[str, Any], train: Any, val: Any, run_dir: Path) -> Any:
    import torch

    from visionforge.engine import Trainer
    from visionforge.models import create_model

    model = create_model(
        s["model"],
        num_classes=2,
        drop_rate=float(s["dense_dropout"]),
        conv_drop_rate=float(s["conv_dropout"]),
    )
    loader, val_loader = _pytorch_loaders(s, train, val)
    scheduler, sk = _pytorch_scheduler(s, val_loader is not None)
    trainer = Trainer(
        model,
        optimizer="adamw" if s.get("use_adamw") else "adam",
        lr=float(s["lr"]),
        weight_decay=float(s["weight_decay"] or 0.0),
        scheduler=scheduler,
        scheduler_kwargs=sk,
        max_epochs=int(s["epochs"]),
        early_stopping_patience=int(s["early_stopping_patience"])
        if val_loader is not None
        else None,
        output_dir=run_dir,
        seed=int(s["seed"]),
        task="signal",
        class_names=["nonSeizure", "seizure"],
        progress=False,
    )
    trainer.train(loader, val_loader)
    model.eval()
    _save_pt(model, run_dir / f"{Path(str(s['model_fname'])).stem}.pt")

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
            return torch.softmax(logits, dim=1)[:, 1].numpy()

    return predict


def _save_pt(model: Any, path: Path) -> None:
    """nnTraining2's PyTorch model file: the state dict alone (tensors, so it loads with
    ``torch.load(path, weights_only=True)``), beside the self-describing ``model/`` dir."""
    import torch

    from visionforge.io import atomic_write

    with atomic_write(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)


def _keras_history(logs: Mapping[str, list[float]]) -> dict[str, Any]:
    """A Keras ``History.history`` in the layout of the PyTorch run's ``history.json``."""
    val_metrics = {k[4:]: list(map(float, v)) for k, v in logs.items()
                   if k.startswith("val_") and k != "val_loss"}
    return {
        "train_loss": [float(v) for v in logs.get("loss", [])],
        "val_loss": [float(v) for v in logs.get("val_loss", [])],
        "val_metrics": val_metrics,
        "train_metrics": {k: list(map(float, v)) for k, v in logs.items()
                          if not k.startswith("val_") and k not in ("loss", "learning_rate", "lr")},
        "lr": [float(v) for v in logs.get("learning_rate", logs.get("lr", []))],
        "val_epoch": list(range(len(logs.get("val_loss", [])))),
    }


def _train_tensorflow(s: Mapping[str, Any], train: Any, val: Any, run_dir: Path) -> Any:
    from visionforge.interop.tensorflow import TensorFlowMissingError, require_tensorflow
    from visionforge.interop.tensorflow.models import build_deepepicnn

    try:
        tf, keras = require_tensorflow("nnTraining2 with framework 'tensorflow'")
    except TensorFlowMissingError as exc:
        raise TensorFlowMissingError(
            f"{exc} -- or train with PyTorch: set \"framework\": \"pytorch\" in modelConfig "
            "(a config without it means TensorFlow, as in nnTraining2)"
        ) from None
    keras.utils.set_random_seed(int(s["seed"]))
    if s["model"] != "deepepicnn":
        raise ConfigError(
            f"model {s['model']!r} has no TensorFlow implementation; TensorFlow has DeepEpiCnn"
        )
    channels, length = train.x.shape[1], train.x.shape[2]
    model = build_deepepicnn(
        2,
        length=length,
        in_chans=channels,
        dropout=float(s["dense_dropout"]),
        conv_dropout=float(s["conv_dropout"]),
    )
    if s.get("use_adamw"):
        opt = keras.optimizers.AdamW(
            learning_rate=float(s["lr"]),
            weight_decay=float(s["weight_decay"] or 0.0),
            beta_1=float(s["beta1"]),
            beta_2=float(s["beta2"]),
        )
    else:
        opt = keras.optimizers.Adam(learning_rate=float(s["lr"]))
    model.compile(
        optimizer=opt,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    xt = np.ascontiguousarray(train.x.transpose(0, 2, 1))
    has_val = val is not None and len(val)
    callbacks = []
    if has_val:
        callbacks = [
            keras.callbacks.ReduceLROnPlateau(
                factor=float(s["plateau_factor"]),
                patience=int(s["plateau_patience"]),
                min_lr=float(s["plateau_min_lr"]),
            ),
            keras.callbacks.EarlyStopping(
                patience=int(s["early_stopping_patience"]), restore_best_weights=True
            ),
        ]
    fitted = model.fit(
        xt,
        train.y,
        batch_size=int(s["batch_size"]),
        epochs=int(s["epochs"]),
        verbose=0,
        validation_data=(val.x.transpose(0, 2, 1), val.y) if has_val else None,
        callbacks=callbacks,
    )
    model.save(run_dir / f"{Path(str(s['model_fname'])).stem}.keras")
    atomic_write_json(run_dir / "history.json", _keras_history(fitted.history))

    def predict(x: np.ndarray) -> np.ndarray:
        logits = model.predict(np.ascontiguousarray(x.transpose(0, 2, 1)), verbose=0)
        return np.asarray(tf.nn.softmax(logits, axis=-1))[:, 1]

    return predict


def _train_one(
    s: Mapping[str, Any],
    train_events: list[dict[str, Any]],
    val_events: list[dict[str, Any]],
    run_dir: Path,
) -> Any:
    train = _windows(_augment(train_events, s), s)
    val = _windows(val_events, s, train.stats) if val_events else None
    run_dir.mkdir(parents=True, exist_ok=True)
    train_fn = _train_tensorflow if s["framework"] == "tensorflow" else _train_pytorch
    predict = train_fn(s, train, val, run_dir)
    _plot_history(run_dir)  # both frameworks: history.json -> training_curves.png
    return predict, train.stats


def _plot_history(run_dir: Path) -> None:
    """nnTraining2's training plot, from the run's ``history.json`` (same for both frameworks)."""
    from visionforge.evaluation.plots import plot_training_curves
    from visionforge.io import read_json

    history_file = run_dir / "history.json"
    if history_file.is_file():
        try:
            plot_training_curves(read_json(history_file), run_dir / "training_curves.png")
        except ValueError:  # nothing recorded (no epoch finished): no plot, not an error
            pass


def _load_settings(
    config: str | os.PathLike[str] | Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    run_dir: Path,
    verbose: bool,
) -> dict[str, Any]:
    """Translate the config, warn about ignored keys, and record both forms in ``run_dir``."""
    if isinstance(config, Mapping):
        settings, ignored = translate_config(config)
        raw = dict(config)
    else:
        settings, ignored = load_nntraining2_config(config)
        raw = json.loads(Path(config).read_text(encoding="utf-8"))
    settings.update(overrides or {})
    run_dir.mkdir(parents=True, exist_ok=True)
    for key in ignored:
        warnings.warn(
            f"nnTraining2 config key {key!r} is not used by visionforge and was ignored",
            stacklevel=3,
        )
    atomic_write_json(run_dir / "config_nntraining2.json", raw)
    atomic_write_json(
        run_dir / "config_translated.json", {"settings": settings, "ignored_keys": ignored}
    )
    if verbose:
        print("nnTraining2 config translated to visionforge settings:")
        for key in sorted(settings):
            print(f"  {key} = {settings[key]!r}")
        if ignored:
            print(f"  ignored keys: {', '.join(ignored)}")
    return settings


def _run_kfold(
    settings: Mapping[str, Any],
    parts: Mapping[str, list[dict[str, Any]]],
    test: Any,
    run_dir: Path,
    kfold: int,
    ensemble: str,
    quantile: float,
) -> dict[str, Any]:
    """Train one model per event-level fold; write per-fold results, the fold summary and the
    ensemble's ``testResults.json``."""
    from visionforge.data.signals import event_label
    from visionforge.data.splits import kfold_indices

    threshold = float(settings["threshold"])
    pool = parts["train"] + parts["val"]
    labels = [int(event_label(ev)) for ev in pool]
    folds = kfold_indices(labels, kfold, int(settings["seed"]))
    fold_results, fold_probs = [], []
    for k, (train_idx, val_idx) in enumerate(folds):
        fold_dir = run_dir / f"fold_{k}"
        predict, _ = _train_one(
            settings, [pool[i] for i in train_idx], [pool[i] for i in val_idx], fold_dir
        )
        probs = predict(test.x)
        fold_probs.append(probs)
        res = _results(probs, test.y, test.event_ids, threshold)
        atomic_write_json(fold_dir / "testResults.json", res)
        fold_results.append(res)
    combined = ensemble_probabilities(fold_probs, ensemble, quantile)
    result = _results(combined, test.y, test.event_ids, threshold)
    result.update(
        {
            "framework": settings["framework"],
            "model": settings["model"],
            "ensemble": {"method": ensemble, "quantile": quantile, "folds": kfold},
        }
    )
    summary = _kfold_summary(fold_results)
    summary["ensemble"] = {k: result[k] for k in ("datapoint", "event")}
    atomic_write_json(run_dir / "kfold_summary.json", summary)
    atomic_write_json(run_dir / "testResults.json", result)
    return result


def _kfold_summary(fold_results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-fold results and the mean/std of each rate across folds (NaN if any fold's rate is
    undefined: an average over the defined folds only would hide that)."""
    summary: dict[str, Any] = {"folds": fold_results}
    for level in ("datapoint", "event"):
        for key in ("tpr", "fpr", "accuracy"):
            vals = np.array([r[level][key] for r in fold_results], dtype=np.float64)
            summary.setdefault(level, {})[key] = {
                "mean": float(vals.mean()),
                "std": float(vals.std()),
            }
    return summary


def run_nntraining2(
    config: str | os.PathLike[str] | Mapping[str, Any],
    output_dir: str | os.PathLike[str],
    *,
    kfold: int | None = None,
    ensemble: str = "mean",
    quantile: float = 0.5,
    events: list[dict[str, Any]] | None = None,
    overrides: Mapping[str, Any] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Train as an nnTraining2 config says and write ``testResults.json`` (and, with
    ``kfold``, ``kfold_summary.json`` plus the fold ensemble's results).

    Args:
        config: path to ``nnConfig.json`` or the parsed mapping.
        output_dir: run directory.
        kfold: number of event-level folds over the non-test events (``None``: one split).
        ensemble: how fold models are combined on the test set: ``"mean"`` or ``"hd"``.
        quantile: Harrell-Davis quantile for ``ensemble="hd"``.
        events: OSDB events already loaded (instead of ``osdbConfig.osdbFiles``).
        overrides: settings (our keys) replacing the file's, e.g. ``{"epochs": 1}``.

    Returns:
        The ``testResults.json`` content. A rate whose denominator is zero (e.g. ``tpr`` when
        the test set has no seizure windows) is NaN, written as ``NaN`` in the JSON.
    """
    run_dir = Path(output_dir)
    settings = _load_settings(config, overrides, run_dir, verbose)
    parts = _split_event_list(_prepare_events(settings, events), settings)
    if not parts["test"]:
        raise DataError("the test split is empty: raise dataProcessing.testProp or add events")
    test = _windows(parts["test"], settings)
    if kfold and int(kfold) >= 2:
        return _run_kfold(settings, parts, test, run_dir, int(kfold), ensemble, quantile)
    predict, stats = _train_one(settings, parts["train"], parts["val"], run_dir)
    test = _windows(parts["test"], settings, stats)
    result = _results(predict(test.x), test.y, test.event_ids, float(settings["threshold"]))
    result.update({"framework": settings["framework"], "model": settings["model"]})
    atomic_write_json(run_dir / "testResults.json", result)
    return result
