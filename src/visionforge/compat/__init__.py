"""Compatibility layers: the names and habits of the systems visionforge replaces.

Each module is a thin translation onto the core API (one clean name per concept); see
``docs/migrating.md`` for every name and what differs on purpose.

- :mod:`visionforge.compat.codavision` -- CODAvision (``base.config``, ``base.models.*``,
  ``base.data.loaders_pytorch``): ``FrameworkConfig`` class methods, ``model_call``,
  ``PyTorchKerasAdapter``, the trainers and dataloader factories.
- :mod:`visionforge.compat.library` -- the modular library reference (``models``,
  ``training``, ``data``, ``evaluation``, ``explainability`` imports).
- :mod:`visionforge.compat.nntraining2` -- nnTraining2 (``nnTrainer.trainModel``,
  ``DeepEpiCnnModelPyTorch``, framework detection).
- :mod:`visionforge.compat.lightning` -- the Lightning vision framework (``BaseVisionModel``,
  ``BaseDataModule``, ``BaseCallback``, the interfaces as Protocols, ``TrainerFactory``).
"""
