"""CSPDarkNet family (timm ``cspnet``): pipeline alias ``CustomCSPDarkNet``."""

from __future__ import annotations

from typing import Any

from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


def _csp_darknet(widths: tuple[int, ...], depths: tuple[int, ...], stem: int):
    def build(in_chans: int, **kwargs: Any) -> nn.Module:
        from timm.models.cspnet import CspModelCfg, CspNet, CspStagesCfg, CspStemCfg

        # the stage layout of timm's cspdarknet53 config with fewer blocks and channels
        cfg = CspModelCfg(
            stem=CspStemCfg(out_chs=stem, kernel_size=3, stride=1, pool=""),
            stages=CspStagesCfg(
                depth=depths,
                out_chs=widths,
                stride=2,
                expand_ratio=(2.0,) + (1.0,),
                bottle_ratio=(0.5,) + (1.0,),
                block_ratio=(1.0,) + (0.5,),
                down_growth=True,
                block_type="dark",
            ),
        )
        return CspNet(cfg, in_chans=in_chans, num_classes=0, **kwargs)

    return build


SIZES = {
    "tiny": _csp_darknet((16, 32, 64, 128), (1, 1, 1, 1), 8),
    "small": _csp_darknet((32, 64, 128, 256, 512), (1, 1, 2, 2, 1), 16),
    "base": "cspdarknet53",
}


@register_model(
    "custom_cspdarknet",
    aliases=("CustomCSPDarkNet",),
    task="classification",
    family="cspdarknet",
    test_kwargs={"size": "tiny", "num_classes": 3},
    test_input=(3, 32, 32),
    overfit=True,
    description="CSPDarkNet (timm); sizes tiny/small/base(cspdarknet53)",
    lr_multiplier=1.2,
    scheduler="onecycle",
    kind="cnn",
)
def custom_cspdarknet(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """CSPDarkNet classifier; ``img_size`` is accepted for a uniform signature (CNN)."""
    return build_classifier(
        "custom_cspdarknet",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        **kwargs,
    )
