"""Joint image + mask augmentation on torchvision ``transforms.v2`` and batch mixing.

A sample is a dict ``{"image": tv_tensors.Image, "mask": tv_tensors.Mask, "label": int}``;
v2 transforms move the image and the mask together (masks always with
nearest-neighbour interpolation), and photometric transforms (colour jitter,
blur, normalisation) touch the image only. Presets:

>>> from visionforge.data.transforms import train_transforms, eval_transforms
>>> t = train_transforms("segmentation", image_size=64)
>>> e = eval_transforms("classification", image_size=64)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from visionforge.errors import ConfigError
from visionforge.models.contract import IMAGENET_MEAN, IMAGENET_STD, InputContract
from visionforge.registry import TRANSFORMS

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RandomRot90",
    "ContractNormalize",
    "train_transforms",
    "eval_transforms",
    "MixUp",
    "CutMix",
    "MixUpOrCutMix",
    "mixing_collate",
    "to_sample",
    "finish_sample",
]

_TASKS = ("classification", "segmentation", "multitask")


class RandomRot90(v2.Transform):
    """Rotate image and mask together by a random multiple of 90 degrees (exact, no interpolation).

    torchvision v2 has no rot90; ``RandomRotation`` would interpolate and crop corners.
    """

    def __init__(self, p: float = 1.0) -> None:
        super().__init__()
        self.p = p

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        if torch.rand(()) >= self.p:
            return {"k": 0}
        return {"k": int(torch.randint(0, 4, ()))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        k = params["k"]
        if k == 0 or not isinstance(inpt, tv_tensors.Image | tv_tensors.Mask):
            return inpt
        return tv_tensors.wrap(
            torch.rot90(inpt.as_subclass(torch.Tensor), k, dims=(-2, -1)), like=inpt
        )


class ContractNormalize(v2.Transform):
    """Turn a float RGB image in ``[0, 1]`` into what a model expects, by its ``InputContract``.

    Scales to ``contract.input_range``, reverses the channels for BGR models and applies
    the contract's mean/std (see :meth:`InputContract.apply`). Masks, labels and other
    entries of a sample pass through unchanged.
    """

    def __init__(self, contract: InputContract) -> None:
        super().__init__()
        self.contract = contract

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask) or not isinstance(inpt, torch.Tensor):
            return inpt
        out = self.contract.apply(inpt.as_subclass(torch.Tensor))
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out

    def extra_repr(self) -> str:
        c = self.contract
        return f"input_range={c.input_range}, channel_order={c.channel_order}, mean={c.mean}, std={c.std}"


def _interpolation(contract: InputContract | None) -> v2.InterpolationMode:
    name = contract.interpolation if contract is not None else "bilinear"
    return v2.InterpolationMode(name)


def _size(image_size: int | Sequence[int]) -> list[int]:
    return [image_size, image_size] if isinstance(image_size, int) else list(image_size)


def _check_task(task: str) -> str:
    if task not in _TASKS:
        raise ConfigError(
            f"unknown task {task!r} for transforms; choose one of {', '.join(_TASKS)}"
        )
    return task


def _finish(
    mean: Sequence[float] | None, std: Sequence[float] | None, contract: InputContract | None
) -> list[Any]:
    out: list[Any] = [v2.ToDtype(torch.float32, scale=True)]
    if contract is not None:
        if mean is not None or std is not None:
            raise ConfigError("give an input contract or mean/std, not both")
        out.append(ContractNormalize(contract))
    elif mean is not None or std is not None:
        if mean is None or std is None:
            raise ConfigError("give both mean and std for normalisation (or neither)")
        out.append(v2.Normalize(list(mean), list(std)))
    return out


@TRANSFORMS.register("train_transforms", aliases=("train",))
def train_transforms(
    task: str = "classification",
    image_size: int | Sequence[int] = 224,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    hflip: float = 0.5,
    vflip: float | None = None,
    rot90: bool | None = None,
    rotation: float = 10.0,
    scale: tuple[float, float] = (0.8, 1.2),
    color_jitter: float = 0.2,
    blur: float = 0.1,
    ignore_index: int = 0,
    contract: InputContract | None = None,
) -> v2.Compose:
    """Training augmentation for ``task``; output image float32 (normalised if mean/std given).

    With ``contract`` (a model's :class:`InputContract`) the image is resized with the
    contract's interpolation and finished by :class:`ContractNormalize` instead of mean/std.

    Classification: random resized crop (area ``scale`` clipped to <= 1), flips,
    small rotation, colour jitter, blur. Segmentation/multitask additionally use
    vertical flips and rot90 by default (orientation rarely carries meaning in
    microscopy/remote sensing), and scale through an affine transform so the mask
    follows exactly; pixels that enter from outside are filled with 0 in the
    image and ``ignore_index`` in the mask.
    """
    _check_task(task)
    size = _size(image_size)
    dense = task != "classification"
    vflip = (0.5 if dense else 0.0) if vflip is None else vflip
    rot90 = dense if rot90 is None else rot90
    interp = _interpolation(contract)
    ops: list[Any] = []
    if dense:
        # first: later ops then work on few pixels
        ops.append(v2.Resize(size, interpolation=interp, antialias=True))
        if rot90:
            ops.append(RandomRot90())
            if size[0] != size[1]:  # rot90 of a non-square size swaps height and width
                ops.append(v2.Resize(size, interpolation=interp, antialias=True))
    else:
        ops.append(v2.RandomResizedCrop(size, scale=(min(scale[0], 1.0) ** 2, 1.0),
                                        interpolation=interp, antialias=True))
    if rotation or (dense and tuple(scale) != (1.0, 1.0)):
        fill = {tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}
        ops.append(v2.RandomAffine(degrees=rotation, scale=scale if dense else None, fill=fill))
    if hflip:
        ops.append(v2.RandomHorizontalFlip(hflip))
    if vflip:
        ops.append(v2.RandomVerticalFlip(vflip))
    if color_jitter:
        cj = color_jitter
        ops.append(v2.ColorJitter(brightness=cj, contrast=cj, saturation=cj, hue=min(cj / 4, 0.5)))
    if blur:
        ops.append(v2.RandomApply([v2.GaussianBlur(kernel_size=3, sigma=(0.1, 1.5))], p=blur))
    return v2.Compose(ops + _finish(mean, std, contract))


@TRANSFORMS.register("eval_transforms", aliases=("eval", "val_transforms"))
def eval_transforms(
    task: str = "classification",
    image_size: int | Sequence[int] | None = 224,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    contract: InputContract | None = None,
) -> v2.Compose:
    """Deterministic evaluation transform: resize (masks nearest), float32, then the model's
    ``contract`` (:class:`ContractNormalize`) or the optional mean/std normalisation."""
    _check_task(task)
    ops: list[Any] = []
    if image_size is not None:
        ops.append(v2.Resize(_size(image_size), interpolation=_interpolation(contract),
                             antialias=True))
    return v2.Compose(ops + _finish(mean, std, contract))


class _BatchMixer:
    """Applies a v2 batch transform to a dict batch or an ``(images, labels, *rest)`` tuple.

    Labels come back as soft float targets ``[B, num_classes]``.
    """

    def __init__(self, transform: v2.Transform, num_classes: int) -> None:
        if num_classes < 2:
            raise ConfigError("MixUp/CutMix need num_classes >= 2")
        self.num_classes = num_classes
        self._t = transform

    def __call__(self, batch: Any) -> Any:
        if isinstance(batch, dict):
            images, labels = self._t(batch["image"], batch["label"])
            return {**batch, "image": images.as_subclass(torch.Tensor), "label": labels}
        images, labels, *rest = batch
        images, labels = self._t(images, labels)
        return (images.as_subclass(torch.Tensor), labels, *rest)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._t!r})"


@TRANSFORMS.register("mixup")
class MixUp(_BatchMixer):
    """MixUp batch transform (torchvision ``v2.MixUp``) for dict or tuple batches."""

    def __init__(self, num_classes: int, alpha: float = 0.2) -> None:
        super().__init__(v2.MixUp(alpha=alpha, num_classes=num_classes), num_classes)


@TRANSFORMS.register("cutmix")
class CutMix(_BatchMixer):
    """CutMix batch transform (torchvision ``v2.CutMix``) for dict or tuple batches."""

    def __init__(self, num_classes: int, alpha: float = 1.0) -> None:
        super().__init__(v2.CutMix(alpha=alpha, num_classes=num_classes), num_classes)


@TRANSFORMS.register("mixup_or_cutmix", aliases=("mixup_cutmix",))
class MixUpOrCutMix(_BatchMixer):
    """Randomly MixUp or CutMix each batch (as in the torchvision reference recipes)."""

    def __init__(
        self, num_classes: int, mixup_alpha: float = 0.2, cutmix_alpha: float = 1.0
    ) -> None:
        t = v2.RandomChoice(
            [
                v2.MixUp(alpha=mixup_alpha, num_classes=num_classes),
                v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes),
            ]
        )
        super().__init__(t, num_classes)


class mixing_collate:  # noqa: N801 - used like a function: collate_fn=mixing_collate(mixer)
    """A DataLoader ``collate_fn`` that collates with the default and then applies ``mixer``.

    A class rather than a closure so that it pickles for worker processes.
    """

    def __init__(self, mixer: Any) -> None:
        self.mixer = mixer

    def __call__(self, samples: list[Any]) -> Any:
        from torch.utils.data import default_collate

        return self.mixer(default_collate(samples))


def to_sample(image: Any, mask: Any = None, **extra: Any) -> dict[str, Any]:
    """Wrap tensors as tv_tensors in a sample dict so v2 transforms treat them jointly."""
    sample: dict[str, Any] = {"image": tv_tensors.Image(image), **extra}
    if mask is not None:
        sample["mask"] = tv_tensors.Mask(mask)
    return sample


def finish_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """Make a transformed sample collate-ready: float32 image, int64 mask and label tensors."""
    from visionforge.data.images import to_float_image

    out = dict(sample)
    out["image"] = to_float_image(sample["image"])
    if "mask" in sample:
        out["mask"] = torch.as_tensor(sample["mask"]).as_subclass(torch.Tensor).long()
        if out["mask"].ndim == 3 and out["mask"].shape[0] == 1:
            out["mask"] = out["mask"][0]
    if "label" in sample and not isinstance(sample["label"], torch.Tensor | float):
        out["label"] = torch.tensor(int(sample["label"]), dtype=torch.int64)
    return out


def sample_tuple(sample: dict[str, Any]) -> tuple[Any, Any]:
    """``(image, target)`` of a finished sample: the mask if it has one, else the label.

    For code written as ``images, labels = next(iter(loader))`` (``return_tuple=True`` of the
    datasets); the engine takes either form.
    """
    target = sample.get("mask", sample.get("label"))
    if target is None:
        raise KeyError(f"sample has neither 'mask' nor 'label' (keys {sorted(sample)})")
    return sample["image"], target
