"""Parts the disease pipeline adds to the library: Inception's auxiliary-logit loss (0.4),
the CoAtNet/MaxViT "enhanced" stage layouts of its document, export-format parsing."""

from __future__ import annotations

import pytest
import torch

from visionforge.models import create_model


def test_inception_aux_logits_train_eval_and_verify():
    from visionforge.models.verify import verify

    model = create_model("custom_inception_v4", size="tiny", num_classes=3, aux_logits=True)
    x = torch.rand(2, 3, 32, 32)
    out = model.train()(x)
    assert out.logits.shape == (2, 3) and out.aux_logits.shape == (2, 3)
    assert model.eval()(x).shape == (2, 3)  # evaluation and export see one output
    assert verify(model, (3, 32, 32), 3).passed


def test_aux_loss_adds_point_four_of_the_aux_head_loss():
    from visionforge.engine.aux_loss import AUX_LOSS_WEIGHT, aux_weighted_loss
    from visionforge.engine.module import TaskModule
    from visionforge.models.classification.inception_v4 import AuxLogits

    ce = torch.nn.functional.cross_entropy
    logits, aux, y = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    expected = ce(logits, y) + 0.4 * ce(aux, y)
    assert AUX_LOSS_WEIGHT == 0.4
    assert torch.allclose(aux_weighted_loss(ce, AuxLogits(logits, aux), y), expected)
    assert torch.allclose(aux_weighted_loss(ce, logits, y), ce(logits, y))
    module = TaskModule(torch.nn.Identity(), task="classification", metrics=False)
    assert torch.allclose(module._loss(AuxLogits(logits, aux), {"label": y}), expected)


def test_pipeline_trains_inception_with_its_aux_head(tmp_path):
    from visionforge.workflows.pipeline_settings import PipelineSettings
    from visionforge.workflows.pipeline_steps import BackboneRun

    run = BackboneRun("custom_inception_v4", PipelineSettings(size="tiny"), [], tmp_path)
    assert "model.kwargs.aux_logits=true" in run._config_overrides()
    other = BackboneRun("custom_convnext", PipelineSettings(), [], tmp_path)
    assert not any("aux_logits" in o for o in other._config_overrides())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "depths", "stage2"),
    [
        ("custom_coatnet", [5, 10, 12], ["MbConvBlock"] * 6 + ["TransformerBlock2d"] * 4),
        ("custom_maxvit", [6, 11, 10], ["MbConvBlock"] * 8 + ["MaxxVitBlock"] * 3),
    ],
)
def test_enhanced_stage_layouts_of_the_document(name, depths, stage2):
    model = create_model(name, size="enhanced", num_classes=3, img_size=32)
    stages = model.backbone.stages
    assert [len(s.blocks) for s in stages] == depths
    assert [type(b).__name__ for b in stages[1].blocks] == stage2
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        f = model.backbone.stem(x)
        sizes = [f.shape[-1]]
        for s in stages:
            f = s(f)
            sizes.append((f.shape[1], f.shape[-1]))
    # stem /2, then stages at /4, /8, /16 (56, 28, 14 px at 224) with 256, 512, 768 channels
    assert sizes == [16, (256, 8), (512, 4), (768, 2)]
    ls = [m for m in stages[2].modules() if type(m).__name__.startswith("LayerScale")]
    assert ls and torch.allclose(ls[0].gamma, torch.full_like(ls[0].gamma, 0.1))
    assert model.eval()(x).shape == (1, 3)


def test_formats_all_stays_all():
    from visionforge.workflows.pipeline_settings import parse_pipeline_args

    assert parse_pipeline_args(["formats=all"])[0].formats == ["all"]
    assert parse_pipeline_args(["formats=[onnx,tflite]"])[0].formats == ["onnx", "tflite"]
    assert parse_pipeline_args([])[0].formats == ["all"]
