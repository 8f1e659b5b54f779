"""The input contract of a model: what tensor it expects, declared once in its registration.

Like timm's ``pretrained_cfg`` / ``resolve_data_config``, every registered model
states the value range, mean/std, channel order, default input size,
interpolation and layout of its input. Data setup, the ``Predictor``, export,
serving and the Keras adapter read the contract from the registry (for a model
being built) or from ``model.json``'s ``preprocessing`` section (for a saved
model); none of them assumes ImageNet statistics.

Pipeline: an image decoded to float RGB in ``[0, 1]`` becomes the model input as

    x = x01 * (hi - lo) + lo          # value range, e.g. [0, 255]
    x = x[[2, 1, 0]]                  # only when channel_order == "BGR"
    x = (x - mean) / std              # mean/std in the units of that range

This module imports neither torch nor numpy at import time (the CLI's ``--help``
stays fast); :meth:`InputContract.apply` accepts either array type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = [
    "InputContract",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGENET",
    "UNIT_RANGE",
    "RAW_255",
    "SIGNAL",
    "default_contract",
    "contract_for",
    "contract_from_meta",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_ORDERS = ("RGB", "BGR", "any")
_LAYOUTS = ("NCHW", "NCL")
_INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@dataclass(frozen=True)
class InputContract:
    """What a model's input tensor must look like.

    Attributes:
        input_range: ``(lo, hi)`` the un-normalised values span (``(0, 1)`` or ``(0, 255)``);
            ``None`` for inputs with no fixed range (raw sensor signals).
        mean, std: per-channel statistics subtracted/divided after scaling to ``input_range``
            (in its units); ``None`` = no normalisation.
        channel_order: ``"RGB"``, ``"BGR"`` (channels reversed before normalising) or
            ``"any"`` (grey, multispectral, signals).
        input_size: default per-sample shape without batch, e.g. ``(3, 224, 224)``; ``None`` when
            the model takes any size.
        interpolation: how images are resized for this model.
        layout: ``"NCHW"`` for images, ``"NCL"`` for 1-D signals.
    """

    input_range: tuple[float, float] | None = (0.0, 1.0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channel_order: str = "RGB"
    input_size: tuple[int, ...] | None = None
    interpolation: str = "bilinear"
    layout: str = "NCHW"

    def __post_init__(self) -> None:
        if self.channel_order not in _ORDERS:
            raise ValueError(f"channel_order must be one of {_ORDERS}, got {self.channel_order!r}")
        if self.layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}, got {self.layout!r}")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {_INTERPOLATIONS}, got {self.interpolation!r}"
            )
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither")
        if self.std is not None and any(float(s) == 0 for s in self.std):
            raise ValueError(f"std must be non-zero, got {self.std}")

    # -- derived ---------------------------------------------------------------------
    @property
    def normalized(self) -> bool:
        """True if mean/std are applied."""
        return self.mean is not None

    def with_size(self, input_size: Sequence[int] | None) -> InputContract:
        """The same contract with another default input size."""
        return replace(self, input_size=tuple(int(s) for s in input_size) if input_size else None)

    def apply(self, x01: Any, channel_dim: int = -3) -> Any:
        """Turn ``x01`` (float RGB in ``[0, 1]``, torch tensor or numpy array) into model input.

        ``channel_dim`` locates the channels (``-3`` for ``[..., C, H, W]``; use ``-2`` for
        ``[..., C, L]`` signals, which are passed through unless a range/mean is declared).
        """
        x = x01
        if self.input_range is not None:
            lo, hi = self.input_range
            if (lo, hi) != (0.0, 1.0):
                x = x * (hi - lo) + lo
        if self.channel_order == "BGR":
            x = _flip(x, channel_dim)
        if self.mean is not None and self.std is not None:
            mean, std = _broadcastable(x, self.mean, channel_dim), _broadcastable(
                x, self.std, channel_dim
            )
            x = (x - mean) / std
        return x

    # -- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON form, stored as ``model.json["preprocessing"]``."""
        out = asdict(self)
        for key in ("input_range", "mean", "std", "input_size"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> InputContract:
        """Read the JSON form; keys missing from older ``model.json`` files take defaults."""
        data = dict(data or {})
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        rng = known.get("input_range", (0.0, 1.0))
        known["input_range"] = None if rng is None else (float(rng[0]), float(rng[1]))
        for key in ("mean", "std"):
            if known.get(key) is not None:
                value = known[key]
                known[key] = tuple(float(v) for v in (value if isinstance(value, Sequence)
                                                      else [value]))
        if known.get("input_size") is not None:
            known["input_size"] = tuple(int(s) for s in known["input_size"])
        return cls(**known)


def _flip(x: Any, dim: int) -> Any:
    if hasattr(x, "flip"):  # torch
        return x.flip(dim)
    import numpy as np

    return np.flip(x, axis=dim).copy()


def _broadcastable(x: Any, values: Sequence[float], channel_dim: int) -> Any:
    shape = [1] * (-channel_dim)
    shape[0] = len(values)
    if hasattr(x, "new_tensor"):  # torch
        return x.new_tensor(list(values)).reshape(shape)
    import numpy as np

    return np.asarray(values, dtype=getattr(x, "dtype", np.float32)).reshape(shape)


#: timm-style ImageNet normalisation of [0, 1] RGB input (the default for image models).
IMAGENET = InputContract(mean=IMAGENET_MEAN, std=IMAGENET_STD)
#: RGB in [0, 1], no normalisation.
UNIT_RANGE = InputContract()
#: RGB in [0, 255], no normalisation (the model normalises inside, e.g. CODAvision DeepLabV3+).
RAW_255 = InputContract(input_range=(0.0, 255.0))
#: 1-D sensor windows, passed as they are (the data layer may standardise each window).
SIGNAL = InputContract(input_range=None, channel_order="any", layout="NCL")


def default_contract(task: str | None) -> InputContract:
    """The contract a registration gets when it declares none: SIGNAL for 1-D, else ImageNet."""
    return SIGNAL if task == "signal" else IMAGENET


def _timm_contract(name: str) -> InputContract:
    """A timm architecture's contract from its ``pretrained_cfg`` (timm's own source of truth)."""
    import timm
    from timm.data import resolve_data_config

    model_cfg = timm.models.get_pretrained_cfg(name)
    cfg = resolve_data_config(
        pretrained_cfg=model_cfg.to_dict() if model_cfg is not None else {}, use_test_size=True
    )
    interp = cfg.get("interpolation", "bilinear")
    return InputContract(
        mean=tuple(float(v) for v in cfg["mean"]),
        std=tuple(float(v) for v in cfg["std"]),
        input_size=tuple(int(v) for v in cfg["input_size"]),
        interpolation=interp if interp in _INTERPOLATIONS else "bilinear",
    )


def contract_for(name: str) -> InputContract:
    """The declared contract of a registered model (or alias), or a timm model's pretrained_cfg."""
    from visionforge.models.factory import is_registered, model_entry

    if is_registered(name):
        meta = model_entry(name).metadata
        return meta.get("input_contract") or default_contract(meta.get("task"))
    return _timm_contract(name)


def contract_from_meta(meta: Mapping[str, Any]) -> InputContract:
    """The contract recorded in a model dir's ``model.json`` (``preprocessing`` + ``input_size``)."""
    contract = InputContract.from_dict(meta.get("preprocessing"))
    if contract.input_size is None and meta.get("input_size"):
        contract = contract.with_size(meta["input_size"])
    if meta.get("input_layout") == "NCL" and contract.layout != "NCL":
        contract = replace(contract, layout="NCL", channel_order="any")
    return contract
