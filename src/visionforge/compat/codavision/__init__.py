"""CODAvision compatibility: its names over the visionforge core (``docs/migrating.md``).

=================================================  =============================================
CODAvision                                         here
=================================================  =============================================
``base.config.FrameworkConfig``                    :class:`FrameworkConfig` (class methods)
``base.models.backbones.model_call``               :func:`model_call`
``base.models.wrappers.PyTorchKerasAdapter``       :class:`PyTorchKerasAdapter`
``base.models.wrappers.TensorFlowKerasAdapter``    :class:`TensorFlowKerasAdapter`
``create_model_adapter`` / ``load_model``          :func:`create_model_adapter` / :func:`load_model`
``unfreeze_model``                                 :func:`unfreeze_model`
``backbones_pytorch.PyTorchDeepLabV3Plus``         :class:`PyTorchDeepLabV3Plus`
``training_pytorch.*Trainer``, loss                :class:`PyTorchSegmentationTrainer`, ...
``data.loaders_pytorch.create_*_dataloader``       :func:`create_training_dataloader`, ...
=================================================  =============================================
"""

from visionforge.compat.codavision.config import (
    DEFAULT_FRAMEWORK,
    FrameworkConfig,
    ModelDefaults,
    get_pytorch_device,
)
from visionforge.compat.codavision.data import (
    PyTorchSegmentationDataset,
    create_training_dataloader,
    create_validation_dataloader,
    get_tile_paths_from_directory,
)
from visionforge.compat.codavision.models import (
    PyTorchDeepLabV3Plus,
    PyTorchKerasAdapter,
    TensorFlowKerasAdapter,
    create_model_adapter,
    load_model,
    model_call,
    unfreeze_model,
)
from visionforge.compat.codavision.training import (
    PyTorchDeepLabV3PlusTrainer,
    PyTorchSegmentationTrainer,
    WeightedCrossEntropyLoss,
)

__all__ = [
    "DEFAULT_FRAMEWORK",
    "FrameworkConfig",
    "ModelDefaults",
    "get_pytorch_device",
    "PyTorchSegmentationDataset",
    "create_training_dataloader",
    "create_validation_dataloader",
    "get_tile_paths_from_directory",
    "PyTorchDeepLabV3Plus",
    "PyTorchKerasAdapter",
    "TensorFlowKerasAdapter",
    "create_model_adapter",
    "load_model",
    "model_call",
    "unfreeze_model",
    "PyTorchDeepLabV3PlusTrainer",
    "PyTorchSegmentationTrainer",
    "WeightedCrossEntropyLoss",
]
