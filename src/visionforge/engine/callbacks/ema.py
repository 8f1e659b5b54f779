"""Exponential moving average of the weights (Lightning's ``EMAWeightAveraging``).

Validation, the ``best``/``last`` checkpoints and the final saved model all use
the averaged weights; the live weights keep training.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import EMAWeightAveraging, StochasticWeightAveraging

__all__ = ["ema_callback", "swa_callback"]


def ema_callback(decay: float = 0.999) -> EMAWeightAveraging:
    """EMA of parameters and buffers, updated after every optimizer step."""
    return EMAWeightAveraging(decay=float(decay))


def swa_callback(lr: float, epoch_start: float | int = 0.75) -> StochasticWeightAveraging:
    """Stochastic weight averaging from ``epoch_start`` (fraction or epoch index) at ``lr``."""
    return StochasticWeightAveraging(swa_lrs=float(lr), swa_epoch_start=epoch_start)
