"""The BaseExplainer template: eval mode, target resolution, hook cleanup, registration."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from visionforge.explain import BaseExplainer, Explainer, GradCAM, GradCAMPlusPlus, heatmaps
from visionforge.registry import EXPLAINERS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "explain.md"


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_hooks_removed_and_mode_restored_when_attribute_raises(models, cls):
    model = models.SquareNet().train()
    seen = {}

    class Failing(cls):
        def _attribute(self, inputs, targets, scores, region):
            seen["training"] = self.model.training
            seen["hooks"] = _hook_count(self.model)
            seen["captured"] = set(self.captured)
            raise _Boom("inside _attribute")

    with pytest.raises(_Boom):
        Failing(model).attribute(torch.rand(2, 1, 32, 32))
    # during _attribute: eval mode, the target-layer hook held, its activation captured
    assert seen == {"training": False, "hooks": 1, "captured": {"act"}}
    assert _hook_count(model) == 0
    assert model.training


def test_train_and_eval_mode_restored(models):
    model = models.SquareNet()
    x = torch.rand(2, 1, 32, 32)
    for training in (True, False):
        model.train(training)
        GradCAM(model).attribute(x)
        assert model.training is training
        assert all(m.training is training for m in model.modules())
    assert _hook_count(model) == 0


def test_default_target_is_the_prediction(square_model, models):
    x, _, _ = models.square_images(6, torch.Generator().manual_seed(3))
    pred = square_model(x).argmax(1)
    assert 0 < int(pred.sum()) < len(pred)  # both classes present, so the test can fail
    cam = GradCAMPlusPlus(square_model)
    torch.testing.assert_close(cam.attribute(x), cam.attribute(x, target=pred))
    assert not torch.allclose(cam.attribute(x), cam.attribute(x, target=1 - pred))
    with pytest.raises(ValueError, match=r"target_class must be in \[0, 1\]"):
        cam.attribute(x, target=2)


def test_docs_example_explainer_registers_and_runs(square_model, models):
    text = DOCS.read_text()
    section = text.split("## Add an explainer", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    try:
        exec(compile(code, str(DOCS), "exec"), namespace)  # the docs' own example
        cls = EXPLAINERS.get("gradient_x_input")
        assert cls is namespace["InputXGradient"] and issubclass(cls, BaseExplainer)
        assert cls.name == "input_x_gradient"
        assert namespace["heat"].shape == (2, 16, 16)
        # on the bright-square model it equals input * gradient computed by hand
        x, _, _ = models.square_images(4, torch.Generator().manual_seed(5))
        result = Explainer(square_model, ["input_x_gradient"]).explain(x, target_class=1)
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(square_model(xg)[:, 1].sum(), xg)
        ref = (x * grad).abs().sum(1)
        ref = ref / ref.flatten(1).max(1).values[:, None, None]
        heat = heatmaps(result)["input_x_gradient"]
        assert heat.shape == (4, 32, 32) and not result["skipped"]
        # min-max vs max scaling: equal up to the (near-zero) per-map minimum
        torch.testing.assert_close(heat, ref, atol=0.05, rtol=0)
    finally:
        if "input_x_gradient" in EXPLAINERS:
            EXPLAINERS.remove("input_x_gradient")


def test_explain_cli_gradcam_plus_plus_uses_model_contract(tmp_path, monkeypatch):
    import visionforge.explain as explain_pkg
    from visionforge.cli.main import main
    from visionforge.models import create_model, save_model_dir
    from visionforge.models.contract import InputContract

    contract = InputContract(
        input_range=(0.0, 255.0),
        mean=(100.0, 110.0, 120.0),
        std=(50.0, 60.0, 70.0),
        channel_order="BGR",
    )
    model = create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=2)
    model_dir = save_model_dir(
        model,
        tmp_path / "run" / "model",
        task="classification",
        class_names=["a", "b"],
        input_size=[3, 32, 32],
        preprocessing=contract,
    )
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200  # red only: a BGR model must see it in channel 2
    Image.fromarray(rgb).save(tmp_path / "red.png")
    fed = []

    class Recording(explain_pkg.Explainer):
        def explain(self, inputs, *args, **kwargs):
            fed.append(inputs)
            return super().explain(inputs, *args, **kwargs)

    monkeypatch.setattr(explain_pkg, "Explainer", Recording)
    out = tmp_path / "out"
    argv = ["explain", str(model_dir), str(tmp_path / "red.png"), f"out={out}"]
    assert main([*argv, "methods=gradcam++,grad_cam"]) == 0
    assert (out / "red_gradcam++.png").is_file() and (out / "red_grad_cam.png").is_file()
    expected = torch.tensor([(0 - 100) / 50, (0 - 110) / 60, (200 - 120) / 70])
    torch.testing.assert_close(fed[0][0, :, 5, 5], expected, atol=0.02, rtol=0)
