"""Tiny detector + data for the engine tests, and the DDP child (run as a script, not collected).

usage: python detection_child.py OUT_DIR
  2-process DDP on CPU (gloo), with EMA: each rank writes OUT_DIR/rank<R>.json with its weights hash,
  history and the training images it saw; writes_rank<R>.txt record which rank wrote files.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

TRAIN_IMAGES = 8


def tiny_detector(**overrides) -> nn.Module:
    """FCOS on ResNet-18's layer1/layer2 (strides 4 and 8), 32-wide FPN: 0.73 M parameters."""
    from visionforge.models import create_model

    torch.manual_seed(3)
    kwargs = dict(backbone="resnet18", num_classes=1, fpn_channels=32, head_convs=1,
                  levels=(0, 1), extra_levels=False, encoder_kwargs={"out_indices": (1, 2)},
                  score_thresh=0.0)  # untrained scores are ~0.01: keep them, so mAP > 0
    return create_model("fcos", **{**kwargs, **overrides})


def loaders(batch_size: int = 4) -> tuple[DataLoader, DataLoader]:
    """8 training / 4 validation 64x64 images with 3 random boxes each."""
    from visionforge.data import DummyDetectionDataset

    train = DummyDetectionDataset(TRAIN_IMAGES, 64, boxes_per_image=3, seed=0)
    val = DummyDetectionDataset(4, 64, boxes_per_image=3, seed=1)
    return (DataLoader(train, batch_size=batch_size, shuffle=True, collate_fn=train.collate_fn),
            DataLoader(val, batch_size=4, collate_fn=val.collate_fn))


def weights_digest(model: nn.Module) -> str:
    return hashlib.sha256(b"".join(v.detach().cpu().contiguous().numpy().tobytes()
                                   for v in model.state_dict().values())).hexdigest()


def main() -> None:
    from lightning.pytorch.callbacks import Callback

    from visionforge import Trainer
    from visionforge.engine import checkpoint as ck

    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    rank = os.environ.get("LOCAL_RANK", "0")

    original = ck.AtomicCheckpointIO.save_checkpoint

    def spy_save(self, checkpoint, path, storage_options=None):  # which rank writes files
        with open(out / f"writes_rank{rank}.txt", "a") as fh:
            fh.write(f"{path}\n")
        return original(self, checkpoint, path, storage_options)

    ck.AtomicCheckpointIO.save_checkpoint = spy_save
    import visionforge.io as vio

    original_json = vio.atomic_write_json

    def spy_json(path, *args, **kwargs):  # history.json
        with open(out / f"writes_rank{rank}.txt", "a") as fh:
            fh.write(f"{path}\n")
        return original_json(path, *args, **kwargs)

    vio.atomic_write_json = spy_json

    class Seen(Callback):  # the images this rank's samplers gave it
        train: list[int] = []
        val: list[int] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.train.extend(int(t["image_id"]) for t in batch["targets"])

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args):
            if trainer.current_epoch == 0:
                self.val.extend(int(t["image_id"]) for t in batch["targets"])

    seen = Seen()
    model = tiny_detector()
    train, val = loaders(batch_size=2)
    # validation sharded over the ranks (2 images each): the logged mAP is only that of all
    # 4 images if MeanAveragePrecision gathers the other rank's detections
    val = DataLoader(val.dataset, batch_size=2, collate_fn=val.collate_fn,
                     sampler=DistributedSampler(val.dataset, num_replicas=2, rank=int(rank),
                                                shuffle=False))
    trainer = Trainer(model, strategy="ddp", devices=2, max_epochs=5, lr=3e-3, seed=0,
                      device="cpu", progress=False, early_stopping=False, restore_best=False,
                      ema=True, ema_decay=0.5, output_dir=out, callbacks=[seen])
    hist = trainer.train(train, val)
    (out / f"rank{rank}.json").write_text(json.dumps({
        "digest": weights_digest(model), "train_loss": hist["train_loss"],
        "val_loss": hist["val_loss"], "map_50": hist["val_metrics"]["map_50"],
        "map": hist["val_metrics"]["map"], "train_seen": seen.train, "val_seen": seen.val,
        "steps": trainer.pl_trainer.global_step}))


if __name__ == "__main__":
    main()
