"""Every registered model passes the 7 checks at its tiny size; one model per family overfits a batch.

Modelled on timm's tests/test_models.py: the parameter lists come from the
registry itself, so a newly registered model is tested without editing this file.
"""

from __future__ import annotations

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


def test_registry_is_populated():
    assert len(list_models(task="classification")) >= 15
    families = {model_entry(n).metadata["family"] for n in OVERFIT_MODELS}
    classification_families = {
        model_entry(n).metadata["family"] for n in list_models(task="classification")
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
