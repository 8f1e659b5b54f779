"""``verify``: the pipeline's 7 model checks, returned as a structured result.

The checks are: device transfer, forward pass, output shape, trainable
parameters > 0, backward pass (finite gradient on every trainable parameter),
train/eval mode switch, and layer inventory. ``verify_all`` runs them on the
tiny variant of every registered model (``test_kwargs``/``test_input`` of its
registry entry), which is what ``visionforge models verify --all`` prints.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from visionforge.models.spec import model_name, model_task

__all__ = [
    "CheckResult",
    "VerifyResult",
    "verify",
    "verify_all",
    "verify_entry",
    "expected_classes",
    "CHECKS",
]

CHECKS = (
    "device_transfer",
    "forward",
    "output_shape",
    "trainable_params",
    "backward",
    "train_eval_switch",
    "layer_inventory",
)


@dataclass
class CheckResult:
    """One check: its name, whether it passed, a one-line detail and its duration."""

    name: str
    passed: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass
class VerifyResult:
    """Outcome of :func:`verify` for one model."""

    name: str
    task: str | None
    input_shape: tuple[int, ...]
    device: str
    checks: list[CheckResult] = field(default_factory=list)
    params_total: int = 0
    params_trainable: int = 0
    output_shape: Any = None
    layer_inventory: dict[str, int] = field(default_factory=dict)
    forward_ms: float | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when every check ran and passed."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name`` (see :data:`CHECKS`)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r}; checks run: {[c.name for c in self.checks]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (includes ``passed``)."""
        out = asdict(self)
        out["input_shape"] = list(self.input_shape)
        out["passed"] = self.passed
        return out

    def summary(self) -> str:
        """One line: name, PASS/FAIL, parameters, failed checks with details."""
        status = "PASS" if self.passed else "FAIL"
        text = f"{self.name}: {status} ({self.params_total:,} params)"
        if not self.passed:
            text += "; " + "; ".join(f"{c.name}: {c.detail}" for c in self.failed)
        return text


def _tensors(out: Any) -> list[torch.Tensor]:
    """All tensors in a model output (tensor, list/tuple, dict), in order."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, Mapping):
        return [t for v in out.values() for t in _tensors(v)]
    if isinstance(out, list | tuple):
        return [t for v in out for t in _tensors(v)]
    return []


def _describe_shape(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return list(out.shape)
    if isinstance(out, Mapping):
        return {k: _describe_shape(v) for k, v in out.items()}
    if isinstance(out, list | tuple):
        return [_describe_shape(v) for v in out]
    return type(out).__name__


def _infer_task(model: nn.Module, out: Any) -> str:
    task = model_task(model)
    if task:
        return task
    if isinstance(out, Mapping):
        return "multitask"
    if isinstance(out, list | tuple):
        return "backbone"
    if isinstance(out, torch.Tensor) and out.ndim == 4:
        return "segmentation"
    return "classification"


def _check_logits(out: Any, batch: int, num_classes: int | None, what: str) -> str | None:
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        return f"{what}: expected a [B, num_classes] tensor, got {_describe_shape(out)}"
    if out.shape[0] != batch:
        return f"{what}: batch {out.shape[0]} != {batch}"
    if num_classes is not None and out.shape[1] != num_classes:
        return f"{what}: {out.shape[1]} classes != expected {num_classes}"
    return None


def _check_masks(
    out: Any, batch: int, hw: Sequence[int], num_classes: int | None, what: str
) -> str | None:
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        return f"{what}: expected a [B, S, H, W] tensor, got {_describe_shape(out)}"
    if out.shape[0] != batch:
        return f"{what}: batch {out.shape[0]} != {batch}"
    if tuple(out.shape[-2:]) != tuple(hw):
        return f"{what}: spatial size {tuple(out.shape[-2:])} != input {tuple(hw)}"
    if num_classes is not None and out.shape[1] != num_classes:
        return f"{what}: {out.shape[1]} classes != expected {num_classes}"
    return None


def _check_output(
    model: nn.Module, out: Any, task: str, x: torch.Tensor, num_classes: Any
) -> str | None:
    """``None`` if ``out`` has the shape the task promises, else what is wrong."""
    batch = x.shape[0]
    if task in ("classification", "signal") and isinstance(out, tuple) and hasattr(out, "aux_logits"):
        # a training-mode (logits, aux_logits) pair of a model with an auxiliary classifier
        return (_check_logits(out[0], batch, num_classes, "logits")
                or _check_logits(out.aux_logits, batch, num_classes, "aux_logits"))
    if task in ("classification", "signal"):
        return _check_logits(out, batch, num_classes, "logits")
    if task == "detection":
        return _check_detection(out)
    if task == "segmentation":
        return _check_masks(out, batch, x.shape[-2:], num_classes, "logits")
    if task == "multitask":
        expected = num_classes if isinstance(num_classes, Mapping) else {}
        if not isinstance(out, Mapping):
            if isinstance(out, torch.Tensor) and out.ndim == 2:
                return _check_logits(out, batch, expected.get("classification"), "classification")
            if isinstance(out, torch.Tensor) and out.ndim == 4:
                n = expected.get("segmentation")
                return _check_masks(out, batch, x.shape[-2:], n, "segmentation")
            return f"expected a dict of head outputs, got {_describe_shape(out)}"
        unknown = set(out) - {"classification", "segmentation"}
        if unknown or not out:
            return f"multitask keys {sorted(out)}; expected classification and/or segmentation"
        problems = []
        if "classification" in out:
            n = expected.get("classification")
            problems.append(_check_logits(out["classification"], batch, n, "classification"))
        if "segmentation" in out:
            n = expected.get("segmentation")
            problems.append(
                _check_masks(out["segmentation"], batch, x.shape[-2:], n, "segmentation")
            )
        missing = [k for k, v in expected.items() if v and k not in out]
        if missing:
            problems.append(f"missing heads {missing}")
        problems = [p for p in problems if p]
        return "; ".join(problems) or None
    if task == "backbone":
        if isinstance(out, torch.Tensor) and out.ndim >= 3:
            out = [out]  # a single spatial feature map (e.g. ViTSpatial)
        if not isinstance(out, list | tuple) or not out:
            return f"expected feature maps (a list, or one [B, C, ...] map), got {_describe_shape(out)}"
        if not all(isinstance(t, torch.Tensor) and t.shape[0] == batch for t in out):
            return f"every feature must be a tensor with batch {batch}: {_describe_shape(out)}"
        channels = getattr(model, "out_channels", None)
        if isinstance(channels, int):
            channels = [channels]
        if channels is not None and [t.shape[1] for t in out] != list(channels):
            return f"channels {[t.shape[1] for t in out]} != out_channels {list(channels)}"
        strides = getattr(model, "strides", None)
        if isinstance(strides, int):
            strides = [strides]
        if strides is not None and len(strides) == len(out) and x.ndim == 4:
            sizes = [tuple(t.shape[-2:]) for t in out]
            want = [(-(-x.shape[-2] // s), -(-x.shape[-1] // s)) for s in strides]
            if sizes != want:
                return f"feature sizes {sizes} != input / strides {want}"
        return None
    return f"unknown task {task!r}"


def _layer_inventory(model: nn.Module) -> dict[str, int]:
    """Counts of leaf module types (modules without children), most common first."""
    counts = Counter(type(m).__name__ for m in model.modules() if not list(m.children()))
    return dict(counts.most_common())


def verify(
    model: nn.Module,
    input_shape: Sequence[int],
    num_classes: int | Mapping[str, int | None] | None = None,
    device: str | torch.device = "cpu",
    *,
    task: str | None = None,
    batch_size: int = 2,
    name: str | None = None,
) -> VerifyResult:
    """Run the 7 checks on ``model`` with a random batch and return a :class:`VerifyResult`.

    Args:
        model: the module to check (its parameters' gradients are cleared afterwards
            and its train/eval mode restored).
        input_shape: shape of ONE sample, without the batch: ``(3, 32, 32)``, ``(1, 750)``.
        num_classes: expected number of outputs; for multitask a mapping
            ``{"classification": C, "segmentation": S}``; ``None`` skips that comparison.
        device: where to run (``"cpu"``, ``"cuda"``, ``"mps"``).
        task: ``classification``/``segmentation``/``multitask``/``signal``/``backbone``;
            default: the registry's task for models built by ``create_model``, else
            inferred from the output type.
        batch_size: samples in the random batch (>= 2 so BatchNorm can train).
        name: label in the result (default: the registry name or class name).

    Example:
        >>> from visionforge.models import create_model
        >>> from visionforge.models.verify import verify
        >>> m = create_model("custom_convnext", size="tiny", num_classes=3)
        >>> verify(m, (3, 32, 32), num_classes=3).passed
        True
    """
    start = time.perf_counter()
    dev = torch.device(device)
    label = name or model_name(model) or type(model).__name__
    result = VerifyResult(label, task, tuple(int(s) for s in input_shape), str(dev))
    was_training = model.training
    checks = _Checks(model, result, dev, num_classes)
    if checks.run("device_transfer", checks.device_transfer):
        checks.prepare(batch_size)
        for check in CHECKS[1:]:
            checks.run(check, getattr(checks, check))
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    result.seconds = time.perf_counter() - start
    return result


class _Checks:
    """The checks of one :func:`verify` call; each method returns its detail or raises
    :class:`_CheckFailed`, and they share the model output and the random batch."""

    def __init__(
        self, model: nn.Module, result: VerifyResult, dev: torch.device, num_classes: Any
    ) -> None:
        self.model, self.result, self.dev, self.num_classes = model, result, dev, num_classes
        self.x: torch.Tensor | None = None
        self.out: Any = None
        self.forward_ok = False

    def run(self, check: str, fn: Callable[[], str]) -> bool:
        """Time ``fn``, record its :class:`CheckResult` and return whether it passed."""
        t0 = time.perf_counter()
        try:
            detail, ok = fn(), True
        except _CheckFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # a crash inside the model is a failed check, not a crash here
            detail, ok = (
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                False,
            )
        self.result.checks.append(CheckResult(check, ok, detail, time.perf_counter() - t0))
        return ok

    def prepare(self, batch_size: int) -> None:
        """Count parameters and draw the random batch (after the model is on its device)."""
        params = list(self.model.parameters())
        self.result.params_total = sum(p.numel() for p in params)
        self.result.params_trainable = sum(p.numel() for p in params if p.requires_grad)
        self.x = torch.rand(batch_size, *self.result.input_shape, device=self.dev)

    # 1. device transfer
    def device_transfer(self) -> str:
        dev, model = self.dev, self.model
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise _CheckFailed("CUDA requested but torch.cuda.is_available() is False")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise _CheckFailed("MPS requested but not available")
        model.to(dev)
        wrong = [
            n
            for n, t in [*model.named_parameters(), *model.named_buffers()]
            if t.device.type != dev.type
        ]
        if wrong:
            raise _CheckFailed(f"{len(wrong)} tensors not on {dev}: {wrong[:3]}")
        return f"all parameters and buffers on {dev}"

    # 2. forward pass (train mode, with autograd, as training runs it)
    def forward(self) -> str:
        self.model.train()
        self.model.zero_grad(set_to_none=True)
        if (self.result.task or model_task(self.model)) == "detection":
            # a detector trains on (images, targets) and returns its loss dict
            out = self.model(self.x, _random_targets(self.x))
        else:
            out = self.model(self.x)
        tensors = _tensors(out)
        if not tensors:
            raise _CheckFailed(f"output holds no tensor ({type(out).__name__})")
        bad = [i for i, t in enumerate(tensors) if not torch.isfinite(t).all()]
        if bad:
            raise _CheckFailed(f"non-finite values in output tensor(s) {bad}")
        self.out, self.forward_ok = out, True
        self.result.output_shape = _describe_shape(out)
        return f"output {self.result.output_shape}"

    # 3. output shape
    def output_shape(self) -> str:
        if not self.forward_ok:
            raise _CheckFailed("skipped: forward pass failed")
        result = self.result
        if result.task is None:
            result.task = _infer_task(self.model, self.out)
        problem = _check_output(self.model, self.out, result.task, self.x, self.num_classes)
        if problem:
            raise _CheckFailed(problem)
        return f"{result.task} output {result.output_shape}"

    # 4. trainable parameters
    def trainable_params(self) -> str:
        r = self.result
        if r.params_trainable <= 0:
            raise _CheckFailed(f"no trainable parameters (of {r.params_total:,})")
        return f"{r.params_trainable:,} trainable of {r.params_total:,}"

    # 5. backward pass: every trainable parameter gets a finite gradient
    def backward(self) -> str:
        if not self.forward_ok:
            raise _CheckFailed("skipped: forward pass failed")
        out, self.out = self.out, None
        # sum of means reaches every output (logits, masks, each feature level)
        loss = sum(t.float().mean() for t in _tensors(out))
        loss.backward()
        trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        missing = [n for n, p in trainable if p.grad is None]
        nonfinite = [
            n for n, p in trainable if p.grad is not None and not torch.isfinite(p.grad).all()
        ]
        self.model.zero_grad(set_to_none=True)
        problems = []
        if missing:
            problems.append(f"{len(missing)} params without grad: {missing[:5]}")
        if nonfinite:
            problems.append(f"{len(nonfinite)} params with non-finite grad: {nonfinite[:5]}")
        if problems:
            raise _CheckFailed("; ".join(problems))
        return f"finite gradients on all {len(trainable)} trainable tensors"

    # 6. train/eval switch: flags flip everywhere and eval is deterministic
    def train_eval_switch(self) -> str:
        model = self.model
        model.train()
        if not all(m.training for m in model.modules()):
            raise _CheckFailed("model.train() left some modules in eval mode")
        model.eval()
        if any(m.training for m in model.modules()):
            raise _CheckFailed("model.eval() left some modules in train mode")
        with torch.no_grad():
            t0 = time.perf_counter()
            a = _tensors(model(self.x))
            self.result.forward_ms = (time.perf_counter() - t0) * 1000
            b = _tensors(model(self.x))
        if len(a) != len(b) or not all(torch.equal(u, v) for u, v in zip(a, b, strict=True)):
            raise _CheckFailed("eval-mode outputs differ between two identical calls")
        return f"flags flip; eval deterministic ({self.result.forward_ms:.1f} ms/batch)"

    # 7. layer inventory
    def layer_inventory(self) -> str:
        inventory = self.result.layer_inventory = _layer_inventory(self.model)
        with_params = [
            m
            for m in self.model.modules()
            if not list(m.children()) and any(True for _ in m.parameters())
        ]
        if not with_params:
            raise _CheckFailed("no leaf layer holds parameters")
        top = ", ".join(f"{k}={v}" for k, v in list(inventory.items())[:4])
        return f"{sum(inventory.values())} layers ({top})"


def _random_targets(x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """One box of label 1 per image, inside the image (targets for a detector's train step)."""
    h, w = x.shape[-2:]
    box = torch.tensor([[w * 0.2, h * 0.25, w * 0.6, h * 0.7]], device=x.device)
    ones = torch.ones(1, dtype=torch.int64, device=x.device)
    return [{"boxes": box.clone(), "labels": ones.clone()} for _ in range(len(x))]


def _check_detection(out: Any) -> str | None:
    if not isinstance(out, Mapping) or not out:
        return f"a detector in train mode returns a loss dict, got {type(out).__name__}"
    bad = [k for k, v in out.items() if not isinstance(v, torch.Tensor) or v.ndim != 0]
    return f"loss entries {bad} are not scalar tensors" if bad else None


class _CheckFailed(Exception):
    """A check found a problem (the message is the check's detail)."""


def expected_classes(task: str, kwargs: Mapping[str, Any]) -> Any:
    """Number of outputs a registry entry's ``test_kwargs`` ask for (``None`` if unspecified)."""
    if task == "multitask":
        return {
            "classification": kwargs.get("num_classes_classification"),
            "segmentation": kwargs.get("num_classes_segmentation"),
        }
    if task == "backbone":
        return None
    return kwargs.get("num_classes")


def verify_entry(name: str, device: str | torch.device = "cpu") -> VerifyResult:
    """Build the tiny variant of registry entry ``name`` and :func:`verify` it."""
    from visionforge.models.factory import create_model, model_entry

    entry = model_entry(name)
    meta = entry.metadata
    kwargs = dict(meta.get("test_kwargs") or {})
    shape = tuple(meta.get("test_input") or (3, 32, 32))
    torch.manual_seed(0)
    t0 = time.perf_counter()
    try:
        model = create_model(entry.name, **kwargs)
    except Exception as exc:
        result = VerifyResult(entry.name, meta.get("task"), shape, str(device))
        msg = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        result.checks.append(CheckResult("build", False, msg, time.perf_counter() - t0))
        return result
    task = meta.get("task")
    return verify(model, shape, expected_classes(task, kwargs), device, task=task, name=entry.name)


def verify_all(
    pattern: str | None = None,
    *,
    task: str | None = None,
    device: str | torch.device = "cpu",
    names: Sequence[str] | None = None,
) -> list[VerifyResult]:
    """Verify the tiny variant of every registered model matching ``pattern``/``task``."""
    from visionforge.models.factory import list_models

    selected = list(names) if names is not None else list_models(pattern, task=task)
    return [verify_entry(n, device) for n in selected]
