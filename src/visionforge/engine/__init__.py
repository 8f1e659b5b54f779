"""Training engine: the ``Trainer`` facade over Lightning, staged training and k-fold CV."""

from visionforge.config.settings import TrainSettings
from visionforge.engine.amp import MixedPrecisionManager
from visionforge.engine.kfold import run_kfold
from visionforge.engine.seed import enable_cudnn_determinism, enable_determinism, set_seed
from visionforge.engine.staged import train_staged
from visionforge.engine.trainer import Trainer

__all__ = ["Trainer", "TrainSettings", "train_staged", "run_kfold", "set_seed", "enable_determinism",
           "enable_cudnn_determinism", "MixedPrecisionManager"]
