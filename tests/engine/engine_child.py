"""Child process for the kill/resume and DDP tests (run as a script, not collected).

usage: python engine_child.py MODE OUT_DIR
  MODE = full    train uninterrupted, save final weights to OUT_DIR/final.safetensors
  MODE = stall   train, and after optimizer step STALL_AT write OUT_DIR/stalled then hang
  MODE = resume  resume=True from OUT_DIR/checkpoints/last.ckpt, save final weights
  MODE = ddp     2-process DDP on CPU (gloo); each rank writes its weights hash
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from visionforge import Trainer

STALL_AT = 7  # steps_per_epoch = 5, so step 7 is mid-way through epoch 1


def data() -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, 12, 12, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    return TensorDataset(x, y)


def model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 2),
    )


class Stall(Callback):
    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == STALL_AT:
            (self.out / "stalled").write_text(str(trainer.global_step))
            time.sleep(600)


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)
    ds = data()
    common = dict(
        max_epochs=3,
        lr=0.05,
        optimizer="sgd",
        scheduler="onecycle",
        seed=0,
        deterministic=True,
        output_dir=out,
        checkpoint_every_n_steps=1,
        restore_best=False,
        device="cpu",
        progress=False,
        early_stopping_patience=None,
    )
    train = DataLoader(ds, batch_size=8, shuffle=True)
    val = DataLoader(ds, batch_size=20)
    if mode == "ddp":

        class Spy(Callback):  # records which rank actually writes checkpoint files
            def on_save_checkpoint(self, trainer, pl_module, checkpoint):
                pass

        from visionforge.engine import checkpoint as ck

        original = ck.AtomicCheckpointIO.save_checkpoint

        def spy_save(self, checkpoint, path, storage_options=None):
            rank = os.environ.get("LOCAL_RANK", "0")
            with open(out / f"writes_rank{rank}.txt", "a") as fh:
                fh.write(f"{path}\n")
            return original(self, checkpoint, path, storage_options)

        ck.AtomicCheckpointIO.save_checkpoint = spy_save
        m = model()
        trainer = Trainer(m, strategy="ddp", devices=2, **{**common, "deterministic": False})
        hist = trainer.train(train, val)
        rank = os.environ.get("LOCAL_RANK", "0")
        digest = hashlib.sha256(
            b"".join(
                v.detach().cpu().contiguous().numpy().tobytes() for v in m.state_dict().values()
            )
        ).hexdigest()
        (out / f"rank{rank}.txt").write_text(f"{digest}\n{len(hist['train_loss'])}\n")
        return
    cbs = [Stall(out)] if mode == "stall" else []
    m = model()
    trainer = Trainer(m, callbacks=cbs, resume=(mode == "resume"), **common)
    hist = trainer.train(train, val)
    save_file(
        {k: v.contiguous() for k, v in m.state_dict().items()}, str(out / "final.safetensors")
    )
    (out / "history.txt").write_text(repr(hist["train_loss"]) + "\n" + repr(hist["val_loss"]))


if __name__ == "__main__":
    main()
