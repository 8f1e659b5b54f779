"""Child process for the 2-process slide segmentation test (run as a script, not collected).

Also holds ``make_model_dir`` (the tiny model the slide tests use).

usage: python slide_segment_child.py MODEL_DIR OUT_DIR DEVICES SLIDE...
Runs segment_slides with ``devices`` CPU processes (gloo) and writes each rank's result
statuses to OUT_DIR/rank<r>.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from visionforge.slides.segment import segment_slides


def make_model_dir(path: Path, slide_mpp: float | None = 4.0, extra: dict | None = None) -> Path:
    """A tiny untrained U-Net (64² input) whose label map depends on the image."""
    import torch

    from visionforge import create_model
    from visionforge.models.model_dir import save_model_dir
    from visionforge.slides.synthetic import IHC_CLASSES

    torch.manual_seed(0)
    net = create_model("unet", backbone="resnet10t", num_classes=3,
                       decoder_channels=[16, 16, 8, 8, 8])
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():  # make the untrained logits depend on the input
        last.weight.mul_(30)
        last.bias.zero_()
    extra = {**({"slide_mpp": slide_mpp} if slide_mpp else {}), **(extra or {})}
    return save_model_dir(net, path, task="segmentation", class_names=list(IHC_CLASSES),
                          input_size=[3, 64, 64], extra=extra or None)


def main() -> None:
    model_dir, out, devices, slides = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    torch.set_num_threads(1)
    kw = {"strategy": "ddp"} if devices > 1 else {}
    results = segment_slides(model_dir, slides, out, devices=devices, backend="torch", **kw)
    rank = os.environ.get("LOCAL_RANK", "0")
    (out / f"rank{rank}.json").write_text(json.dumps({r.slide.stem: r.status for r in results}))


if __name__ == "__main__":
    main()
