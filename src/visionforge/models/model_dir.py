"""The self-describing model directory: ``model.safetensors`` + ``model.json``.

``save_model_dir`` writes both files atomically; ``load_model`` rebuilds the
model from them alone, through the registry and safetensors (no pickle).
``model.json`` holds everything a deployment needs without the training code:
registry name and constructor arguments, task, class names, input size and
layout, preprocessing, metrics and library versions.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from visionforge.errors import ConfigError, WeightsError
from visionforge.io import atomic_write, atomic_write_json, read_json
from visionforge.models.spec import META_ATTR, model_contract, model_spec, registry_metadata

__all__ = [
    "FORMAT_VERSION",
    "WEIGHTS_FILE",
    "META_FILE",
    "save_model_dir",
    "update_model_meta",
    "load_model",
    "read_model_meta",
    "library_versions",
    "describe_file",
    "checkpoint_model_dir",
    "model_dir_path",
]

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"


def library_versions() -> dict[str, str]:
    """Versions of visionforge and the libraries that shape a saved model."""
    import importlib.metadata as md

    out = {}
    for pkg in ("visionforge", "torch", "torchvision", "timm", "lightning"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def _spec_of(model: nn.Module, name: str | None, kwargs: dict[str, Any] | None) -> dict[str, Any]:
    spec = model_spec(model)
    if name is not None:
        spec["name"] = name
    if kwargs is not None:
        spec["kwargs"] = dict(kwargs)
    if "name" not in spec:
        raise ConfigError(
            f"cannot save a {type(model).__name__} as a model dir: it was not built with "
            "visionforge.create_model, so its constructor is unknown. Build it with "
            "create_model(name, ...) or pass name= and kwargs= to save_model_dir."
        )
    spec.setdefault("kwargs", {})
    spec.setdefault("source", "visionforge")
    try:
        json.dumps(spec["kwargs"])
    except TypeError as exc:
        raise ConfigError(
            f"constructor arguments of {spec['name']!r} are not JSON-serialisable ({exc}); "
            "a model dir can only record plain values (numbers, strings, lists, dicts)"
        ) from None
    return spec


def save_model_dir(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    task: str | None = None,
    class_names: list[str] | None = None,
    input_size: tuple[int, ...] | list[int] | None = None,
    preprocessing: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    name: str | None = None,
    kwargs: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to the directory ``path`` (created if needed) and return it.

    Args:
        task: ``classification``/``segmentation``/``multitask``/``signal``
            (defaults to the registry's task for the model).
        class_names: names in class-index order.
        input_size: per-sample input shape without batch, e.g. ``[3, 224, 224]`` or ``[1, 750]``.
        preprocessing: the model's input contract (an
            :class:`~visionforge.models.contract.InputContract` or its dict form: value range,
            mean/std, channel order, interpolation); default: the contract declared in the
            model's registration (timm's ``pretrained_cfg`` for timm names).
        metrics: best/final metrics to record.
        name, kwargs: override the registry name / constructor arguments recorded on the model.
        extra: any further JSON-serialisable metadata.
    """
    from safetensors.torch import save_model

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    spec = _spec_of(model, name, kwargs)
    if task is None and spec.get("source") == "visionforge":
        task = registry_metadata(model).get("task")
    contract = _contract_dict(model, preprocessing, task, input_size)
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "framework": "pytorch",  # read by interop.load_model to pick the backend of a dir
        "name": spec["name"],
        "source": spec["source"],
        "kwargs": spec["kwargs"],
        "task": task or "classification",
        "class_names": list(class_names) if class_names is not None else None,
        "num_classes": len(class_names) if class_names is not None else None,
        "input_size": list(input_size) if input_size is not None else None,
        "input_layout": contract["layout"],
        "preprocessing": contract,
        "metrics": metrics or {},
        "versions": library_versions(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if extra:
        meta.update(extra)
    was_training = model.training
    with atomic_write(out / WEIGHTS_FILE) as tmp:
        save_model(model, str(tmp))
    model.train(was_training)
    atomic_write_json(out / META_FILE, meta)
    return out


def update_model_meta(path: str | os.PathLike[str], **fields: Any) -> dict[str, Any]:
    """Set top-level ``fields`` in a model dir's ``model.json`` (atomically; the weights are
    untouched); returns the new metadata. For facts known only after training, such as a
    detector's validated ``score_threshold``."""
    meta = read_model_meta(path)
    try:
        json.dumps(fields)
    except TypeError as exc:
        raise ConfigError(f"model.json fields must be JSON-serialisable: {exc}") from None
    meta.update(fields)
    atomic_write_json(model_dir_path(path) / META_FILE, meta)
    return meta


def _contract_dict(
    model: nn.Module, preprocessing: Any, task: str | None, input_size: Any
) -> dict[str, Any]:
    from visionforge.models.contract import SIGNAL, InputContract

    if isinstance(preprocessing, InputContract):
        contract = preprocessing
    elif preprocessing is not None:
        contract = InputContract.from_dict(preprocessing)
    elif task == "signal":
        contract = SIGNAL
    else:
        contract = model_contract(model)
    if task == "signal" and contract.layout != "NCL":
        contract = replace(contract, layout="NCL", channel_order="any")
    if input_size is not None:
        contract = contract.with_size(input_size)
    return contract.to_dict()


def describe_file(path: str | os.PathLike[str]) -> str:
    """What kind of file ``path`` is, from its first bytes (nothing is unpickled)."""
    import zipfile

    p = Path(path)
    with open(p, "rb") as fh:
        head = fh.read(16)
    if p.suffix == ".onnx":
        return "an ONNX model"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 10**8:
        return "a safetensors weights file"
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
            pkl = next((n for n in names if n.endswith("/data.pkl")), None)
            if any(n.endswith("/constants.pkl") for n in names):
                return "a TorchScript archive"
            if pkl is not None:
                if b"pytorch-lightning_version" in zf.read(pkl):
                    return "a Lightning training checkpoint"
                return "a PyTorch file written by torch.save"
        return "a zip archive"
    if head[:1] == b"\x80":
        return "a Python pickle"
    return "not a model.json"


def checkpoint_model_dir(path: str | os.PathLike[str]) -> Path | None:
    """The model dir of the run that wrote checkpoint ``path`` (``RUN/checkpoints/x.ckpt`` ->
    ``RUN/model``), or ``None`` when there is none beside it."""
    p = Path(path)
    if p.suffix != ".ckpt" or p.parent.name != "checkpoints":
        return None
    model_dir = p.parent.parent / "model"
    return model_dir if (model_dir / META_FILE).is_file() else None


def _not_a_model_dir(p: Path) -> WeightsError:
    kind = describe_file(p)
    hint = (
        f"pass the folder holding {META_FILE} and {WEIGHTS_FILE} that visionforge train wrote "
        "(RUN_DIR/model) or that save_model_dir created"
    )
    if kind.endswith("checkpoint") or p.suffix == ".ckpt":
        hint += (
            "; a visionforge checkpoint loads when it sits in RUN_DIR/checkpoints/ beside "
            "RUN_DIR/model/model.json"
        )
    elif kind != "not a model.json":
        hint += "; to use bare weights, build the model and load them with visionforge.io.load_state_dict_file"
    return WeightsError(f"{p}: {kind}, not a visionforge model dir; {hint}")


def _meta_file(p: Path) -> Path:
    # model dir, its model.json or model.safetensors, or a run checkpoint -> the model.json
    if p.is_dir() or not p.exists():
        return p / META_FILE if p.is_dir() else p
    if p.suffix == ".json":
        return p
    if p.name == WEIGHTS_FILE and (p.parent / META_FILE).is_file():
        return p.parent / META_FILE
    model_dir = checkpoint_model_dir(p)
    if model_dir is None:
        raise _not_a_model_dir(p)
    return model_dir / META_FILE


def model_dir_path(path: str | os.PathLike[str]) -> Path:
    """The model dir that ``path`` names: the dir itself, or the dir of its ``model.json`` /
    ``model.safetensors``. Anything else (a checkpoint, a pickle, bare weights) is refused
    with a message saying what the file is and what to pass."""
    p = Path(path)
    if not p.is_file():
        return p
    if p.name in (META_FILE, WEIGHTS_FILE) and (p.parent / META_FILE).is_file():
        return p.parent
    model_dir = checkpoint_model_dir(p)
    if model_dir is not None:
        raise WeightsError(
            f"{p}: {describe_file(p)}, not a model dir; pass the run's model dir {model_dir} "
            "(or load these weights with visionforge.models.load_model on the checkpoint)"
        )
    raise _not_a_model_dir(p)


def read_model_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``model.json`` of a model dir.

    ``path`` may be the dir, its ``model.json`` or ``model.safetensors``, or a checkpoint
    of a visionforge run (``RUN/checkpoints/x.ckpt``, described by ``RUN/model/model.json``).
    Any other file is refused with a message saying what it is and what to pass.
    """
    p = Path(path)
    meta_path = _meta_file(p)
    if not meta_path.is_file():
        raise WeightsError(
            f"{p}: not a visionforge model dir (no {META_FILE}); expected a folder holding "
            f"{WEIGHTS_FILE} and {META_FILE} as written by visionforge train or save_model_dir"
        )
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise WeightsError(f"{meta_path}: not a visionforge {META_FILE} (not a JSON object)")
    for key in ("name", "kwargs"):
        if key not in meta:
            raise WeightsError(f"{meta_path}: missing key {key!r}")
    return meta


def _load_named_weights(model: nn.Module, weights: Path, name: str) -> None:
    # Read with weights_only=True or safetensors (never unpickled); training checkpoints keep
    # the wrapped model's tensors under "model." in their state_dict.
    from visionforge.io import load_state_dict_file, model_state_from_checkpoint

    if weights.suffix == ".ckpt":
        state = model_state_from_checkpoint(weights)
    else:
        state = load_state_dict_file(weights)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise WeightsError(f"{weights}: does not match model {name!r} ({first})") from None


def load_model(
    path: str | os.PathLike[str],
    *,
    device: str = "cpu",
    eval: bool = True,
    weights: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """Rebuild a model from a model dir (``model.json`` + ``model.safetensors``); no pickle.

    ``path`` may also be a checkpoint of a visionforge run (``RUN/checkpoints/last.ckpt``):
    the model is built from ``RUN/model/model.json`` and takes the checkpoint's weights.
    ``weights`` names another weights file (``.safetensors``/``.pth``/``.ckpt``) to load
    instead of the dir's ``model.safetensors``. The returned module has the metadata dict
    on ``model.visionforge_meta``.
    """
    from safetensors.torch import load_model as st_load_model

    from visionforge.models.factory import create_model

    p = Path(path)
    meta = read_model_meta(p)
    meta_path = _meta_file(p)
    if weights is None and p.is_file() and meta_path.parent != p.parent:
        weights = p  # a run checkpoint
    if weights is not None:
        model = create_model(meta["name"], **meta["kwargs"])
        _load_named_weights(model, Path(weights), meta["name"])
        return _finish(model, meta, device, eval)
    weights_file = meta_path.parent / WEIGHTS_FILE
    if not weights_file.is_file():
        raise WeightsError(f"{weights_file}: weights file missing from the model dir")
    model = create_model(meta["name"], **meta["kwargs"])
    try:
        st_load_model(model, str(weights_file), strict=True, device="cpu")
    except Exception as exc:
        raise WeightsError(
            f"{weights_file}: does not match model {meta['name']!r} ({exc})"
        ) from None
    return _finish(model, meta, device, eval)


def _finish(model: nn.Module, meta: dict[str, Any], device: str, eval: bool) -> nn.Module:
    model.to(device)
    if eval:
        model.eval()
    setattr(model, META_ATTR, meta)
    return model
