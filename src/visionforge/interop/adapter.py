"""``KerasAdapter``: the Keras model API (NHWC NumPy in and out) over any PyTorch module.

Keras code runs unchanged with only the model construction line changed::

    model = KerasAdapter(create_model("resnet18", num_classes=10, in_chans=1))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=5, validation_split=0.1)
    score = model.evaluate(x_test, y_test)

Inputs are channels-last like Keras (``[B, H, W, C]`` images, ``[B, length, channels]``
signals) and are permuted to PyTorch's channels-first layout inside; outputs are
permuted back. ``fit`` runs on :class:`visionforge.engine.Trainer` (Lightning).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from visionforge.errors import ConfigError, WeightsError
from visionforge.interop.criterion import KerasCriterion
from visionforge.interop.keras_callbacks import Callback, History
from visionforge.interop.keras_losses import get_loss
from visionforge.interop.layout import (
    as_float_tensor,
    as_target_tensor,
    check_layout,
    to_channels_first,
    to_channels_last,
)
from visionforge.interop.module_weights import ModuleWeights
from visionforge.models.contract import InputContract
from visionforge.models.spec import model_contract, model_meta, model_spec
from visionforge.registry import Registry

__all__ = [
    "KerasAdapter",
    "LayerView",
    "KERAS_OPTIMIZERS",
    "to_channels_first",
    "to_channels_last",
]

# Keras' optimizer defaults (learning rate, epsilon) so "adam" means what it means in Keras.
# Looked up by name or by a Keras optimizer's class name (case-insensitive).
KERAS_OPTIMIZERS = Registry("keras optimizer")
KERAS_OPTIMIZERS.add("adam", torch.optim.Adam, defaults={"lr": 1e-3, "eps": 1e-7})
KERAS_OPTIMIZERS.add(
    "adamw", torch.optim.AdamW, defaults={"lr": 1e-3, "eps": 1e-7, "weight_decay": 0.004}
)
KERAS_OPTIMIZERS.add("sgd", torch.optim.SGD, defaults={"lr": 1e-2})
KERAS_OPTIMIZERS.add(
    "rmsprop", torch.optim.RMSprop, defaults={"lr": 1e-3, "alpha": 0.9, "eps": 1e-7}
)
_KERAS_OPTIMIZERS = KERAS_OPTIMIZERS  # old private name


class LayerView(ModuleWeights):
    """A top-level submodule seen as a Keras layer (``name``, settable ``trainable``, weights)."""

    def __init__(self, name: str, module: nn.Module) -> None:
        self.name = name
        self.module = module

    def __repr__(self) -> str:
        return f"<LayerView {self.name}: {type(self.module).__name__}>"


class KerasAdapter(ModuleWeights):
    """Wrap an ``nn.Module`` with the Keras model API.

    Args:
        module: any PyTorch module (our registry's models output logits).
        outputs: ``"logits"`` (default: loss names are applied with ``from_logits=True``;
            ``predict`` returns logits unless ``output_activation`` is set) or ``"probabilities"``.
        output_activation: ``None``, ``"softmax"`` or ``"sigmoid"`` applied by ``predict``/
            ``__call__`` (e.g. to return probabilities like a Keras model ending in softmax).
        data_format: ``"channels_last"`` (Keras default) or ``"channels_first"`` (no permutes).
        device: ``None`` = where the module's parameters are; or ``"cpu"``/``"cuda"``/``"auto"``.
        name: model name shown by ``summary``.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        outputs: str = "logits",
        output_activation: str | None = None,
        data_format: str = "channels_last",
        device: str | torch.device | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(module, nn.Module):
            raise ConfigError(f"KerasAdapter wraps a torch.nn.Module, got {type(module).__name__}")
        if outputs not in ("logits", "probabilities"):
            raise ConfigError(f"outputs must be 'logits' or 'probabilities', got {outputs!r}")
        if output_activation not in (None, "softmax", "sigmoid"):
            raise ConfigError(
                f"output_activation must be None, 'softmax' or 'sigmoid', got {output_activation!r}"
            )
        if data_format not in ("channels_last", "channels_first"):
            raise ConfigError(
                f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
            )
        self.module = module
        self.outputs = outputs
        self.output_activation = output_activation
        self.data_format = data_format
        self.name = name or type(module).__name__
        if device is not None:
            from visionforge.config.framework import resolve_device

            self.module.to(resolve_device(str(device)))
        self.stop_training = False
        self.history: History | None = None
        self.engine_trainer: Any = None  # the engine Trainer of the last fit
        self.l2_regularization_weight = 0.0
        self._optimizer: torch.optim.Optimizer | None = None
        self._optimizer_spec: Any = None
        self._loss_spec: Any = None
        self._metric_specs: list[Any] = []
        self._criterion: KerasCriterion | None = None
        self._compiled = False
        # What the wrapped model takes (declared at registration or recorded in model.json);
        # None for a foreign module, whose input rank is then not checked.
        self.input_contract: InputContract | None = (
            model_contract(module) if (model_spec(module) or model_meta(module)) else None
        )

    # ------------------------------------------------------------------ layout
    @property
    def current_device(self) -> torch.device:
        """Device of the module's parameters (CPU for a parameter-free module)."""
        for p in self.module.parameters():
            return p.device
        for b in self.module.buffers():
            return b.device
        return torch.device("cpu")

    def _input(self, x: Any) -> torch.Tensor:
        if isinstance(x, Mapping | list | tuple) and not isinstance(x, np.ndarray):
            raise ConfigError("KerasAdapter takes one input array (NumPy or tensor)")
        t = as_float_tensor(x)
        if self.data_format == "channels_last":
            layout = self.input_contract.layout if self.input_contract is not None else None
            check_layout(t, layout, who=self.name)
            t = to_channels_first(t)
        return t.to(self.current_device, non_blocking=True)

    def preprocess(self, x01: Any) -> np.ndarray:
        """Float RGB in ``[0, 1]`` (channels-last NumPy) -> what this model takes, per its
        :attr:`input_contract` (value range, channel order, mean/std); channels-last out.

        Keras feeds arrays unchanged, so ``fit``/``predict`` do not call this themselves;
        call it on raw ``[0, 1]`` images when the model declares another range or statistics.
        """
        x = np.asarray(x01, dtype=np.float32)
        if self.input_contract is None:
            return x
        channel_dim = (
            -1
            if self.data_format == "channels_last"
            else (-3 if self.input_contract.layout == "NCHW" else -2)
        )
        return np.asarray(self.input_contract.apply(x, channel_dim=channel_dim), dtype=np.float32)

    def _output(self, y: Any) -> Any:
        if isinstance(y, Mapping):
            return {k: self._output(v) for k, v in y.items()}
        if isinstance(y, list | tuple):
            return type(y)(self._output(v) for v in y)
        if self.output_activation == "softmax":
            y = torch.softmax(y, dim=1 if y.dim() > 1 else 0)
        elif self.output_activation == "sigmoid":
            y = torch.sigmoid(y)
        return to_channels_last(y) if self.data_format == "channels_last" else y

    @staticmethod
    def _to_numpy(y: Any) -> Any:
        if isinstance(y, Mapping):
            return {k: KerasAdapter._to_numpy(v) for k, v in y.items()}
        if isinstance(y, list | tuple):
            return type(y)(KerasAdapter._to_numpy(v) for v in y)
        return y.detach().cpu().numpy()

    # --------------------------------------------------------------- inference
    def __call__(self, x: Any, training: bool = False) -> Any:
        """Forward pass like ``keras.Model.__call__``: returns torch tensors, channels-last.

        ``training=False`` runs in eval mode without gradients; ``training=True`` runs in
        train mode with autograd (dropout/BN active) as Keras does.
        """
        was_training = self.module.training
        self.module.train(bool(training))
        try:
            if training:
                out = self.module(self._input(x))
            else:
                with torch.inference_mode():
                    out = self.module(self._input(x))
        finally:
            self.module.train(was_training)
        return self._output(out)

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: Sequence[Callback] | None = None,
    ) -> Any:
        """Predict in batches (default 32); returns NumPy arrays in channels-last layout."""
        arr = x if isinstance(x, torch.Tensor) else np.asarray(x)
        n = len(arr)
        bs = int(batch_size or 32)
        if bs < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        total = math.ceil(n / bs)
        if steps is not None:
            total = min(total, int(steps))
        cbs = list(callbacks or [])
        for cb in cbs:
            cb.set_model(self)
            cb.on_predict_begin()
        was_training = self.module.training
        self.module.eval()
        chunks: list[Any] = []
        try:
            with torch.inference_mode():
                for i in range(total):
                    for cb in cbs:
                        cb.on_predict_batch_begin(i)
                    out = self._to_numpy(
                        self._output(self.module(self._input(arr[i * bs : (i + 1) * bs])))
                    )
                    chunks.append(out)
                    for cb in cbs:
                        cb.on_predict_batch_end(i, {"outputs": out})
        finally:
            self.module.train(was_training)
        for cb in cbs:
            cb.on_predict_end()
        return _concat(chunks)

    def predict_on_batch(self, x: Any) -> Any:
        """Predict one batch (no batching); NumPy out."""
        return self._to_numpy(self(x, training=False))

    # ----------------------------------------------------------------- compile
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Iterable[Any] | None = None,
        *,
        learning_rate: float | None = None,
        weight_decay: float | None = None,
        loss_weights: Any = None,
        run_eagerly: bool | None = None,
        jit_compile: Any = None,
        **kwargs: Any,
    ) -> None:
        """Configure training like ``keras.Model.compile``.

        Args:
            optimizer: ``"adam"``, ``"adamw"``, ``"sgd"``, ``"rmsprop"`` (Keras defaults), a
                ``torch.optim.Optimizer`` over this module's parameters, or a Keras optimizer
                object (translated by class and config).
            loss: a Keras loss name (applied with ``from_logits`` = whether the model outputs
                logits), a ``visionforge.interop`` loss object, a Keras loss object, or a callable
                ``loss(y_true, y_pred)`` on channels-last tensors.
            metrics: Keras metric names (``accuracy``, ``sparse_categorical_accuracy``,
                ``categorical_accuracy``, ``binary_accuracy``, ``mean_iou``) or objects.
            learning_rate: overrides the optimizer's default learning rate.
            weight_decay: optimizer weight decay (added to an L2 regularisation weight from
                :func:`~visionforge.interop.model_call`).
        """
        if kwargs:
            raise ConfigError(f"compile: unsupported argument(s) {sorted(kwargs)}")
        if loss_weights is not None:
            raise ConfigError("compile: loss_weights (multi-output models) is not supported")
        self._optimizer_spec = optimizer
        self._optimizer = self._make_optimizer(optimizer, learning_rate, weight_decay)
        self._loss_spec = loss
        self._metric_specs = list(metrics or [])
        if loss is not None:
            self._criterion = KerasCriterion(
                get_loss(loss, from_logits=self.outputs == "logits"),
                self._metric_specs,
                from_logits=self.outputs == "logits",
            )
        else:
            self._criterion = None
        self._compiled = True

    def _make_optimizer(
        self, spec: Any, lr: float | None, wd: float | None
    ) -> torch.optim.Optimizer:
        params = [p for p in self.module.parameters() if p.requires_grad]
        # Keras' kernel L2 penalty w * sum(W^2) has gradient 2w W: coupled weight decay 2w.
        l2 = 2.0 * float(self.l2_regularization_weight or 0.0)
        if isinstance(spec, torch.optim.Optimizer):
            if lr is not None:
                for g in spec.param_groups:
                    g["lr"] = lr
            return spec
        if isinstance(spec, str):
            cls, kwargs = _optimizer_entry(f"unknown optimizer {spec!r}", spec.strip())
        elif type(spec).__module__.startswith("keras"):
            cls, kwargs = _keras_optimizer_kwargs(spec)
        else:
            raise ConfigError(
                f"optimizer must be a name, a torch.optim.Optimizer or a Keras optimizer, got {type(spec).__name__}"
            )
        if lr is not None:
            kwargs["lr"] = float(lr)
        if wd is not None:
            kwargs["weight_decay"] = float(wd)
        if l2:
            kwargs["weight_decay"] = kwargs.get("weight_decay", 0.0) + l2
        return cls(params, **kwargs)

    def _require_compiled(self, what: str) -> KerasCriterion:
        if not self._compiled or self._criterion is None:
            raise ConfigError(f"{what}: call compile(optimizer=..., loss=..., metrics=[...]) first")
        return self._criterion

    # --------------------------------------------------------------- training
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: Sequence[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: Mapping[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_freq: int = 1,
        **engine_kwargs: Any,
    ) -> History:
        """Train like ``keras.Model.fit`` on :class:`visionforge.engine.Trainer`.

        Extra keyword arguments go to the engine's ``Trainer`` (e.g. ``mixed_precision=True``,
        ``device="cuda"``, ``output_dir=...``). Returns the :class:`History` callback.
        """
        from visionforge.interop.engine_bridge import run_fit

        criterion = self._require_compiled("fit")
        if sample_weight is not None:
            raise ConfigError("fit: sample_weight is not supported; use class_weight")
        if steps_per_epoch is not None or validation_steps is not None:
            raise ConfigError(
                "fit: steps_per_epoch/validation_steps need a generator input; pass arrays"
            )
        if x is None or y is None:
            raise ConfigError("fit: pass x and y arrays")
        if len(x) != len(y):
            raise ConfigError(f"fit: x has {len(x)} samples but y has {len(y)}")
        x_val = y_val = None
        if validation_data is not None:
            if len(validation_data) < 2:
                raise ConfigError("fit: validation_data must be (x_val, y_val)")
            x_val, y_val = validation_data[0], validation_data[1]
        elif validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ConfigError(
                    f"fit: validation_split must be in (0, 1), got {validation_split}"
                )
            # Keras holds out the *last* fraction of the arrays, before shuffling.
            split = int(len(x) * (1.0 - validation_split))
            x, x_val = x[:split], x[split:]
            y, y_val = y[:split], y[split:]
        criterion.class_weight = dict(class_weight) if class_weight else None
        self.stop_training = False
        result = run_fit(
            self,
            criterion,
            x,
            y,
            x_val,
            y_val,
            batch_size=int(batch_size or 32),
            epochs=int(epochs),
            initial_epoch=int(initial_epoch),
            shuffle=bool(shuffle),
            callbacks=list(callbacks or []),
            verbose=verbose,
            validation_freq=int(validation_freq),
            engine_kwargs=engine_kwargs,
        )
        self.history = result.history
        self.engine_trainer = result.trainer
        return result.history

    def _targets(self, y: Any) -> torch.Tensor:
        return as_target_tensor(y).to(self.current_device)

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Sequence[Callback] | None = None,
        return_dict: bool = False,
    ) -> Any:
        """Loss (and metrics) on ``x, y``: a float, ``[loss, *metrics]`` or a dict."""
        criterion = self._require_compiled("evaluate")
        if sample_weight is not None:
            raise ConfigError("evaluate: sample_weight is not supported")
        if len(x) != len(y):
            raise ConfigError(f"evaluate: x has {len(x)} samples but y has {len(y)}")
        bs = int(batch_size or 32)
        n_batches = math.ceil(len(x) / bs)
        if steps is not None:
            n_batches = min(n_batches, int(steps))
        cbs = list(callbacks or [])
        for cb in cbs:
            cb.set_model(self)
            cb.on_test_begin()
        was_training, old_mode = self.module.training, criterion.mode
        self.module.eval()
        criterion.mode = "val"
        criterion.reset("val")
        try:
            with torch.inference_mode():
                for i in range(n_batches):
                    for cb in cbs:
                        cb.on_test_batch_begin(i)
                    sl = slice(i * bs, (i + 1) * bs)
                    out = self.module(self._input(x[sl]))
                    criterion(out, self._targets(y[sl]))
                    for cb in cbs:
                        cb.on_test_batch_end(i, self._strip(criterion.logs("val")))
        finally:
            self.module.train(was_training)
            criterion.mode = old_mode
        logs = self._strip(criterion.logs("val"))
        for cb in cbs:
            cb.on_test_end(logs)
        return self._format_result(logs, return_dict)

    @staticmethod
    def _strip(logs: Mapping[str, float]) -> dict[str, float]:
        return {k.removeprefix("val_"): v for k, v in logs.items()}

    def _format_result(self, logs: dict[str, float], return_dict: bool) -> Any:
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: Mapping[int, float] | None = None,
        return_dict: bool = False,
    ) -> Any:
        """One optimiser step on one batch; returns the loss (and metrics) of that batch."""
        criterion = self._require_compiled("train_on_batch")
        if sample_weight is not None:
            raise ConfigError("train_on_batch: sample_weight is not supported; use class_weight")
        assert self._optimizer is not None
        old_cw = criterion.class_weight
        criterion.class_weight = dict(class_weight) if class_weight else None
        criterion.mode = "train"
        criterion.reset("train")
        self.module.train()
        try:
            self._optimizer.zero_grad(set_to_none=True)
            loss = criterion(self.module(self._input(x)), self._targets(y))
            loss.backward()
            self._optimizer.step()
        finally:
            criterion.class_weight = old_cw
        return self._format_result(criterion.logs("train"), return_dict)

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """Loss (and metrics) of one batch, no update."""
        return self.evaluate(x, y, batch_size=len(x), return_dict=return_dict)

    # ------------------------------------------------------------- properties
    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        return self._optimizer

    @property
    def loss(self) -> Any:
        return self._loss_spec

    @property
    def metrics(self) -> list[Any]:
        return list(self._metric_specs)

    @property
    def metrics_names(self) -> list[str]:
        if self._criterion is None:
            return []
        return ["loss", *self._criterion.metric_names]

    @property
    def learning_rate(self) -> float:
        """The optimizer's learning rate (first parameter group); settable."""
        if self._optimizer is None:
            raise ConfigError("learning_rate: call compile() first")
        return float(self._optimizer.param_groups[0]["lr"])

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if self._optimizer is None:
            raise ConfigError("learning_rate: call compile() first")
        for g in self._optimizer.param_groups:
            g["lr"] = float(value)

    @property
    def layers(self) -> list[LayerView]:
        return [LayerView(n, m) for n, m in self.module.named_children()]

    def get_layer(self, name: str | None = None, index: int | None = None) -> LayerView:
        layers = self.layers
        if index is not None:
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ConfigError(f"no layer {name!r}; layers: {', '.join(lv.name for lv in layers)}")

    @property
    def trainable_weights(self) -> list[torch.Tensor]:
        return [p for p in self.module.parameters() if p.requires_grad]

    @property
    def non_trainable_weights(self) -> list[torch.Tensor]:
        return [p for p in self.module.parameters() if not p.requires_grad] + list(
            self.module.buffers()
        )

    def summary(self, print_fn: Any = None) -> str:
        """Print (and return) a table of top-level layers and parameter counts."""
        rows = [
            (n, type(m).__name__, sum(p.numel() for p in m.parameters()))
            for n, m in self.module.named_children()
        ]
        width = max([len(r[0]) for r in rows] + [10])
        lines = [
            f'Model: "{self.name}"',
            f"{'Layer':<{width}}  {'Type':<28} {'Param #':>12}",
            "-" * (width + 43),
        ]
        lines += [f"{n:<{width}}  {t:<28} {c:>12,}" for n, t, c in rows]
        total = self.count_params()
        trainable = sum(p.numel() for p in self.module.parameters() if p.requires_grad)
        lines += [
            "-" * (width + 43),
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
        ]
        text = "\n".join(lines)
        (print_fn or print)(text)
        return text

    def get_config(self) -> dict[str, Any]:
        spec = model_spec(self.module)
        contract = self.input_contract
        return {
            "name": self.name,
            "module": f"{type(self.module).__module__}.{type(self.module).__name__}",
            "spec": spec,
            "outputs": self.outputs,
            "output_activation": self.output_activation,
            "data_format": self.data_format,
            "input_contract": contract.to_dict() if contract is not None else None,
        }

    # ---------------------------------------------------------------- weights
    def save_weights(self, filepath: str | os.PathLike[str], overwrite: bool = True) -> None:
        """Write the weights as safetensors (whatever the suffix), atomically."""
        from safetensors.torch import save_model

        from visionforge.io import atomic_write

        path = Path(filepath)
        if path.exists() and not overwrite:
            raise WeightsError(f"{path}: exists and overwrite=False")
        with atomic_write(path) as tmp:
            save_model(self.module, str(tmp))

    def load_weights(self, filepath: str | os.PathLike[str], skip_mismatch: bool = False) -> None:
        """Load weights written by :meth:`save_weights`, a model dir, or a ``.pth`` state dict."""
        from visionforge.io import load_state_dict_file
        from visionforge.models.model_dir import WEIGHTS_FILE

        path = Path(filepath)
        if path.is_dir():
            path = path / WEIGHTS_FILE
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found")
        try:
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        except Exception:
            state = load_state_dict_file(path)
        result = self.module.load_state_dict(state, strict=not skip_mismatch)
        if skip_mismatch and (result.missing_keys or result.unexpected_keys):
            import warnings

            warnings.warn(
                f"load_weights({path}): missing {result.missing_keys}, unexpected {result.unexpected_keys}",
                stacklevel=2,
            )

    def save(self, filepath: str | os.PathLike[str], overwrite: bool = True, **meta: Any) -> Path:
        """Save the whole model as a visionforge model dir at ``filepath``.

        A ``.keras``/``.h5`` name is accepted so Keras scripts run unchanged; the path
        becomes a model dir (``model.safetensors`` + ``model.json``), which
        :func:`visionforge.interop.load_model` reads back as a PyTorch model.
        ``meta`` goes to :func:`~visionforge.models.save_model_dir` (``class_names``...).
        """
        from visionforge.models.model_dir import save_model_dir

        path = Path(filepath)
        if path.is_file():
            if not overwrite:
                raise WeightsError(f"{path}: exists and overwrite=False")
            raise WeightsError(
                f"{path}: is a file; a PyTorch model is saved as a model dir (a folder). "
                "Choose another path or use save_weights()"
            )
        extra = dict(meta.pop("extra", None) or {})
        extra["keras_adapter"] = {
            "outputs": self.outputs,
            "output_activation": self.output_activation,
            "data_format": self.data_format,
        }
        if self.input_contract is not None:
            # model.json records what the model takes, so a reload feeds it the same way.
            meta.setdefault("preprocessing", self.input_contract)
        return save_model_dir(self.module, path, extra=extra, **meta)

    def __repr__(self) -> str:
        return f"KerasAdapter({type(self.module).__name__}, params={self.count_params():,}, device={self.current_device})"


def _optimizer_entry(what: str, key: str) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """The torch optimizer class and a copy of its Keras defaults for ``key``."""
    if key not in KERAS_OPTIMIZERS:
        raise ConfigError(
            f"{what} is not supported; choose one of "
            f"{', '.join(KERAS_OPTIMIZERS.list())} or pass a torch.optim.Optimizer"
        )
    entry = KERAS_OPTIMIZERS.entry(key)
    return entry.obj, dict(entry.metadata["defaults"])


def _keras_optimizer_kwargs(spec: Any) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """Translate a ``keras.optimizers.*`` object (class name and config) to torch."""
    cfg = spec.get_config()
    cls, kwargs = _optimizer_entry(f"Keras optimizer {type(spec).__name__}", type(spec).__name__)
    key = KERAS_OPTIMIZERS.canonical(type(spec).__name__)
    rate = cfg.get("learning_rate")
    if isinstance(rate, int | float):
        kwargs["lr"] = float(rate)
    if "epsilon" in cfg and "eps" in kwargs:
        kwargs["eps"] = float(cfg["epsilon"])
    if key in ("adam", "adamw"):
        kwargs["betas"] = (float(cfg.get("beta_1", 0.9)), float(cfg.get("beta_2", 0.999)))
    if key == "sgd":
        kwargs["momentum"] = float(cfg.get("momentum", 0.0))
        kwargs["nesterov"] = bool(cfg.get("nesterov", False))
    if cfg.get("weight_decay"):
        kwargs["weight_decay"] = float(cfg["weight_decay"])
    return cls, kwargs


def _concat(chunks: list[Any]) -> Any:
    if not chunks:
        return np.zeros((0,), dtype=np.float32)
    first = chunks[0]
    if isinstance(first, Mapping):
        return {k: _concat([c[k] for c in chunks]) for k in first}
    if isinstance(first, list | tuple):
        return type(first)(_concat([c[i] for c in chunks]) for i in range(len(first)))
    return first if len(chunks) == 1 else np.concatenate(chunks, axis=0)
