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
import logging
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
    "load_nntraining2_config",
    "binary_counts",
    "event_level_predictions",
    "ensemble_probabilities",
    "run_nntraining2",
]

_log = logging.getLogger(__name__)

# modelConfig keys -> our keys (None: understood, handled specially)
_MODEL_KEYS = {
    "framework": "framework",
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
    "framework": "pytorch",
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

    out["framework"] = get_framework(str(out["framework"]))
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
def binary_counts(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray
) -> dict[str, float]:
    """``tp, fp, tn, fn, tpr, fpr`` (and ``accuracy``) for binary labels (1 = seizure)."""
    t = np.asarray(y_true).astype(int)
    p = np.asarray(y_pred).astype(int)
    tp = int(((t == 1) & (p == 1)).sum())
    fp = int(((t == 0) & (p == 1)).sum())
    tn = int(((t == 0) & (p == 0)).sum())
    fn = int(((t == 1) & (p == 0)).sum())
    return {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "tpr": tp / (tp + fn) if tp + fn else 0.0,
        "fpr": fp / (fp + tn) if fp + tn else 0.0,
        "accuracy": (tp + tn) / max(len(t), 1),
    }


def event_level_predictions(
    probs: np.ndarray, y: np.ndarray, event_ids: np.ndarray, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Per event: true label = max window label; predicted = any window's seizure probability
    >= ``threshold`` (an alarm during the event)."""
    ids = np.asarray(event_ids)
    uniq, inverse = np.unique(ids, return_inverse=True)
    true = np.zeros(len(uniq), dtype=int)
    pred = np.zeros(len(uniq), dtype=int)
    np.maximum.at(true, inverse, np.asarray(y).astype(int))
    np.maximum.at(pred, inverse, (np.asarray(probs) >= threshold).astype(int))
    return true, pred


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
    ev_true, ev_pred = event_level_predictions(probs, y, ids, threshold)
    return {
        "threshold": threshold,
        "datapoint": binary_counts(y, (probs >= threshold).astype(int)),
        "event": binary_counts(ev_true, ev_pred),
        "n_windows": len(y),
        "n_events": len(ev_true),
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
def _train_pytorch(s: Mapping[str, Any], train: Any, val: Any, run_dir: Path) -> Any:
    import torch
    from torch.utils.data import DataLoader

    from visionforge.data.signals import SignalDataset, balanced_sampler
    from visionforge.engine import Trainer
    from visionforge.models import create_model

    model = create_model(
        s["model"],
        num_classes=2,
        drop_rate=float(s["dense_dropout"]),
        conv_drop_rate=float(s["conv_dropout"]),
    )
    train_ds = SignalDataset(
        train.x, train.y, train.event_ids, class_names=["nonSeizure", "seizure"]
    )
    # A last batch of one sample would break BatchNorm in training: drop it.
    drop_last = len(train_ds) % int(s["batch_size"]) == 1
    if s.get("balanced_batches"):
        loader = DataLoader(
            train_ds,
            batch_size=int(s["batch_size"]),
            drop_last=drop_last,
            sampler=balanced_sampler(train.y, seed=int(s["seed"])),
        )
    else:
        loader = DataLoader(
            train_ds,
            batch_size=int(s["batch_size"]),
            shuffle=True,
            drop_last=drop_last,
            generator=torch.Generator().manual_seed(int(s["seed"])),
        )
    val_loader = None
    if val is not None and len(val):
        val_loader = DataLoader(
            SignalDataset(val.x, val.y, val.event_ids), batch_size=int(s["batch_size"])
        )
    if s.get("use_lr_schedule"):
        scheduler = "three_phase"
        sk = {
            k: s[k]
            for k in ("lr_peak", "lr_main_end", "warmup_steps", "main_steps", "cooldown_steps")
            if s.get(k) is not None
        }
    elif val_loader is not None:
        scheduler = "plateau"
        sk = {
            "factor": float(s["plateau_factor"]),
            "patience": int(s["plateau_patience"]),
            "min_lr": float(s["plateau_min_lr"]),
        }
    else:
        scheduler, sk = None, {}
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

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
            return torch.softmax(logits, dim=1)[:, 1].numpy()

    return predict


def _train_tensorflow(s: Mapping[str, Any], train: Any, val: Any, run_dir: Path) -> Any:
    from visionforge.interop.tensorflow import require_tensorflow
    from visionforge.interop.tensorflow.models import build_deepepicnn

    tf, keras = require_tensorflow("nnTraining2 with framework 'tensorflow'")
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
    model.fit(
        xt,
        train.y,
        batch_size=int(s["batch_size"]),
        epochs=int(s["epochs"]),
        verbose=0,
        validation_data=(val.x.transpose(0, 2, 1), val.y) if has_val else None,
        callbacks=callbacks,
    )
    model.save(run_dir / f"{Path(str(s['model_fname'])).stem}.keras")

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
    if s["framework"] == "tensorflow":
        return _train_tensorflow(s, train, val, run_dir), train.stats
    return _train_pytorch(s, train, val, run_dir), train.stats


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
        The ``testResults.json`` content.
    """
    if isinstance(config, Mapping):
        settings, ignored = translate_config(config)
        raw = dict(config)
    else:
        settings, ignored = load_nntraining2_config(config)
        raw = json.loads(Path(config).read_text(encoding="utf-8"))
    settings.update(overrides or {})
    run_dir = Path(output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for key in ignored:
        warnings.warn(
            f"nnTraining2 config key {key!r} is not used by visionforge and was ignored",
            stacklevel=2,
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

    all_events = _prepare_events(settings, events)
    parts = _split_event_list(all_events, settings)
    if not parts["test"]:
        raise DataError("the test split is empty: raise dataProcessing.testProp or add events")
    test = _windows(parts["test"], settings)
    threshold = float(settings["threshold"])

    if not kfold or int(kfold) < 2:
        predict, stats = _train_one(settings, parts["train"], parts["val"], run_dir)
        test = _windows(parts["test"], settings, stats)
        result = _results(predict(test.x), test.y, test.event_ids, threshold)
        result.update({"framework": settings["framework"], "model": settings["model"]})
        atomic_write_json(run_dir / "testResults.json", result)
        return result

    from visionforge.data.signals import event_label
    from visionforge.data.splits import kfold_indices

    pool = parts["train"] + parts["val"]
    labels = [int(event_label(ev)) for ev in pool]
    folds = kfold_indices(labels, int(kfold), int(settings["seed"]))
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
            "ensemble": {"method": ensemble, "quantile": quantile, "folds": int(kfold)},
        }
    )
    summary: dict[str, Any] = {"folds": fold_results}
    for level in ("datapoint", "event"):
        for key in ("tpr", "fpr", "accuracy"):
            vals = np.array([r[level][key] for r in fold_results])
            summary.setdefault(level, {})[key] = {
                "mean": float(vals.mean()),
                "std": float(vals.std()),
            }
    summary["ensemble"] = {k: result[k] for k in ("datapoint", "event")}
    atomic_write_json(run_dir / "kfold_summary.json", summary)
    atomic_write_json(run_dir / "testResults.json", result)
    return result
