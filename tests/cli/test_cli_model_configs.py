"""Every shipped model config (conf/model/*.yaml) names a model that can be built."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from visionforge.config.loader import CONF_DIR, compose_config, group_options
from visionforge.models import create_model, list_models

FAMILIES = ["convnext", "efficientnetv2", "ghostnetv2", "resnet_mish", "cspdarknet", "inception_v4",
            "vit_hybrid", "swin", "coatnet", "regnet", "densenet_hybrid", "deit", "maxvit",
            "mobileone", "dynamic_conv"]


def test_model_group_covers_the_promised_families():
    options = set(group_options("model"))
    assert set(FAMILIES) <= options
    assert {"resnet", "vit", "unet", "deeplabv3plus", "multitask", "deepepicnn"} <= options


@pytest.mark.parametrize("option", [o for o in group_options("model") if o != "auto"])
def test_model_config_builds(option):
    cfg = OmegaConf.load(CONF_DIR / "model" / f"{option}.yaml")
    kwargs = dict(OmegaConf.to_container(cfg.kwargs))
    name = cfg.name
    if name in list_models() or name.startswith("custom_") or name == "small_cnn":
        if name == "multitask":
            kwargs["num_classes_segmentation"] = 2
        elif name not in ("deeplabv3plus_codavision",):
            kwargs.setdefault("num_classes", 2)
    else:
        kwargs["num_classes"] = 2
    with torch.device("meta"):  # construction only: no memory, no weights
        model = create_model(name, **kwargs)
    assert sum(p.numel() for p in model.parameters()) > 0
    # selecting the group option on the command line picks this file
    assert compose_config([f"model={option}"], env={}).cfg.model.name == name
