"""Every registered model passes the 7 checks at its tiny size; one model per family overfits a batch.

Modelled on timm's tests/test_models.py: the parameter lists come from the
registry itself, so a newly registered model is tested without editing this file.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from overfit_helpers import MAX_STEPS, PIXEL_ACC, overfit_entry  # noqa: E402

from visionforge.models.factory import create_model, list_models, model_entry  # noqa: E402
from visionforge.models.verify import CHECKS, verify, verify_entry  # noqa: E402

ALL_MODELS = list_models()
OVERFIT_MODELS = [n for n in ALL_MODELS if model_entry(n).metadata.get("overfit")]

STANDARD_SIZE = 224  # the pipeline's standard input size (data.image_size default)


def _takes(name: str, param: str) -> bool:
    return param in inspect.signature(model_entry(name).obj).parameters


# every classification family has the documented sizes tiny / small / base (docs/models.md)
SIZED_FAMILIES = [n for n in ALL_MODELS if _takes(n, "size")]
SIZES = ("tiny", "small", "base")  # base: build + one batch-1 forward, about 1-4 s each on CPU
OTHER_IMAGE_MODELS = [
    n
    for n in ALL_MODELS
    if n not in SIZED_FAMILIES and model_entry(n).metadata["task"] != "signal"
]


def test_registry_is_populated():
    assert len(list_models(task="classification")) >= 15
    families = {model_entry(n).metadata["family"] for n in OVERFIT_MODELS}
    classification_families = {  # names starting "_" are test-only registrations
        model_entry(n).metadata["family"] for n in list_models(task="classification")
        if not n.startswith("_")
    }
    assert classification_families <= families  # every family has an overfit entry


@pytest.mark.parametrize("name", ALL_MODELS)
def test_verify_tiny_variant(name):
    result = verify_entry(name)
    assert [c.name for c in result.checks] == list(CHECKS), result.summary()
    assert result.passed, result.summary()
    assert result.params_trainable > 0
    assert result.layer_inventory
    as_dict = result.to_dict()
    assert as_dict["passed"] is True and len(as_dict["checks"]) == 7


@pytest.mark.parametrize("name", OVERFIT_MODELS)
def test_overfit_one_batch(name):
    steps, scores = overfit_entry(name)
    assert scores, f"{name}: no evaluation ran"
    assert scores.get("accuracy", 1.0) == 1.0, f"{name}: {scores} after {steps} steps"
    assert scores.get("pixel_accuracy", 1.0) >= PIXEL_ACC, f"{name}: {scores} after {steps} steps"
    assert steps <= MAX_STEPS


def test_timm_name_is_accepted():
    model = create_model("resnet18", num_classes=3)
    assert model.visionforge_spec == {
        "name": "resnet18",
        "source": "timm",
        "kwargs": {"num_classes": 3},
    }
    result = verify(model, (3, 32, 32), num_classes=3)
    assert result.passed, result.summary()
    assert result.task == "classification"
    assert model.eval()(torch.rand(1, 3, 32, 32)).shape == (1, 3)


def _forward_once(model: torch.nn.Module, in_chans: int = 3):
    with torch.no_grad():
        return model.eval()(torch.rand(1, in_chans, STANDARD_SIZE, STANDARD_SIZE))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", SIZED_FAMILIES)
def test_family_size_runs_at_standard_size(name, size):
    """Each size builds and runs at 224 px: tiny/base with img_size=224, small by default.

    ``small`` is what ``create_model(name, num_classes=N)`` builds, so it is built without
    ``img_size``: its default must be the pipeline's standard size (CustomMaxViT's was 256,
    and a 224-px image then failed inside the attention windows).
    """
    kwargs = {"img_size": STANDARD_SIZE} if size != "small" else {}
    model = create_model(name, num_classes=3, size=size, **kwargs)
    assert getattr(model, "img_size", None) in (None, STANDARD_SIZE)
    logits = _forward_once(model)
    assert tuple(logits.shape) == (1, 3) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", OTHER_IMAGE_MODELS)
def test_image_model_runs_at_standard_size(name):
    meta = model_entry(name).metadata
    kwargs = dict(meta["test_kwargs"])
    if _takes(name, "img_size"):
        kwargs["img_size"] = STANDARD_SIZE
    out = _forward_once(create_model(name, **kwargs), in_chans=meta["test_input"][0])
    maps = out.values() if isinstance(out, dict) else out if isinstance(out, list) else [out]
    if meta["task"] == "detection":  # a list of {"boxes", "scores", "labels"} per image
        maps = [v.float() for d in out for v in d.values()]
    for value in maps:
        assert torch.isfinite(value).all()
    if meta["task"] == "segmentation":
        assert tuple(out.shape[-2:]) == (STANDARD_SIZE, STANDARD_SIZE)
    if meta["task"] == "multitask":
        assert tuple(out["segmentation"].shape[-2:]) == (STANDARD_SIZE, STANDARD_SIZE)


def test_size_mismatch_names_the_build_argument():
    """A fixed-size backbone fed another size says which ``img_size`` to build with."""
    model = create_model("custom_swin_transformer", num_classes=3, size="tiny", img_size=32)
    with pytest.raises(RuntimeError, match="build it with img_size=224"):
        _forward_once(model)
