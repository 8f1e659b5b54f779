"""Turn the ``data`` section of a run config into train/val/test datasets.

A thin adapter: ``data.kind`` names a datamodule of :data:`visionforge.registry.DATAMODULES`
(``folder`` = ``image_folder``, ``osdb`` = ``signals`` over OSDB JSON events, ``auto`` =
detected from the layout of ``data.root``); the datamodule scans, splits (seeded,
stratified, or by event for signals) and writes the split manifest ``splits.csv`` into
the run dir; no file is copied. Image transforms follow the model's
:class:`~visionforge.models.contract.InputContract`.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from visionforge.errors import ConfigError, DataError
from visionforge.models.contract import IMAGENET, SIGNAL, UNIT_RANGE, InputContract
from visionforge.workflows.detect import detect_layout

__all__ = [
    "PreparedData",
    "prepare_data",
    "resolve_kind",
    "datamodule_name",
    "default_image_size",
    "build_datamodule",
]

_log = logging.getLogger(__name__)

#: config kinds that are not datamodule names themselves
_KIND_TO_DATAMODULE = {"osdb": "signals"}


@dataclass
class PreparedData:
    """Datasets of one run plus what the model and the model dir need to know."""

    kind: str
    task: str
    train: Dataset
    val: Dataset | None
    test: Dataset | None
    class_names: list[str]
    in_chans: int
    input_size: list[int]
    preprocessing: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)
    datamodule: Any = None
    #: extra facts for model.json (e.g. ``slide_mpp`` of slide tiles)
    model_meta: dict[str, Any] = field(default_factory=dict)


def resolve_kind(dc: Any) -> str:
    """``data.kind``, with ``auto`` replaced by the layout detected under ``data.root``."""
    if dc.kind != "auto":
        return str(dc.kind)
    if dc.root:
        return detect_layout(Path(dc.root).expanduser())
    if dc.images_dir and dc.masks_dir:
        return "segmentation"
    raise ConfigError("no data given: set data.root=PATH (a folder of class folders, "
                      "images/ + masks/, or signal files)")


def datamodule_name(kind: str) -> str:
    """The registered datamodule behind a ``data.kind`` (aliases resolved)."""
    import visionforge.data  # noqa: F401 - registers the built-in datamodules
    from visionforge.registry import DATAMODULES

    name = _KIND_TO_DATAMODULE.get(kind, kind)
    if name not in DATAMODULES:
        hint = DATAMODULES.suggestions(name)
        raise ConfigError(
            f"data.kind={kind!r} is not a registered datamodule"
            + (f"; did you mean {', '.join(hint)}?" if hint else "")
            + f" Choose auto, osdb or one of {', '.join(DATAMODULES.list(include_aliases=True))}"
        )
    return DATAMODULES.canonical(name)


def default_image_size(kind: str) -> int | None:
    """The datamodule's default image side for ``kind`` (``None`` for signals)."""
    from visionforge.registry import DATAMODULES

    return getattr(DATAMODULES.get(datamodule_name(kind)), "default_image_size", None)


def _ratios(splits: Any) -> list[float]:
    ratios = [float(r) for r in splits]
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise ConfigError(f"data.splits must be three non-negative fractions summing to 1, got {ratios}")
    return ratios


def _signal_source(dc: Any, root: Path, kind: str) -> dict[str, Any]:
    """``source``/``source_kind``/``window_kwargs`` of the signals datamodule for ``kind``."""
    from visionforge.data import load_osdb_events

    if kind == "osdb":
        files = sorted(root.glob("*.json")) if root.is_dir() else [root]
        window = {"window": dc.window, "step": dc.step,
                  "normalize": "window" if dc.normalize else None}
        return {"source": load_osdb_events(files), "source_kind": "osdb", "window_kwargs": window}
    files = [p for p in sorted(root.iterdir()) if p.suffix in (".npy", ".npz", ".csv", ".ts")
             and not p.stem.endswith("_labels")] if root.is_dir() else [root]  # labels: a sibling
    if len(files) != 1:
        raise DataError(f"{root}: expected one .npy/.npz/.csv/.ts series file, found "
                        f"{[f.name for f in files]}; point data.root at the file")
    return {"source": files[0], "source_kind": "series"}


def build_datamodule(dc: Any, kind: str, run_dir: Path | None, image_size: int | None,
                     contract: InputContract | None) -> Any:
    """Instantiate the datamodule for ``kind`` from the config keys its constructor accepts."""
    from visionforge.registry import DATAMODULES

    name = datamodule_name(kind)
    cls = DATAMODULES.get(name)
    root = Path(dc.root).expanduser() if dc.root else None
    if root is not None and not root.exists():
        raise DataError(f"data.root {root} does not exist; point data.root at your dataset folder")
    if root is None and not (dc.images_dir and dc.masks_dir):
        raise ConfigError(f"data.kind={kind} needs data.root=PATH (visionforge never downloads "
                          "datasets)")
    ratios = _ratios(dc.splits)
    options: dict[str, Any] = {
        "root": root, "image_size": image_size, "contract": contract, "augment": dc.augment,
        "ratios": ratios, "seed": dc.seed, "num_classes": dc.num_classes,
        "images_dir": dc.images_dir, "masks_dir": dc.masks_dir, "batch_size": dc.batch_size,
        "channels": dc.channels, "on_bad_image": dc.on_bad_image,
        "cache": getattr(dc, "cache", "none"), "cache_dir": getattr(dc, "cache_dir", None),
        "dataset_kwargs": {"channels": dc.channels, "on_bad_image": dc.on_bad_image},
        # a fixed test set (CIFAR): data.splits' val share of what is not test
        "val_fraction": ratios[1] / max(ratios[0] + ratios[1], 1e-9),
        "manifest_out": run_dir / "splits.csv" if run_dir is not None else None,
    }
    if getattr(cls, "task", None) == "signal":
        options.update(_signal_source(dc, root, kind))
    params = inspect.signature(cls).parameters
    named = {k for k, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    dm = cls(**{k: v for k, v in options.items() if k in named})
    dm.setup("fit")
    return dm


def _input_size(task: str, train: Dataset) -> list[int]:
    sample = train[0]  # type: ignore[index]
    x = sample[0] if task == "signal" else sample["image"]
    return [int(s) for s in x.shape]


def _check_normalize(dc: Any, contract: InputContract, model_name: str | None) -> None:
    if not dc.normalize and contract.normalized:
        _log.warning(
            "data.normalize=false is ignored for images: model %s declares an input contract "
            "with mean/std %s/%s, and its input follows that contract. To feed unnormalised "
            "input, choose a model whose contract has no mean/std (e.g. "
            "model=deeplabv3plus_codavision takes RGB 0-255) or register one with "
            "input_contract=UNIT_RANGE (visionforge.models.contract).",
            model_name or "(this)", contract.mean, contract.std)


def prepare_data(dc: Any, run_dir: Path | None, image_size: int | None = None,
                 contract: InputContract | None = None, *,
                 model_name: str | None = None) -> PreparedData:
    """Build the datasets described by the config's ``data`` section (``dc``).

    ``contract`` is the input contract of the model to train (``contract_for(model_name)``);
    images are resized, scaled and normalised to it. Without one, images get ImageNet
    mean/std (``data.normalize=true``) or stay in [0, 1].
    """
    kind = resolve_kind(dc)
    is_signal = datamodule_name(kind) == "signals"
    if contract is None:
        contract = SIGNAL if is_signal else (IMAGENET if dc.normalize else UNIT_RANGE)
    elif not is_signal:
        _check_normalize(dc, contract, model_name)
    dm = build_datamodule(dc, kind, run_dir, image_size, None if is_signal else contract)
    if dm.train_set is None or len(dm.train_set) == 0:
        raise DataError(f"data.kind={kind}: no training samples found under {dc.root}")
    input_size = _input_size(dm.task, dm.train_set)
    class_names, model_meta = _slide_tiles_facts(dc, list(dm.class_names))
    return PreparedData(
        kind=kind, task=dm.task, train=dm.train_set, val=dm.val_set, test=dm.test_set,
        class_names=class_names, in_chans=input_size[0], input_size=input_size,
        preprocessing=contract.with_size(input_size).to_dict(), summary=dm.summary(),
        datamodule=dm, model_meta=model_meta,
    )


def _slide_tiles_facts(dc: Any, class_names: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Class names and model.json facts of a ``visionforge slides tiles`` folder.

    Its ``tiles.json`` records the working resolution the tiles were cut at; the model must
    see slides at that resolution, so ``slides segment`` reads ``slide_mpp`` from model.json.
    """
    from visionforge.io import read_json

    tiles_json = Path(dc.root).expanduser() / "tiles.json" if dc.root else None
    if tiles_json is None or not tiles_json.is_file():
        return class_names, {}
    facts = read_json(tiles_json)
    names = [str(n) for n in facts.get("class_names") or []]
    meta = {"slide_mpp": facts.get("mpp"), "slide_downsample": facts.get("downsample"),
            "class_colors": facts.get("class_colors"), "tiles": str(tiles_json.parent)}
    if names and len(names) >= len(class_names):
        class_names = names
    return class_names, {k: v for k, v in meta.items() if v is not None}
