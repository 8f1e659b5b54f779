"""Learning-rate schedules by name on top of ``torch.optim.lr_scheduler``.

``build_scheduler(name, optimizer, epochs=..., steps_per_epoch=...)`` returns
``(scheduler, interval, monitor)``: ``interval`` is ``"step"`` or ``"epoch"`` (how
often Lightning calls ``scheduler.step()``) and ``monitor`` the metric that
``ReduceLROnPlateau`` watches (``None`` for the others).

==================  ===========================================================  ========
name                shape                                                        interval
==================  ===========================================================  ========
``plateau``         ReduceLROnPlateau: LR x ``factor`` after ``patience`` epochs  epoch
                    without improvement of ``monitor``, floor ``min_lr``
``onecycle``        OneCycleLR: cosine up to the LR at ``pct_start`` (0.3), then  step
                    cosine down (CNN default)
``warmup_cosine``   LinearLR warm-up for ``warmup_epochs`` (2) then               step
                    CosineAnnealingLR to ``min_lr`` (transformer default)
``three_phase``     nnTraining2: linear warm-up to ``lr_peak`` -> cosine to       step
                    ``lr_main_end`` -> linear cool-down to ``lr_end``
``none``            constant LR                                                  epoch
==================  ===========================================================  ========

Schedules act per parameter group, so group LR multipliers keep their ratios.
A model's preferred schedule (declared by its registration) is
:func:`visionforge.engine.optim.preferred_scheduler`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim import lr_scheduler as sched

from visionforge.errors import ConfigError
from visionforge.registry import Registry

__all__ = [
    "SCHEDULERS",
    "build_scheduler",
    "three_phase_lr",
]

SCHEDULERS = Registry("scheduler")
Result = tuple[Any, str, str | None]


def _total_steps(epochs: int, steps_per_epoch: int, kw: dict[str, Any]) -> int:
    total = kw.pop("total_steps", None) or int(epochs) * int(steps_per_epoch)
    if total < 1:
        raise ConfigError(
            f"the schedule needs at least one step (epochs={epochs}, "
            f"steps_per_epoch={steps_per_epoch})"
        )
    return int(total)


def _pop_alias(kw: dict[str, Any], names: tuple[str, ...], default: Any) -> Any:
    value = default
    for n in names:
        if n in kw:
            value = kw.pop(n)
    return value


@SCHEDULERS.register("plateau", aliases=("reduce_on_plateau", "reducelronplateau"))
def _plateau(
    optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, **kw: Any
) -> Result:
    monitor = kw.pop("monitor", "val_loss")
    mode = kw.pop("mode", "max" if monitor and "loss" not in monitor else "min")
    s = sched.ReduceLROnPlateau(
        optimizer,
        mode=mode,
        factor=kw.pop("factor", 0.5),
        patience=kw.pop("patience", 5),
        min_lr=kw.pop("min_lr", 1e-7),
        **kw,
    )
    return s, "epoch", monitor


def _supports_momentum(optimizer: torch.optim.Optimizer) -> bool:
    g = optimizer.param_groups[0]
    return "betas" in g or float(g.get("momentum", 0.0) or 0.0) > 0


@SCHEDULERS.register("onecycle", aliases=("one_cycle", "onecyclelr"))
def _onecycle(
    optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, **kw: Any
) -> Result:
    total = _total_steps(epochs, steps_per_epoch, kw)
    max_lr = kw.pop("max_lr", [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups])
    s = sched.OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=total,
        pct_start=kw.pop("pct_start", 0.3),
        anneal_strategy=kw.pop("anneal_strategy", "cos"),
        cycle_momentum=kw.pop("cycle_momentum", _supports_momentum(optimizer)),
        **kw,
    )
    return s, "step", None


@SCHEDULERS.register("warmup_cosine", aliases=("cosine_warmup", "linear_warmup_cosine"))
def _warmup_cosine(
    optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, **kw: Any
) -> Result:
    total = _total_steps(epochs, steps_per_epoch, kw)
    warmup = kw.pop("warmup_steps", None)
    if warmup is None:
        warmup = int(round(float(kw.pop("warmup_epochs", 2)) * int(steps_per_epoch)))
    warmup = max(0, min(int(warmup), total - 1))
    min_lr = kw.pop("min_lr", 0.0)
    start_factor = kw.pop("warmup_start_factor", 1e-3)
    if kw:
        raise ConfigError(f"warmup_cosine: unknown option(s) {sorted(kw)}")
    cosine = sched.CosineAnnealingLR(optimizer, T_max=total - warmup, eta_min=min_lr)
    if warmup == 0:
        return cosine, "step", None
    linear = sched.LinearLR(
        optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup
    )
    return sched.SequentialLR(optimizer, [linear, cosine], milestones=[warmup]), "step", None


def three_phase_lr(
    step: int,
    *,
    lr_peak: float,
    lr_main_end: float,
    warmup_steps: int,
    main_steps: int,
    cooldown_steps: int,
    lr_start: float = 0.0,
    lr_end: float = 0.0,
) -> float:
    """The nnTraining2 three-phase LR at ``step`` (0-based).

    Warm-up: linear from ``lr_start`` reaching ``lr_peak`` at the last warm-up step;
    main: cosine from ``lr_peak`` to ``lr_main_end`` over ``main_steps``; cool-down:
    linear from ``lr_main_end`` to ``lr_end`` over ``cooldown_steps``; ``lr_end`` after.
    """
    if step < warmup_steps:
        return lr_start + (lr_peak - lr_start) * (step + 1) / warmup_steps
    step -= warmup_steps
    if step < main_steps:
        cos = 0.5 * (1 + math.cos(math.pi * step / main_steps))
        return lr_main_end + (lr_peak - lr_main_end) * cos
    step -= main_steps
    if step < cooldown_steps:
        return lr_main_end + (lr_end - lr_main_end) * (step + 1) / cooldown_steps
    return lr_end


@SCHEDULERS.register("three_phase", aliases=("nntraining2", "warmup_cosine_cooldown"))
def _three_phase(
    optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, **kw: Any
) -> Result:
    # Accept nnTraining2's camelCase keys as well as snake_case ones.
    base = float(optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"]))
    lr_peak = float(_pop_alias(kw, ("lr_peak", "lrPeak"), base))
    lr_main_end = float(_pop_alias(kw, ("lr_main_end", "lrMainEnd"), lr_peak * 0.01))
    lr_start = float(_pop_alias(kw, ("lr_start", "lrStart"), 0.0))
    lr_end = float(_pop_alias(kw, ("lr_end", "lrEnd"), 0.0))
    warmup = _pop_alias(kw, ("warmup_steps", "warmupSteps"), None)
    main = _pop_alias(kw, ("main_steps", "mainSteps"), None)
    cooldown = _pop_alias(kw, ("cooldown_steps", "cooldownSteps"), None)
    if warmup is None or main is None or cooldown is None:
        total = _total_steps(epochs, steps_per_epoch, kw)
        warmup = int(round(0.05 * total)) if warmup is None else int(warmup)
        cooldown = int(round(0.1 * total)) if cooldown is None else int(cooldown)
        main = max(1, total - warmup - cooldown) if main is None else int(main)
    else:
        kw.pop("total_steps", None)
    if kw:
        raise ConfigError(f"three_phase: unknown option(s) {sorted(kw)}")
    if min(warmup, main, cooldown) < 0 or main < 1:
        raise ConfigError("three_phase: step counts must be >= 0 and main_steps >= 1")
    if lr_peak <= 0:
        raise ConfigError("three_phase: lr_peak must be > 0")

    def factor(step: int) -> float:
        # torch has no cosine-to-a-relative-floor followed by a linear cool-down; a factor
        # of the first group's LR keeps per-group multipliers (group 0 follows the
        # absolute schedule exactly).
        lr = three_phase_lr(
            step,
            lr_peak=lr_peak,
            lr_main_end=lr_main_end,
            warmup_steps=int(warmup),
            main_steps=int(main),
            cooldown_steps=int(cooldown),
            lr_start=lr_start,
            lr_end=lr_end,
        )
        return lr / base

    return sched.LambdaLR(optimizer, factor), "step", None


@SCHEDULERS.register("none", aliases=("constant",))
def _none(
    optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, **kw: Any
) -> Result:
    return None, "epoch", None


def build_scheduler(
    name: str | sched.LRScheduler | sched.ReduceLROnPlateau | None,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    **kw: Any,
) -> Result:
    """Build the schedule ``name`` for ``optimizer``; returns ``(scheduler, interval, monitor)``.

    ``name=None`` or ``"none"`` means a constant LR. A scheduler instance is passed
    through (``interval``/``monitor`` keywords describe it; defaults ``"epoch"`` and,
    for ReduceLROnPlateau, ``"val_loss"``). Keywords are the schedule's options
    (``factor``, ``patience``, ``min_lr``, ``pct_start``, ``warmup_epochs``,
    ``lr_peak``/``lrPeak``, ...).
    """
    if name is None:
        return None, "epoch", None
    if isinstance(name, (sched.LRScheduler, sched.ReduceLROnPlateau)):
        monitor = kw.pop(
            "monitor", "val_loss" if isinstance(name, sched.ReduceLROnPlateau) else None
        )
        return name, kw.pop("interval", "epoch"), monitor
    factory = SCHEDULERS.get(name)
    try:
        return factory(optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch, **kw)
    except TypeError as exc:
        raise ConfigError(f"scheduler {name!r}: bad option ({exc})") from exc
