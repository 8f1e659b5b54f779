"""Make the trained IHC DeepLabV3+ model dir and its INT8 calibration/validation folders.

Used for the goal figure of ``benchmarks/predict_cpu.py``: a DeepLabV3+ (CODAvision spec)
trained on the IHC demo tiles (``visionforge train`` below), saved as a model dir that runs
at 512x512 (the network is fully convolutional), plus:

* validation: scikit-image's ``ihc.png`` (512x512) and its flips, with the demo's rgb2hed
  reference labels (``images/`` + ``masks/``), for the INT8 mIoU drop;
* calibration: its 90/270-degree rotations and transposes (other orientations than the
  validation images; the demo has only this one real IHC image).

    visionforge train data.root=IHC_TILES model=deeplabv3plus_codavision data.image_size=64 \\
        data.batch_size=8 trainer.max_epochs=4 optimizer.lr=0.002 name=ihc_dlv3 data.num_classes=3
    python benchmarks/ihc_deeplab_model.py runs/segmentation/ihc_dlv3/checkpoints/best.ckpt OUT
    python benchmarks/predict_cpu.py --model-dir OUT/model --calibration OUT/calibration \\
        --validation OUT/validation
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkpoint", help="the training run's checkpoints/best.ckpt")
    ap.add_argument("out", help="folder to write model/, calibration/, validation/ into")
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()

    from PIL import Image
    from skimage import data

    from visionforge.io import model_state_from_checkpoint
    from visionforge.models import create_model, save_model_dir
    from visionforge.workflows.demo import IHC_CLASSES, ihc_reference_labels

    out = Path(args.out)
    model = create_model("deeplabv3plus_codavision", num_classes=len(IHC_CLASSES))
    model.load_state_dict(model_state_from_checkpoint(args.checkpoint))
    save_model_dir(
        model.eval(),
        out / "model",
        task="segmentation",
        input_size=[3, args.size, args.size],
        class_names=IHC_CLASSES,
    )
    img = data.immunohistochemistry()
    lab = ihc_reference_labels(img).astype(np.uint8)
    val = {
        "orig": (img, lab),
        "hflip": (img[:, ::-1], lab[:, ::-1]),
        "vflip": (img[::-1], lab[::-1]),
        "rot180": (img[::-1, ::-1], lab[::-1, ::-1]),
    }
    cal = {
        "rot90": np.rot90(img),
        "rot270": np.rot90(img, 3),
        "transpose": img.transpose(1, 0, 2),
        "anti": np.rot90(img, 2).transpose(1, 0, 2),
    }
    for sub in ("validation/images", "validation/masks", "calibration"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for k, (i, lb) in val.items():
        Image.fromarray(np.ascontiguousarray(i)).save(out / "validation/images" / f"{k}.png")
        Image.fromarray(np.ascontiguousarray(lb)).save(out / "validation/masks" / f"{k}.png")
    for k, i in cal.items():
        Image.fromarray(np.ascontiguousarray(i)).save(out / "calibration" / f"{k}.png")
    print(
        f"model dir: {out / 'model'}; calibration: {out / 'calibration'}; validation: "
        f"{out / 'validation'}"
    )


if __name__ == "__main__":
    main()
