"""Loss functions by name, with per-task defaults.

``build_loss(name, task)`` returns an ``nn.Module`` called as ``loss(logits, target)``;
for multitask models it returns a :class:`MultitaskLoss` called as
``loss(outputs_dict, batch_dict)``. Names live in the ``LOSSES`` registry:

- ``cross_entropy`` (``ce``): torch cross-entropy, optional class weights and label smoothing.
- ``codavision``: the CODAvision segmentation loss (see :class:`CODAvisionLoss`).
- ``dice``: soft Dice loss on softmax (or sigmoid for one channel) probabilities.
- ``ce_dice``: cross-entropy + Dice.
- ``focal``: multi-class focal loss (``gamma=0`` and no ``alpha`` is cross-entropy).
- ``bce``: binary cross-entropy on logits (one output channel).

Example:
    >>> import torch
    >>> loss = build_loss("codavision", "segmentation", class_weights=[1.0, 3.0])
    >>> float(loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))) > 0
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from visionforge.errors import ConfigError
from visionforge.registry import Registry

__all__ = [
    "LOSSES",
    "TASKS",
    "DEFAULT_LOSS",
    "build_loss",
    "list_losses",
    "CODAvisionLoss",
    "DiceLoss",
    "CEDiceLoss",
    "FocalLoss",
    "BinaryCrossEntropyLoss",
    "MultitaskLoss",
]

LOSSES = Registry("loss")
TASKS = ("classification", "segmentation", "multitask", "signal")
# Default loss per task (the multitask default is cross-entropy on every head).
DEFAULT_LOSS = {
    "classification": "cross_entropy",
    "signal": "cross_entropy",
    "segmentation": "cross_entropy",
    "multitask": "cross_entropy",
}
_IGNORE_DEFAULT = -100  # torch's default ignore_index


def _as_weight_tensor(class_weights: Any) -> Tensor | None:
    if class_weights is None:
        return None
    w = torch.as_tensor(
        class_weights.tolist() if hasattr(class_weights, "tolist") else class_weights,
        dtype=torch.float32,
    ).flatten()
    if w.numel() == 0 or not torch.isfinite(w).all() or (w < 0).any():
        raise ConfigError(
            f"class_weights must be a non-empty list of finite non-negative numbers, got {w.tolist()}"
        )
    return w


def _check_weights_match(weight: Tensor | None, num_classes: int, where: str) -> None:
    if weight is not None and weight.numel() != num_classes:
        raise ConfigError(
            f"{where}: class_weights has {weight.numel()} entries but the model outputs "
            f"{num_classes} classes; give one weight per class"
        )


class CrossEntropyLoss(nn.CrossEntropyLoss):
    """``nn.CrossEntropyLoss`` that also accepts a ``[B, 1]`` target and reports a clear
    error when the number of class weights does not match the logits."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002 - torch's name
        _check_weights_match(self.weight, input.shape[1], "cross_entropy")
        if target.dim() == input.dim() and target.shape[1] == 1 and input.shape[1] != 1:
            target = target.squeeze(1)
        if target.dtype != torch.long and not target.is_floating_point():
            target = target.long()
        if not target.is_floating_point() and not bool((target != self.ignore_index).any()):
            # torch returns 0/0 = NaN when every target is ignored (e.g. a crop of unlabelled
            # pixels), which would poison the weights; such a batch carries no signal: 0.
            return input.sum() * 0.0
        return super().forward(input, target)


class CODAvisionLoss(nn.Module):
    """The CODAvision weighted segmentation loss.

    With ``p = clamp(softmax(logits), 1e-7, 1 - 1e-7)`` and class weights ``w``
    normalised to sum 1 (uniform when none are given), each pixel ``i`` with label
    ``y_i`` has loss ``l_i = -w[y_i] * log p[y_i, i]``. For every class ``c`` the
    loss averages ``l_i`` over the pixels labelled ``c`` in the batch (0 when the
    class is absent), and the result is the sum of these per-class values over all
    ``C`` classes -- CODAvision's value: with uniform weights it is the mean over classes
    of each class's mean cross-entropy (``WeightedCrossEntropyLoss`` of its PyTorch port
    with unit weights). ``reduction="mean"`` divides that by ``C`` (our earlier default,
    1/C of CODAvision's value). Pixels equal to ``ignore_index`` are left out.
    """

    def __init__(
        self,
        class_weights: Any = None,
        *,
        eps: float = 1e-7,
        ignore_index: int | None = None,
        reduction: str = "sum",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ConfigError(
                f"codavision loss: reduction must be 'mean' or 'sum', got {reduction!r}"
            )
        w = _as_weight_tensor(class_weights)
        if w is not None:
            if float(w.sum()) <= 0:
                raise ConfigError("codavision loss: class_weights must not all be zero")
            w = w / w.sum()
        self.register_buffer("weight", w)
        self.eps = eps
        self.ignore_index = ignore_index
        self.reduction = reduction

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        num_classes = logits.shape[1]
        if target.dim() == logits.dim():
            target = target.squeeze(1)
        target = target.long()
        probs = logits.float().softmax(dim=1).clamp(self.eps, 1.0 - self.eps)
        valid = torch.ones_like(target, dtype=torch.bool)
        if self.ignore_index is not None:
            valid = target != self.ignore_index
        safe_target = torch.where(valid, target, torch.zeros_like(target))
        if ((safe_target < 0) | (safe_target >= num_classes)).any():
            raise ConfigError(
                f"codavision loss: mask values must lie in [0, {num_classes - 1}] "
                f"(or equal ignore_index), found {int(safe_target.min())}..{int(safe_target.max())}"
            )
        nll = -probs.gather(1, safe_target.unsqueeze(1)).squeeze(1).log()
        if self.weight is None:
            weight = torch.full((num_classes,), 1.0 / num_classes, device=logits.device)
        else:
            _check_weights_match(self.weight, num_classes, "codavision loss")
            weight = self.weight
        pixel_loss = (nll * weight[safe_target])[valid]
        labels = safe_target[valid]
        sums = torch.zeros(num_classes, device=logits.device).index_add_(0, labels, pixel_loss)
        counts = torch.bincount(labels, minlength=num_classes).to(sums.dtype)
        per_class = torch.where(counts > 0, sums / counts.clamp(min=1), torch.zeros_like(sums))
        return per_class.mean() if self.reduction == "mean" else per_class.sum()


class DiceLoss(nn.Module):
    """Soft Dice loss ``1 - mean_c (2|P∩T| + s) / (|P| + |T| + s)``.

    Probabilities are the softmax over channels (sigmoid when there is one channel,
    i.e. binary). Sums run over the batch and spatial dimensions per class; classes
    absent from both prediction and target score 1 thanks to the smoothing ``s``.

    Kept rather than MONAI's ``DiceLoss`` (not a runtime dependency); it equals
    ``DiceLoss(softmax=True, to_onehot_y=True, batch=True, smooth_nr=s, smooth_dr=s,
    ignore_index=...)``. Differences: class weights give the weighted *mean*
    ``sum(w_c d_c) / sum(w_c)`` (MONAI: ``mean(w_c d_c)``), and a binary (one-channel)
    head averages the background and foreground Dice (MONAI's sigmoid mode scores only
    the foreground).
    """

    def __init__(
        self,
        *,
        smooth: float = 1.0,
        ignore_index: int | None = None,
        class_weights: Any = None,
    ) -> None:
        super().__init__()
        self.smooth = smooth
        self.ignore_index = ignore_index
        self.register_buffer("weight", _as_weight_tensor(class_weights))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        num_classes = logits.shape[1]
        if target.dim() == logits.dim() and num_classes != 1:
            target = target.squeeze(1)
        logits = logits.float()
        if num_classes == 1:  # binary: one logit channel, target in {0, 1}
            probs = logits.sigmoid()
            tgt = target.reshape(probs.shape).float()
            valid = torch.ones_like(tgt, dtype=torch.bool)
            if self.ignore_index is not None:
                valid = tgt != self.ignore_index
                tgt = torch.where(valid, tgt, torch.zeros_like(tgt))
            probs = torch.cat([1 - probs, probs], dim=1)
            onehot = torch.cat([1 - tgt, tgt], dim=1)
            valid = valid.expand_as(onehot)
        else:
            probs = logits.softmax(dim=1)
            target = target.long()
            valid = torch.ones_like(target, dtype=torch.bool)
            if self.ignore_index is not None:
                valid = target != self.ignore_index
            safe = torch.where(valid, target, torch.zeros_like(target))
            onehot = F.one_hot(safe, num_classes).movedim(-1, 1).to(probs.dtype)
            valid = valid.unsqueeze(1).expand_as(onehot)
        mask = valid.to(probs.dtype)
        dims = [0, *range(2, probs.dim())]
        inter = (probs * onehot * mask).sum(dims)
        denom = (probs * mask).sum(dims) + (onehot * mask).sum(dims)
        dice = (2 * inter + self.smooth) / (denom + self.smooth)
        if self.weight is not None:
            _check_weights_match(self.weight, dice.numel(), "dice loss")
            return 1 - (dice * self.weight).sum() / self.weight.sum()
        return 1 - dice.mean()


class CEDiceLoss(nn.Module):
    """``ce_weight * cross_entropy + dice_weight * dice``.

    Class weights apply to the cross-entropy term only (MONAI's ``DiceCELoss`` also
    multiplies the per-class Dice terms by them). With one output channel (binary) the
    cross-entropy term is binary cross-entropy on the valid pixels, a weight pair
    ``[w0, w1]`` giving ``pos_weight = w1 / w0`` as in ``bce``.
    """

    def __init__(
        self,
        *,
        class_weights: Any = None,
        label_smoothing: float = 0.0,
        ignore_index: int | None = None,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        smooth: float = 1.0,
    ) -> None:
        super().__init__()
        self.ce = CrossEntropyLoss(
            weight=_as_weight_tensor(class_weights),
            label_smoothing=label_smoothing,
            ignore_index=_IGNORE_DEFAULT if ignore_index is None else ignore_index,
        )
        self.dice = DiceLoss(smooth=smooth, ignore_index=ignore_index)
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if logits.shape[1] == 1:
            ce = self._binary_ce(logits, target)
        else:
            ce = self.ce(logits, target)
        return self.ce_weight * ce + self.dice_weight * self.dice(logits, target)

    def _binary_ce(self, logits: Tensor, target: Tensor) -> Tensor:
        # Softmax cross-entropy over a single channel is always 0 (and a label 1 is out of
        # range), so a binary head uses BCE, as MONAI's DiceCELoss does.
        if self.ce.label_smoothing:
            raise ConfigError("ce_dice: label_smoothing needs two or more output channels")
        weight = self.ce.weight
        pos_weight = None
        if weight is not None:
            if weight.numel() != 2:
                raise ConfigError(
                    "ce_dice with one output channel: class_weights must have 2 entries "
                    "[negative, positive]"
                )
            pos_weight = weight[1:] / weight[0]
        target = target.reshape(logits.shape)
        valid = target != self.ce.ignore_index
        if not bool(valid.any()):
            return logits.sum() * 0.0
        return F.binary_cross_entropy_with_logits(
            logits[valid].float(), target[valid].float(), pos_weight=pos_weight
        )


class FocalLoss(nn.Module):
    """Multi-class focal loss ``-alpha[y] (1 - p_y)^gamma log p_y``, averaged over
    non-ignored samples/pixels.

    Written by hand because torchvision only ships the sigmoid (binary) variant and MONAI
    is not a runtime dependency. With ``gamma=0`` and no ``alpha`` it equals cross-entropy;
    it equals MONAI's ``FocalLoss(use_softmax=True, to_onehot_y=True, weight=alpha)``
    summed over channels and averaged over valid pixels (MONAI's plain ``"mean"`` also
    divides by the number of classes), and for two classes with logits ``[0, z]`` and
    ``alpha=[1 - a, a]`` it equals ``torchvision.ops.sigmoid_focal_loss(z, y, a, gamma)``.
    """

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        alpha: Any = None,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"focal loss: gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        self.ignore_index = _IGNORE_DEFAULT if ignore_index is None else ignore_index
        self.register_buffer("alpha", _as_weight_tensor(alpha))

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if target.dim() == logits.dim():
            target = target.squeeze(1)
        target = target.long()
        valid = target != self.ignore_index
        safe = torch.where(valid, target, torch.zeros_like(target))
        logp = logits.float().log_softmax(dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
        loss = -((1 - logp.exp()) ** self.gamma) * logp
        if self.alpha is not None:
            _check_weights_match(self.alpha, logits.shape[1], "focal loss (alpha)")
            loss = loss * self.alpha[safe]
        loss = loss[valid]
        return loss.mean() if loss.numel() else logits.sum() * 0.0


class BinaryCrossEntropyLoss(nn.Module):
    """Binary cross-entropy on logits; targets may be ``[B]``, ``[B, 1]`` or
    ``[B, 1, H, W]``/``[B, H, W]`` of 0/1. A class-weight pair ``[w0, w1]`` becomes
    ``pos_weight = w1 / w0``."""

    def __init__(self, *, class_weights: Any = None, pos_weight: float | None = None) -> None:
        super().__init__()
        w = _as_weight_tensor(class_weights)
        if pos_weight is None and w is not None:
            if w.numel() != 2:
                raise ConfigError(
                    "bce loss: class_weights must have 2 entries [negative, positive]"
                )
            pos_weight = float(w[1] / w[0])
        self.register_buffer(
            "pos_weight", None if pos_weight is None else torch.tensor([float(pos_weight)])
        )

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if logits.dim() > 1 and logits.shape[1] != 1:
            raise ConfigError(
                f"bce loss expects one output channel, got logits of shape {tuple(logits.shape)}; "
                "use 'cross_entropy' for several classes"
            )
        target = target.reshape(logits.shape).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight)


class _CallableLoss(nn.Module):
    """Wraps a plain loss function so that it fits in an ``nn.ModuleDict``."""

    def __init__(self, fn: Callable[..., Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.fn(logits, target)


class MultitaskLoss(nn.Module):
    """Sum of per-head losses for a multitask model.

    ``outputs`` is the model's dict (``classification``, ``segmentation``); the
    batch supplies targets under ``label`` and ``mask``. A head's loss counts only
    when both its output and its target are present, so batches with labels only
    (or masks only) train the matching head. ``last_parts`` keeps the detached
    per-head values of the latest call for logging.
    """

    TARGET_KEYS = {"classification": "label", "segmentation": "mask"}

    def __init__(
        self,
        losses: Mapping[str, nn.Module],
        weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        unknown = set(losses) - set(self.TARGET_KEYS)
        if unknown:
            raise ConfigError(
                f"MultitaskLoss: unknown head(s) {sorted(unknown)}; "
                f"expected {sorted(self.TARGET_KEYS)}"
            )
        self.losses = nn.ModuleDict(
            {k: v if isinstance(v, nn.Module) else _CallableLoss(v) for k, v in losses.items()}
        )
        self.weights = {k: float((weights or {}).get(k, 1.0)) for k in losses}
        self.last_parts: dict[str, float] = {}

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> Tensor:
        total: Tensor | None = None
        parts: dict[str, float] = {}
        for head, loss_fn in self.losses.items():
            key = self.TARGET_KEYS[head]
            if head not in outputs or key not in batch or batch[key] is None:
                continue
            value = loss_fn(outputs[head], batch[key])
            parts[head] = float(value.detach())
            total = (
                self.weights[head] * value if total is None else total + self.weights[head] * value
            )
        if total is None:
            raise ConfigError(
                "MultitaskLoss: the batch has none of the targets "
                f"{[self.TARGET_KEYS[h] for h in self.losses]} for outputs {sorted(outputs)}"
            )
        self.last_parts = parts
        return total


# -- registry ---------------------------------------------------------------------------
@LOSSES.register("cross_entropy", aliases=("ce", "crossentropy"))
def _cross_entropy(
    *, class_weights: Any = None, label_smoothing: float = 0.0, ignore_index: int | None = None
) -> nn.Module:
    return CrossEntropyLoss(
        weight=_as_weight_tensor(class_weights),
        label_smoothing=label_smoothing,
        ignore_index=_IGNORE_DEFAULT if ignore_index is None else ignore_index,
    )


@LOSSES.register("codavision", aliases=("coda", "codavision_wce"))
def _codavision(
    *, class_weights: Any = None, ignore_index: int | None = None, **kw: Any
) -> nn.Module:
    return CODAvisionLoss(class_weights, ignore_index=ignore_index, **kw)


@LOSSES.register("dice")
def _dice(*, class_weights: Any = None, ignore_index: int | None = None, **kw: Any) -> nn.Module:
    return DiceLoss(ignore_index=ignore_index, class_weights=class_weights, **kw)


@LOSSES.register("ce_dice", aliases=("dice_ce", "ce+dice"))
def _ce_dice(
    *,
    class_weights: Any = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    **kw: Any,
) -> nn.Module:
    return CEDiceLoss(
        class_weights=class_weights,
        label_smoothing=label_smoothing,
        ignore_index=ignore_index,
        **kw,
    )


@LOSSES.register("focal", aliases=("focal_loss",))
def _focal(*, class_weights: Any = None, ignore_index: int | None = None, **kw: Any) -> nn.Module:
    kw.setdefault("alpha", class_weights)
    return FocalLoss(ignore_index=ignore_index, **kw)


@LOSSES.register("bce", aliases=("binary_cross_entropy", "bce_with_logits"))
def _bce(*, class_weights: Any = None, **kw: Any) -> nn.Module:
    return BinaryCrossEntropyLoss(class_weights=class_weights, **kw)


def list_losses(pattern: str | None = None) -> list[str]:
    """Registered loss names matching the wildcard ``pattern``."""
    return LOSSES.list(pattern)


def _build_one(
    name: str | nn.Module | Callable[..., Tensor],
    *,
    class_weights: Any,
    label_smoothing: float,
    ignore_index: int | None,
    kw: dict[str, Any],
) -> nn.Module | Callable[..., Tensor]:
    if isinstance(name, nn.Module) or (callable(name) and not isinstance(name, str)):
        return name
    factory = LOSSES.get(name)
    kwargs: dict[str, Any] = dict(kw)
    kwargs["class_weights"] = class_weights
    if ignore_index is not None:
        kwargs["ignore_index"] = ignore_index
    if label_smoothing:
        if LOSSES.canonical(name) not in ("cross_entropy", "ce_dice"):
            raise ConfigError(
                f"label_smoothing is supported by 'cross_entropy' and 'ce_dice', not {name!r}"
            )
        kwargs["label_smoothing"] = label_smoothing
    if LOSSES.canonical(name) == "bce":
        kwargs.pop("ignore_index", None)
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"loss {name!r}: bad option ({exc})") from exc


def build_loss(
    name: str | nn.Module | Callable[..., Tensor] | None,
    task: str,
    *,
    class_weights: Any = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    **kw: Any,
) -> nn.Module | Callable[..., Tensor]:
    """Build the loss called ``name`` for ``task`` (``None`` = the task's default).

    An ``nn.Module`` or callable is returned unchanged. For ``task="multitask"``
    the result is a :class:`MultitaskLoss`; ``name`` (or ``classification_loss`` /
    ``segmentation_loss`` keywords) picks each head's loss, ``class_weights`` may be
    a dict ``{"classification": [...], "segmentation": [...]}`` and
    ``task_weights={"classification": 1.0, "segmentation": 1.0}`` scales the heads.
    Extra keywords go to the loss (e.g. ``gamma`` for focal, ``smooth`` for dice).
    """
    task = str(task).lower()
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if task == "multitask":
        if isinstance(name, nn.Module) or (callable(name) and not isinstance(name, str)):
            return name
        heads = {
            "classification": kw.pop("classification_loss", None) or name or "cross_entropy",
            "segmentation": kw.pop("segmentation_loss", None) or name or "cross_entropy",
        }
        task_weights = kw.pop("task_weights", None)
        cw = class_weights if isinstance(class_weights, Mapping) else {}
        if class_weights is not None and not isinstance(class_weights, Mapping):
            raise ConfigError(
                "multitask class_weights must be a dict "
                "{'classification': [...], 'segmentation': [...]}"
            )
        losses = {
            head: _build_one(
                loss_name,
                class_weights=cw.get(head),
                label_smoothing=label_smoothing,
                ignore_index=ignore_index if head == "segmentation" else None,
                kw=dict(kw),
            )
            for head, loss_name in heads.items()
        }
        return MultitaskLoss(losses, weights=task_weights)
    return _build_one(
        name or DEFAULT_LOSS[task],
        class_weights=class_weights,
        label_smoothing=label_smoothing,
        ignore_index=ignore_index,
        kw=kw,
    )
