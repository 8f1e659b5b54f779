"""KerasAdapter API: layouts, predict/evaluate, compile, weights, save/load, train_on_batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from visionforge.errors import ConfigError
from visionforge.interop import KerasAdapter, load_model
from visionforge.interop.keras_losses import get_loss


class TinySeg(nn.Module):
    def __init__(self, c_in: int = 3, classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, classes, 1)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))))


def _digits_net():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10)
    )


def test_interop_predict_nhwc_in_and_out_matches_forward():
    net = TinySeg().eval()
    x = np.random.default_rng(0).random((5, 16, 12, 3), dtype=np.float32)
    model = KerasAdapter(net)
    out = model.predict(x, batch_size=2, verbose=0)
    assert out.shape == (5, 16, 12, 4) and isinstance(out, np.ndarray)
    with torch.no_grad():
        ref = net(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(x[:2]), ref[:2], atol=1e-6)
    t = model(x[:1])
    assert isinstance(t, torch.Tensor) and tuple(t.shape) == (1, 16, 12, 4)
    probs = KerasAdapter(net, output_activation="softmax").predict(x)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_interop_predict_1d_blc_layout():
    net = nn.Sequential(
        nn.Conv1d(3, 4, 5), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2)
    ).eval()
    x = np.random.default_rng(1).random((6, 40, 3), dtype=np.float32)  # [B, length, channels]
    out = KerasAdapter(net).predict(x)
    with torch.no_grad():
        ref = net(torch.from_numpy(x).permute(0, 2, 1)).numpy()
    assert out.shape == (6, 2)
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_interop_call_training_flag_uses_train_mode():
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.9))
    x = np.ones((2, 4, 4, 1), dtype=np.float32)
    model = KerasAdapter(net)
    assert np.allclose(model(x, training=False).numpy(), 1.0)
    torch.manual_seed(0)
    assert not np.allclose(model(x, training=True).detach().numpy(), 1.0)


def test_interop_evaluate_returns_keras_shapes(digits):
    xtr, xte, ytr, yte = digits
    model = KerasAdapter(_digits_net())
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loss = model.evaluate(xte[:50], yte[:50], verbose=0)
    assert isinstance(loss, float)
    with torch.no_grad():
        logits = model.module(torch.from_numpy(xte[:50]).permute(0, 3, 1, 2))
        ref = nn.functional.cross_entropy(logits, torch.from_numpy(yte[:50]))
    assert loss == pytest.approx(float(ref), abs=1e-5)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss2, acc = model.evaluate(xte[:50], yte[:50], batch_size=7)
    assert loss2 == pytest.approx(loss, abs=1e-5)
    assert acc == pytest.approx(float((logits.argmax(1).numpy() == yte[:50]).mean()))
    d = model.evaluate(xte[:50], yte[:50], return_dict=True)
    assert list(d) == ["loss", "accuracy"] and model.metrics_names == ["loss", "accuracy"]


def test_interop_train_on_batch_lowers_loss(digits):
    xtr, _, ytr, _ = digits
    model = KerasAdapter(_digits_net())
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["acc"],
        learning_rate=1e-2,
    )
    first = model.test_on_batch(xtr[:64], ytr[:64])[0]
    for _ in range(30):
        model.train_on_batch(xtr[:64], ytr[:64])
    last, acc = model.test_on_batch(xtr[:64], ytr[:64])
    assert last < first * 0.5 and acc > 0.8


def test_interop_compile_errors_and_optimizers():
    model = KerasAdapter(_digits_net())
    with pytest.raises(ConfigError, match="compile"):
        model.evaluate(np.zeros((1, 8, 8, 1), "float32"), np.zeros(1, "int64"))
    with pytest.raises(ConfigError, match="unknown loss"):
        model.compile(loss="hinge_of_doom")
    with pytest.raises(ConfigError, match="unknown optimizer"):
        model.compile(optimizer="lion", loss="mse")
    model.compile(optimizer="adamw", loss="mse", learning_rate=0.05)
    assert isinstance(model.optimizer, torch.optim.AdamW) and model.learning_rate == 0.05
    opt = torch.optim.SGD(model.module.parameters(), lr=0.3)
    model.compile(optimizer=opt, loss="mse")
    assert model.optimizer is opt and model.loss == "mse"
    model.learning_rate = 0.1
    assert opt.param_groups[0]["lr"] == 0.1


def test_interop_weights_layers_summary_config(tmp_path):
    net = TinySeg()
    model = KerasAdapter(net)
    n = sum(p.numel() for p in net.parameters())
    assert model.count_params() == n
    text = model.summary(print_fn=lambda s: None)
    assert f"Total params: {n:,}" in text
    assert [layer.name for layer in model.layers] == ["conv", "bn", "head"]
    model.layers[0].trainable = False
    assert not net.conv.weight.requires_grad and not model.trainable
    model.trainable = True
    assert all(p.requires_grad for p in net.parameters())
    w = model.get_weights()
    other = KerasAdapter(TinySeg())
    other.set_weights(w)
    x = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(other.predict(x), model.predict(x), atol=1e-6)
    model.save_weights(tmp_path / "w.weights.h5")
    third = KerasAdapter(TinySeg())
    third.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_allclose(third.predict(x), model.predict(x), atol=1e-6)
    assert model.get_config()["data_format"] == "channels_last"
    with pytest.raises(Exception, match="expected"):
        other.set_weights(w[:-1])


def test_interop_save_as_keras_name_roundtrips_through_load_model(tmp_path):
    from visionforge.models import create_model

    model = KerasAdapter(
        create_model("resnet18", num_classes=3, in_chans=1), output_activation="softmax"
    )
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    path = model.save(tmp_path / "model.keras")
    assert (path / "model.json").is_file() and (path / "model.safetensors").is_file()
    loaded = load_model(tmp_path / "model.keras")
    assert isinstance(loaded, KerasAdapter) and loaded.output_activation == "softmax"
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), atol=1e-5)


def test_interop_class_weight_scales_training_loss():
    from visionforge.interop.criterion import KerasCriterion

    crit = KerasCriterion(
        get_loss("sparse_categorical_crossentropy"), class_weight={0: 2.0, 1: 0.0}
    )
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([0, 1])
    per = nn.functional.cross_entropy(logits, y, reduction="none")
    assert float(crit(logits, y)) == pytest.approx(float(per[0] * 2.0 / 2), abs=1e-6)
    crit.mode = "val"  # Keras applies class weights to training only
    assert float(crit(logits, y)) == pytest.approx(float(per.mean()), abs=1e-6)
