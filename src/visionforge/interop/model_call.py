"""CODAvision's ``model_call`` and a framework-aware ``load_model``.

Example:
    >>> model = model_call("DeepLabV3_plus", IMAGE_SIZE=64, NUM_CLASSES=3)  # doctest: +SKIP
    >>> model.compile(optimizer="adam", loss="categorical_crossentropy")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from visionforge.errors import ConfigError, UnknownNameError, WeightsError
from visionforge.interop.tensorflow.models import KERAS_MODELS, build_keras_model

__all__ = ["model_call", "load_model", "available_models", "TF_NAMES"]

# The names model_call knows for TensorFlow; each also names its PyTorch twin
# (KERAS_MODELS' torch_name), so both frameworks resolve CODAvision names from one table.
TF_NAMES = tuple(KERAS_MODELS.list())


def available_models(framework: str) -> list[str]:
    """Model names ``model_call`` accepts for ``framework``."""
    if framework == "tensorflow":
        return list(TF_NAMES)
    from visionforge.models import list_models

    return sorted(set(TF_NAMES) | set(list_models()))


def model_call(
    name: str,
    IMAGE_SIZE: int | Sequence[int] | None = None,  # noqa: N803  (CODAvision's argument names)
    NUM_CLASSES: int = 2,  # noqa: N803
    l2_regularization_weight: float = 0.0,
    encoder_id: int = 0,
    wrap_with_adapter: bool = True,
    framework: str | None = None,
    **kwargs: Any,
) -> Any:
    """Build a model by CODAvision name for the selected framework.

    Args:
        name: ``DeepLabV3_plus``, ``UNet``, ``DeepEpiCnn``; with PyTorch also any registry name.
        IMAGE_SIZE: input size (``N``, ``(H, W)`` or ``(H, W, C)``); for ``DeepEpiCnn`` the
            window length. Needed by TensorFlow (static shapes); PyTorch models take any size.
        NUM_CLASSES: output classes.
        l2_regularization_weight: Keras kernel L2 penalty; with PyTorch it becomes the
            equivalent coupled weight decay (``2 * weight``) when the adapter is compiled.
        encoder_id: CODAvision's encoder selector; only ``0`` (ResNet-50) exists.
        wrap_with_adapter: PyTorch only: return a :class:`KerasAdapter` (default) or the raw
            ``nn.Module`` (for :class:`visionforge.Trainer`).
        framework: ``"pytorch"`` or ``"tensorflow"``; ``None`` = :func:`get_framework`
            (``VISIONFORGE_FRAMEWORK`` / config / default pytorch).
        **kwargs: extra constructor arguments.

    Returns:
        A ``KerasAdapter`` or ``nn.Module`` (PyTorch) or a ``keras.Model`` (TensorFlow).
    """
    from visionforge.config.framework import get_framework

    fw = get_framework(framework)
    if encoder_id not in (0, None):
        raise ConfigError(f"encoder_id={encoder_id!r}: only encoder 0 (ResNet-50) is available")
    if l2_regularization_weight < 0:
        raise ConfigError(f"l2_regularization_weight must be >= 0, got {l2_regularization_weight}")
    key = name.strip().replace("-", "_")
    if fw == "tensorflow":
        model = _keras_model(name, key, IMAGE_SIZE, NUM_CLASSES, l2_regularization_weight, kwargs)
        return _keep_sizes(model, IMAGE_SIZE, NUM_CLASSES)
    module = _torch_model(name, key, IMAGE_SIZE, NUM_CLASSES, kwargs)
    if not wrap_with_adapter:
        if l2_regularization_weight:
            module.l2_regularization_weight = float(l2_regularization_weight)
        return _keep_sizes(module, IMAGE_SIZE, NUM_CLASSES)
    from visionforge.interop.adapter import KerasAdapter

    adapter = KerasAdapter(module, name=name)
    adapter.l2_regularization_weight = float(l2_regularization_weight)
    _keep_sizes(module, IMAGE_SIZE, NUM_CLASSES)
    return _keep_sizes(adapter, IMAGE_SIZE, NUM_CLASSES)


def _keep_sizes(model: Any, image_size: Any, num_classes: int) -> Any:
    """Record the sizes the model was built for under CODAvision's names and ours
    (``IMAGE_SIZE``/``input_size``, ``NUM_CLASSES``/``num_classes``), as its builders keep them."""
    values = {"IMAGE_SIZE": image_size, "input_size": image_size,
              "NUM_CLASSES": int(num_classes), "num_classes": int(num_classes)}
    for attr, value in values.items():
        if value is None or hasattr(model, attr):  # never overwrite the model's own attribute
            continue
        try:
            setattr(model, attr, value)
        except (AttributeError, TypeError):  # a read-only property of a foreign model
            pass
    return model


def _keras_model(
    name: str,
    key: str,
    image_size: Any,
    num_classes: int,
    l2_regularization_weight: float,
    kwargs: dict[str, Any],
) -> Any:
    """The TensorFlow branch of :func:`model_call`."""
    if key not in KERAS_MODELS:
        raise UnknownNameError(
            f"model {name!r} is not available for framework 'tensorflow'; TensorFlow has: "
            f"{', '.join(TF_NAMES)}. Use framework='pytorch' for the full registry "
            "(visionforge models list)."
        )
    if image_size is None and KERAS_MODELS.entry(key).metadata.get("image_size") != "length":
        raise ConfigError(f"model_call({name!r}, framework='tensorflow') needs IMAGE_SIZE")
    return build_keras_model(
        key,
        image_size,
        int(num_classes),
        l2_regularization_weight=float(l2_regularization_weight),
        **kwargs,
    )


def _torch_model(
    name: str, key: str, image_size: Any, num_classes: int, kwargs: dict[str, Any]
) -> Any:
    """The PyTorch branch of :func:`model_call`: a CODAvision name's twin or a registry name."""
    from visionforge.models import create_model

    registry_name = KERAS_MODELS.entry(key).metadata["torch_name"] if key in KERAS_MODELS else name
    ctor = dict(kwargs)
    ctor.setdefault("num_classes", int(num_classes))
    if registry_name == "deepepicnn" and image_size is not None:
        length = image_size if isinstance(image_size, int) else list(image_size)[0]
        if int(length) != 750:
            warnings.warn(
                f"DeepEpiCnn takes any window length >= its minimum; IMAGE_SIZE={length} is only "
                "checked at run time",
                stacklevel=3,
            )
    return create_model(registry_name, **ctor)


_TORCH_SUFFIXES = (".pth", ".pt")
_KERAS_SUFFIXES = (".keras", ".h5")


def _files_in(model_dir: Path) -> tuple[list[Path], list[Path]]:
    """The PyTorch weight files and Keras model files directly inside ``model_dir``."""
    files = sorted(f for f in model_dir.iterdir() if f.is_file())
    torch_files = [f for f in files if f.suffix.lower() in _TORCH_SUFFIXES]
    keras_files = [f for f in files if f.suffix.lower() in _KERAS_SUFFIXES]
    return torch_files, keras_files


def _recorded_framework(model_dir: Path) -> str | None:
    """The framework ``model.json`` records (``None`` without one; old dirs are PyTorch)."""
    from visionforge.io import read_json
    from visionforge.models.model_dir import META_FILE

    meta_path = model_dir / META_FILE
    if not meta_path.is_file():
        return None
    meta = read_json(meta_path)
    return str(meta.get("framework") or "pytorch") if isinstance(meta, dict) else None


def _framework_chosen_explicitly() -> str | None:
    """The framework of :func:`set_framework` or the environment, else ``None``."""
    from visionforge.config import framework as fwconf

    if fwconf._selected_framework is not None:
        return fwconf._selected_framework
    value, source, _ = fwconf.resolve_setting("framework")
    return value if source == "env" else None


def _resolve_model_dir(p: Path, framework: str | None) -> tuple[str, Path]:
    """``(framework, path to load)`` for a model dir: the ``framework`` argument, else the
    framework chosen by ``set_framework``/the environment when the dir holds both kinds,
    else the framework ``model.json`` records, else the only kind of file present."""
    from visionforge.models.model_dir import META_FILE, WEIGHTS_FILE

    torch_files, keras_files = _files_in(p)
    has_torch = (p / WEIGHTS_FILE).is_file() or bool(torch_files)
    chosen = framework
    if chosen is None and has_torch and keras_files:
        chosen = _framework_chosen_explicitly()
    chosen = chosen or _recorded_framework(p)
    if chosen is None:
        if keras_files and not has_torch:
            chosen = "tensorflow"
        elif has_torch:
            chosen = "pytorch"
        else:
            raise WeightsError(
                f"{p}: no model found inside (expected {META_FILE} + {WEIGHTS_FILE}, a .pth/.pt "
                "with its model.json, or a .keras/.h5 file)"
            )
    if chosen == "tensorflow":
        if not keras_files:
            raise WeightsError(f"{p}: framework 'tensorflow' asked for but no .keras/.h5 inside")
        return chosen, keras_files[0]
    if (p / WEIGHTS_FILE).is_file() or not torch_files:
        return "pytorch", p
    return "pytorch", torch_files[0]


def load_model(
    path: str | os.PathLike[str], *, framework: str | None = None, compile: bool = False
) -> Any:
    """Load a saved model, choosing the framework from the file.

    ``.keras``/``.h5`` files -> TensorFlow (``keras.saving.load_model``, safe mode, our custom
    layers registered); a model dir (``model.json`` + ``model.safetensors``) -> PyTorch wrapped
    in a :class:`KerasAdapter`; a ``.safetensors``/``.pth`` file next to a ``model.json`` ->
    PyTorch likewise. A folder holding ``.pth``/``.pt`` and/or ``.keras``/``.h5`` files (as
    CODAvision's model dirs do) is searched: the framework is the ``framework`` argument,
    else ``set_framework``/``VISIONFORGE_FRAMEWORK``/``CODAVISION_FRAMEWORK`` when both kinds
    are there, else the one ``model.json`` records (``KerasAdapter.save`` records it), else
    the kind present. ``framework`` forces one.
    """
    p = Path(path)
    if not p.exists():
        raise WeightsError(f"{p}: not found")
    if p.is_dir() and not (p / "saved_model.pb").is_file():
        fw_in_dir, p = _resolve_model_dir(p, framework)
        framework = fw_in_dir
    is_tf_file = p.is_file() and p.suffix.lower() in _KERAS_SUFFIXES
    fw = framework or ("tensorflow" if is_tf_file else "pytorch")
    if fw == "tensorflow":
        if not is_tf_file:
            raise WeightsError(f"{p}: not a Keras file (.keras or .h5)")
        from visionforge.interop.tensorflow import require_tensorflow
        from visionforge.interop.tensorflow.layers import custom_objects

        _, keras = require_tensorflow("loading a .keras model")
        return keras.saving.load_model(str(p), custom_objects=custom_objects(), compile=compile)
    from visionforge.interop.adapter import KerasAdapter
    from visionforge.models.model_dir import META_FILE, WEIGHTS_FILE, checkpoint_model_dir
    from visionforge.models.model_dir import load_model as load_model_dir
    from visionforge.models.spec import model_meta

    model_dir = p if p.is_dir() else p.parent
    if checkpoint_model_dir(p) is not None:  # RUN/checkpoints/x.ckpt, described by RUN/model
        module = load_model_dir(p)
    elif not (model_dir / META_FILE).is_file():
        raise WeightsError(
            f"{p}: a PyTorch model needs its model dir ({META_FILE} + model.safetensors, as written "
            "by KerasAdapter.save or visionforge train); a bare weights file cannot say which "
            "model to build -- use create_model(name, pretrained=path) instead"
        )
    elif p.is_file() and p.name not in (META_FILE, WEIGHTS_FILE):
        # Load the file that was named, not the dir's own model.safetensors.
        module = load_model_dir(model_dir, weights=p)
    else:
        module = load_model_dir(model_dir)
    opts = model_meta(module).get("keras_adapter", {})
    return KerasAdapter(
        module,
        outputs=opts.get("outputs", "logits"),
        output_activation=opts.get("output_activation"),
        data_format=opts.get("data_format", "channels_last"),
    )
