"""Sample grids show images in their true colours: the model's input contract is undone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visionforge.evaluation import Evaluator, plots
from visionforge.models.contract import IMAGENET, RAW_255, UNIT_RANGE, InputContract

BGR_255 = InputContract(
    input_range=(0.0, 255.0), mean=(104.0, 117.0, 123.0), std=(1.0, 1.0, 1.0), channel_order="BGR"
)
CONTRACTS = {"imagenet": IMAGENET, "raw_255": RAW_255, "unit": UNIT_RANGE, "bgr_255": BGR_255}


def _known_image() -> torch.Tensor:
    """A [3, 8, 8] RGB image in [0, 1]: left half pure red, right half a dim green-blue."""
    img = torch.zeros(3, 8, 8)
    img[0, :, :4] = 1.0
    img[1, :, 4:], img[2, :, 4:] = 0.3, 0.6
    return img


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_display_image_inverts_each_contract(name):
    contract = CONTRACTS[name]
    x01 = _known_image()
    model_input = contract.apply(x01)
    shown = plots.display_image(model_input, contract)
    assert shown.shape == (8, 8, 3)
    np.testing.assert_allclose(shown, x01.permute(1, 2, 0).numpy(), atol=1e-5)
    assert tuple(shown[0, 0]) == pytest.approx((1.0, 0.0, 0.0), abs=1e-5)  # red stays red


def test_display_image_accepts_the_model_json_form():
    x01 = _known_image()
    shown = plots.display_image(BGR_255.apply(x01).numpy(), BGR_255.to_dict())
    np.testing.assert_allclose(shown, x01.permute(1, 2, 0).numpy(), atol=1e-5)


def test_display_image_without_contract_rescales_min_max():
    x01 = _known_image()
    shown = plots.display_image(IMAGENET.apply(x01))
    assert shown.min() == pytest.approx(0.0) and shown.max() == pytest.approx(1.0)
    # min/max scaling of normalised input does not give back the true colours
    assert not np.allclose(shown, x01.permute(1, 2, 0).numpy(), atol=0.05)


def test_display_image_falls_back_when_contract_does_not_fit():
    grey = torch.rand(1, 8, 8) * 4 - 2  # one channel, but the contract has 3 means
    shown = plots.display_image(grey, IMAGENET)
    assert shown.shape == (8, 8, 3) and 0.0 <= shown.min() and shown.max() <= 1.0


def test_evaluator_sample_grid_shows_true_colours(tmp_path, tiny, monkeypatch):
    contract = BGR_255
    x01 = torch.stack([_known_image(), _known_image().flip(-1)])
    batches = [{"image": contract.apply(x01), "label": torch.tensor([0, 1])}]
    shown: list[np.ndarray] = []
    real = plots.display_image
    monkeypatch.setattr(
        plots, "display_image", lambda img, c=None: shown.append(real(img, c)) or shown[-1]
    )
    ev = Evaluator(tiny.Classifier(), contract=contract, num_samples=2)
    ev.evaluate(batches)
    written = ev.write_plots(tmp_path)
    assert written["sample_predictions"].is_file()
    assert len(shown) == 2
    for img, want in zip(shown, x01, strict=True):
        np.testing.assert_allclose(img, want.permute(1, 2, 0).numpy(), atol=1e-5)


def test_evaluator_takes_the_contract_of_visionforge_models(tiny):
    from visionforge.models import create_model
    from visionforge.models.spec import model_contract

    model = create_model("small_cnn", num_classes=2)
    assert Evaluator(model).contract == model_contract(model)
    assert Evaluator(tiny.Classifier()).contract is None  # foreign module: nothing to undo
