"""Detection through the Lightning engine: EMA, bf16 autocast and 2-process DDP (+ EMA)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).parent))
from detection_child import TRAIN_IMAGES, loaders, tiny_detector  # noqa: E402

CHILD = Path(__file__).with_name("detection_child.py")
FAST = dict(device="cpu", progress=False, seed=0, early_stopping=False, lr=3e-3)


class RawWeights(Callback):
    """The live weights ``names`` after every optimizer step (what EMA averages)."""

    def __init__(self, names: list[str]) -> None:
        self.names, self.steps = names, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        state = pl_module.model.state_dict()
        self.steps.append({k: state[k].detach().clone() for k in self.names})


def _map_of(model, loader) -> dict[str, float]:
    from visionforge.engine.detection import build_map_metric, map_scalars

    metric = build_map_metric()
    model.eval()
    with torch.no_grad():
        for b in loader:
            target = [{k: t[k] for k in ("boxes", "labels", "iscrowd")} for t in b["targets"]]
            metric.update(model(list(b["image"])), target)
    return map_scalars(metric.compute())


def test_ema_averages_detector_weights_and_bn_buffers_and_is_what_is_saved(tmp_path):
    from visionforge.engine import Trainer
    from visionforge.engine.checkpoint import load_checkpoint
    from visionforge.models import load_model

    train, val = loaders()
    model = tiny_detector()
    names = ["head.classification_head.cls_logits.weight",
             next(k for k in model.state_dict() if k.endswith("running_mean"))]
    raw, decay = RawWeights(names), 0.5
    trainer = Trainer(model, max_epochs=3, ema=True, ema_decay=decay, restore_best=False,
                      output_dir=tmp_path, callbacks=[raw], **FAST)
    hist = trainer.train(train, val)
    assert len(raw.steps) == 3 * 2 and len(hist["val_metrics"]["map_50"]) == 3

    expected = {k: raw.steps[0][k].clone() for k in names}  # EMA_0 = the first step's weights
    for step in raw.steps[1:]:
        for k in names:
            expected[k] = decay * expected[k] + (1 - decay) * step[k]
    ckpt = load_checkpoint(tmp_path / "checkpoints/last.ckpt")
    for k in names:  # the checkpoint's weights are the average; the live ones are kept apart
        torch.testing.assert_close(ckpt["state_dict"][f"model.{k}"], expected[k])
        torch.testing.assert_close(ckpt["current_model_state"][f"model.{k}"], raw.steps[-1][k])
        assert not torch.allclose(expected[k], raw.steps[-1][k])
        # the model left in memory and the saved model dir hold the average
        torch.testing.assert_close(model.state_dict()[k], expected[k])
        torch.testing.assert_close(load_model(tmp_path / "model").state_dict()[k], expected[k])

    # validation ran on the averaged weights: evaluating them again gives the logged figures,
    # the live weights give others
    again = trainer.evaluate(val)
    assert again["loss"] == pytest.approx(hist["val_loss"][-1], abs=1e-6)
    assert again["map_50"] == pytest.approx(hist["val_metrics"]["map_50"][-1], abs=1e-9)
    live = tiny_detector()
    live.load_state_dict({k[len("model."):]: v for k, v in ckpt["current_model_state"].items()})
    assert Trainer(live, output_dir=tmp_path / "live", **FAST).evaluate(val)["loss"] != \
        pytest.approx(again["loss"], abs=1e-6)


def _bf16_or_skip() -> None:
    from visionforge.engine.precision import cpu_supports_bf16

    if not cpu_supports_bf16():
        pytest.skip("bf16 autocast does not run on this CPU")


def test_bf16_autocast_trains_and_validates_with_float32_heads(tmp_path):
    _bf16_or_skip()
    from visionforge.engine import Trainer

    train, val = loaders()
    model = tiny_detector()
    seen: dict[str, set] = {"features": set(), "head": set(), "boxes": set()}
    model.backbone.register_forward_hook(
        lambda m, i, o: seen["features"].update(v.dtype for v in o.values()))
    model.head.register_forward_hook(  # runs after the float32 cast hooked by create_model
        lambda m, i, o: seen["head"].update(v.dtype for v in o.values()))
    model.register_forward_hook(
        lambda m, i, o: seen["boxes"].update(d["boxes"].dtype for d in o) if isinstance(o, list)
        else None)
    trainer = Trainer(model, precision="bf16", max_epochs=2, output_dir=tmp_path, **FAST)
    hist = trainer.train(train, val)
    assert trainer.pl_trainer.precision == "bf16-mixed"
    assert seen["features"] == {torch.bfloat16}  # autocast ran the backbone and FPN in bf16
    assert seen["head"] == {torch.float32}  # decode, losses and NMS got float32
    assert seen["boxes"] == {torch.float32}  # validation detections
    assert all(torch.isfinite(torch.tensor(hist["train_loss"] + hist["val_loss"])))
    assert 0.0 <= hist["val_metrics"]["map_50"][-1] <= 1.0
    assert model.backbone.fpn.inner_blocks[0][0].weight.dtype == torch.float32  # master weights


def test_precision_auto_probes_the_detector_on_its_losses(tmp_path):
    from visionforge.engine import Trainer
    from visionforge.engine.precision import cpu_native_bf16

    train, _ = loaders()
    trainer = Trainer(tiny_detector(), precision="auto", max_steps=1, max_epochs=1,
                      output_dir=tmp_path, **FAST)
    hist = trainer.train(train)
    choice = trainer.speed_choice
    assert "fp32" in choice.seconds and trainer.pl_trainer.precision == choice.precision
    if cpu_native_bf16():  # bf16 was timed and its loss components agree with fp32's
        assert "bf16" in choice.seconds and "bf16" not in choice.rejected
    assert all(torch.isfinite(torch.tensor(hist["train_loss"])))


def test_float32_heads_keep_boxes_off_the_bf16_grid():
    """torchvision decodes boxes in the head's dtype: in bf16, coordinates in [256, 512) fall
    on a 2 px grid. With the float32 cast they do not; without it (torchvision's own
    behaviour) they all do."""
    _bf16_or_skip()
    from visionforge.data import DummyDetectionDataset

    model = tiny_detector(detections_per_img=1000).eval()
    image = DummyDetectionDataset(1, 512, boxes_per_image=20, seed=0)[0]["image"]

    def far_coordinates() -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            boxes = model([image])[0]["boxes"].float()
        return boxes[boxes >= 256]

    ours = far_coordinates()
    assert ours.numel() > 100 and (ours % 2 != 0).float().mean() > 0.5
    model.head._forward_hooks.clear()
    assert (far_coordinates() % 2 == 0).all()


@pytest.mark.parametrize("name", ["fcos", "retinanet", "faster_rcnn"])
def test_every_detector_returns_float32_under_autocast(name):
    _bf16_or_skip()
    from visionforge.models import create_model
    from visionforge.models.factory import model_entry

    model = create_model(name, **model_entry(name).metadata["test_kwargs"])
    x = [torch.rand(3, 64, 64)]
    target = [{"boxes": torch.tensor([[8.0, 8.0, 30.0, 28.0]]), "labels": torch.tensor([1])}]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model.train()(x, target)
        with torch.no_grad():
            out = model.eval()(x)[0]
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    assert out["boxes"].dtype == out["scores"].dtype == torch.float32
    with torch.no_grad():  # float64 stays float64: the cast only lifts half precision
        assert model.double()([x[0].double()])[0]["boxes"].dtype == torch.float64


@pytest.mark.slow
def test_ddp_two_cpu_processes_detection(tmp_path):
    import torch.distributed as dist

    from visionforge.models import load_model

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available here")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run([sys.executable, str(CHILD), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["digest"] == r1["digest"] and r0["steps"] == r1["steps"] == 10
    assert r0["map_50"] == r1["map_50"] and r0["train_loss"] == r1["train_loss"]
    # the training sampler shards every epoch: 2 x 2 images per rank, together all 8
    for epoch in range(5):
        a, b = (set(r["train_seen"][4 * epoch:4 * epoch + 4]) for r in (r0, r1))
        assert not a & b and a | b == set(range(TRAIN_IMAGES))
    assert sorted(r0["val_seen"] + r1["val_seen"]) == [0, 1, 2, 3] and len(r0["val_seen"]) == 2
    # EMA under DDP: the checkpoint's weights are the average, the live ones kept apart
    from visionforge.engine.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "checkpoints/last.ckpt")
    key = "model.head.classification_head.cls_logits.weight"
    assert not torch.allclose(ckpt["state_dict"][key], ckpt["current_model_state"][key])
    # each rank validated half the images; the logged mAP is that of all of them, as one
    # process computes it on the saved (final, averaged) weights
    single = _map_of(load_model(tmp_path / "model"), loaders()[1])
    assert single["map_50"] > 0 and r0["map_50"][-1] == pytest.approx(single["map_50"], abs=1e-9)
    assert r0["map"][-1] == pytest.approx(single["map"], abs=1e-9)
    writes = (tmp_path / "writes_rank0.txt").read_text()
    assert "last.ckpt" in writes and "history.json" in writes
    assert not (tmp_path / "writes_rank1.txt").exists()
