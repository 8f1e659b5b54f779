"""Shared helpers of the model tests: a fixed small batch per task and an "overfit one batch" loop."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from visionforge.models.factory import create_model, model_entry
from visionforge.models.verify import expected_classes

BATCH = 8
DENSE_BATCH = 4  # segmentation/multitask: 4 x H x W labelled pixels is plenty and halves the cost
MAX_STEPS = 100
PIXEL_ACC = 0.99


def make_batch(task: str, shape: tuple[int, ...], classes: Any) -> dict[str, torch.Tensor]:
    """A fixed, learnable batch: images/signals with labels and/or block-structured masks."""
    g = torch.Generator().manual_seed(0)
    batch: dict[str, torch.Tensor] = {}
    seg = classes.get("segmentation") if isinstance(classes, dict) else None
    cls = classes.get("classification") if isinstance(classes, dict) else None
    if task == "segmentation":
        seg = classes
    elif task in ("classification", "signal"):
        cls = classes
    n = DENSE_BATCH if seg else BATCH
    if seg:
        c, h, w = shape
        # masks are 8x8-pixel blocks of random classes; each class has its own colour
        blocks = torch.randint(0, seg, (n, h // 8, w // 8), generator=g)
        mask = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)
        palette = torch.rand(seg, c, generator=g)
        image = palette[mask].permute(0, 3, 1, 2) + 0.05 * torch.rand(n, c, h, w, generator=g)
        batch["x"], batch["mask"] = image, mask
    else:
        batch["x"] = torch.rand(BATCH, *shape, generator=g)
    if cls:
        batch["label"] = torch.arange(n) % cls
    return batch


def _split(out: Any, task: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if isinstance(out, dict):
        return out.get("classification"), out.get("segmentation")
    return (out, None) if task in ("classification", "signal") else (None, out)


def scores(model: torch.nn.Module, batch: dict[str, torch.Tensor], task: str) -> dict[str, float]:
    """Eval-mode accuracy (labels) and pixel accuracy (masks) on the batch."""
    model.eval()
    with torch.no_grad():
        logits, seg_logits = _split(model(batch["x"]), task)
    model.train()
    out = {}
    if "label" in batch:
        out["accuracy"] = (logits.argmax(1) == batch["label"]).float().mean().item()
    if "mask" in batch:
        out["pixel_accuracy"] = (seg_logits.argmax(1) == batch["mask"]).float().mean().item()
    return out


def reached(s: dict[str, float]) -> bool:
    return s.get("accuracy", 1.0) == 1.0 and s.get("pixel_accuracy", 1.0) >= PIXEL_ACC


def overfit_lr(name: str) -> float:
    """Adam step size: attention models need smaller steps than CNNs (cf. their lr_multiplier)."""
    from visionforge.models.factory import model_entry

    kind = model_entry(name).metadata.get("kind")
    return 5e-4 if kind in ("transformer", "hybrid") else 3e-3


def overfit_entry(
    name: str, lr: float | None = None, check_every: int = 5
) -> tuple[int, dict[str, float]]:
    """Train the tiny variant of ``name`` on one fixed batch with Adam.

    Returns the number of steps taken and the final eval-mode scores; stops as
    soon as every label is right (and >= 99% of mask pixels) or after MAX_STEPS.
    """
    meta = model_entry(name).metadata
    task, kwargs = meta["task"], dict(meta["test_kwargs"])
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    batch = make_batch(task, tuple(meta["test_input"]), expected_classes(task, kwargs))
    opt = torch.optim.Adam(model.parameters(), lr=lr or overfit_lr(name))
    model.train()
    s: dict[str, float] = {}
    for step in range(1, MAX_STEPS + 1):
        logits, seg_logits = _split(model(batch["x"]), task)
        loss = torch.zeros(())
        if "label" in batch:
            loss = loss + F.cross_entropy(logits, batch["label"])
        if "mask" in batch:
            loss = loss + F.cross_entropy(seg_logits, batch["mask"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % check_every == 0:
            s = scores(model, batch, task)
            if reached(s):
                return step, s
    return MAX_STEPS, s
