"""TensorFlow backend: Keras losses semantics, cross-framework equivalence, .keras, TFLite,
model_call on both frameworks and a TF training run."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from visionforge.errors import UnknownNameError

HAS_TF = (
    importlib.util.find_spec("tensorflow") is not None
    and importlib.util.find_spec("keras") is not None
)
pytestmark = pytest.mark.skipif(
    not HAS_TF, reason='TensorFlow not installed (pip install "visionforge[tf]")'
)


@pytest.fixture(scope="module")
def keras():
    from visionforge.interop.tensorflow import require_tensorflow

    return require_tensorflow("tests")[1]


def _calibrate_bn(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Non-trivial BN statistics: random affine params, running stats measured on ``x``
    (then variance doubled, so the net stays well conditioned), eval mode; the last layer is
    scaled so logits are O(1) (an absolute 1e-4 bound on outputs of magnitude 100 would only
    measure float32 rounding)."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            m.momentum = None
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            m.running_var.mul_(2.0)
            assert not torch.allclose(m.running_mean, torch.zeros_like(m.running_mean))
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)][-1]
    with torch.no_grad():
        scale = float(model(x).std())
        last.weight.div_(scale)
        last.bias.div_(scale)


@pytest.mark.parametrize("from_logits", [False, True])
def test_interop_losses_match_keras(keras, from_logits):
    from visionforge.interop.keras_losses import get_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 4, 6)).astype("float32")  # NHWC segmentation output
    pred = logits if from_logits else np.asarray(keras.ops.softmax(logits, axis=-1))
    sparse = rng.integers(0, 6, size=(3, 5, 4))
    onehot = np.eye(6, dtype="float32")[sparse]
    tp, ts, to = torch.from_numpy(pred), torch.from_numpy(sparse), torch.from_numpy(onehot)
    cases = [
        (
            "categorical_crossentropy",
            keras.losses.CategoricalCrossentropy(from_logits=from_logits),
            onehot,
            to,
        ),
        (
            "sparse_categorical_crossentropy",
            keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
            sparse,
            ts,
        ),
    ]
    for name, ref_fn, y_np, y_t in cases:
        ours = float(get_loss(name, from_logits=from_logits)(y_t, tp))
        assert ours == pytest.approx(float(ref_fn(y_np, pred)), abs=1e-5), name
        # a Keras loss object given to compile is translated with its own from_logits
        assert float(get_loss(ref_fn)(y_t, tp)) == pytest.approx(ours, abs=1e-6)
    bin_logits = rng.normal(size=(8, 3)).astype("float32")
    bin_pred = bin_logits if from_logits else 1 / (1 + np.exp(-bin_logits))
    bin_true = rng.integers(0, 2, size=(8, 3)).astype("float32")
    ref = keras.losses.BinaryCrossentropy(from_logits=from_logits)(bin_true, bin_pred)
    ours = get_loss("binary_crossentropy", from_logits=from_logits)(
        torch.from_numpy(bin_true), torch.from_numpy(bin_pred)
    )
    assert float(ours) == pytest.approx(float(ref), abs=1e-5)
    ref = keras.losses.MeanSquaredError()(bin_true, bin_pred)
    assert float(
        get_loss("mse")(torch.from_numpy(bin_true), torch.from_numpy(bin_pred))
    ) == pytest.approx(float(ref), abs=1e-5)


def test_interop_metrics_match_keras(keras):
    from visionforge.interop.keras_metrics import get_metric

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 6, 6, 3)).astype("float32")
    y = rng.integers(0, 3, size=(4, 6, 6))
    ours = get_metric("mean_iou")
    ours.update(torch.from_numpy(y), torch.from_numpy(logits), from_logits=True)
    ref = keras.metrics.MeanIoU(num_classes=3)
    ref.update_state(y, logits.argmax(-1))
    assert ours.result() == pytest.approx(float(ref.result()), abs=1e-6)
    acc = get_metric("accuracy")
    acc.update(
        torch.from_numpy(np.eye(3, dtype="float32")[y]), torch.from_numpy(logits), from_logits=True
    )
    ref = keras.metrics.CategoricalAccuracy()
    ref.update_state(np.eye(3, dtype="float32")[y], logits)
    assert acc.result() == pytest.approx(float(ref.result()), abs=1e-6)


def _equivalence(torch_name, torch_kwargs, keras_model, x_nhwc_or_nlc):
    from visionforge.interop import keras_to_torch, torch_to_keras
    from visionforge.models import create_model

    torch.manual_seed(0)
    tm = create_model(torch_name, **torch_kwargs)
    xt = torch.from_numpy(x_nhwc_or_nlc).movedim(-1, 1).contiguous()
    _calibrate_bn(tm, xt)
    report = torch_to_keras(tm, keras_model)
    assert report.num_tensors > 0 and not report.unmatched_torch
    with torch.no_grad():
        ref = tm(xt).movedim(1, -1).numpy()
    out = np.asarray(keras_model(x_nhwc_or_nlc, training=False))
    assert out.shape == ref.shape
    assert float(ref.std()) > 1e-2  # not a trivially constant output
    assert np.abs(out - ref).max() <= 1e-4
    # and back: Keras weights into a fresh PyTorch model give the same outputs
    fresh = create_model(torch_name, **torch_kwargs).eval()
    keras_to_torch(keras_model, fresh)
    with torch.no_grad():
        back = fresh(xt).movedim(1, -1).numpy()
    assert np.abs(back - out).max() <= 1e-4
    trainable = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    assert trainable == sum(p.numel() for p in tm.parameters())


def test_interop_equivalence_deeplabv3plus(keras):
    from visionforge.interop.tensorflow.models import build_deeplabv3plus

    x = (np.random.default_rng(0).random((2, 64, 64, 3)) * 255).astype("float32")
    _equivalence("DeepLabV3_plus", {"num_classes": 5}, build_deeplabv3plus(64, 5), x)


def test_interop_equivalence_unet(keras):
    from visionforge.interop.tensorflow.models import build_unet

    kw = {"backbone": "resnet18", "num_classes": 3, "decoder_channels": [64, 32, 16, 16]}
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    _equivalence("unet", kw, build_unet(32, 3, decoder_channels=[64, 32, 16, 16]), x)


def test_interop_equivalence_deepepicnn(keras):
    from visionforge.interop.tensorflow.models import build_deepepicnn

    x = np.random.default_rng(0).normal(size=(4, 750, 1)).astype("float32")
    _equivalence("DeepEpiCnn", {"num_classes": 2}, build_deepepicnn(2), x)


def test_interop_model_call_frameworks(keras):
    from visionforge.interop import KerasAdapter, model_call

    pt = model_call("DeepEpiCnn", 750, 2, framework="pytorch")
    assert isinstance(pt, KerasAdapter)
    raw = model_call(
        "UNet", 32, 3, framework="pytorch", wrap_with_adapter=False, backbone="resnet18"
    )
    assert isinstance(raw, torch.nn.Module) and raw.visionforge_spec["name"] == "unet"
    assert isinstance(
        model_call("resnet1d", None, 4, framework="pytorch", in_chans=3), KerasAdapter
    )
    tf_model = model_call("DeepEpiCnn", 750, 2, framework="tensorflow")
    assert isinstance(tf_model, keras.Model) and tf_model.output_shape == (None, 2)
    with pytest.raises(UnknownNameError, match="TensorFlow has: DeepEpiCnn, DeepLabV3_plus, UNet"):
        model_call("resnet1d", 32, 2, framework="tensorflow")
    with pytest.raises(UnknownNameError, match="resnet1d"):  # did-you-mean from the registry
        model_call("resnet1dd", 32, 2, framework="pytorch")


def test_interop_tf_training_via_model_call_save_load_and_tflite(keras, tmp_path):
    """The same Keras-style script on the TF backend: compile/fit/evaluate, .keras, TFLite."""
    from visionforge.interop import export_tflite, load_model, model_call
    from visionforge.interop.tensorflow.tflite import run_tflite

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n, length = 64, 750
    y = rng.integers(0, 2, n)
    t = np.arange(length) / 25.0
    x = rng.normal(0, 0.3, (n, length, 1)).astype("float32")
    x[y == 1, :, 0] += np.sin(2 * np.pi * 3 * t).astype("float32")
    model = model_call(
        "DeepEpiCnn", length, 2, framework="tensorflow", l2_regularization_weight=1e-4
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    first = model.evaluate(x, y, verbose=0)[0]
    hist = model.fit(x, y, batch_size=16, epochs=4, verbose=0, validation_split=0.25)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(hist.history)
    assert hist.history["loss"][-1] < first
    path = tmp_path / "epi.keras"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_allclose(
        loaded.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0), atol=1e-5
    )
    out = export_tflite(model, tmp_path / "epi.tflite", sample=x[:1])
    np.testing.assert_allclose(run_tflite(out, x[:1]), model.predict(x[:1], verbose=0), atol=1e-4)


def test_interop_tflite_segmentation_model(keras, tmp_path):
    from visionforge.interop import export_tflite
    from visionforge.interop.tensorflow.models import build_unet
    from visionforge.interop.tensorflow.tflite import run_tflite

    model = build_unet(32, 2, decoder_channels=[32, 16, 16, 16])
    x = np.random.default_rng(0).random((1, 32, 32, 3)).astype("float32")
    out = export_tflite(model, tmp_path / "unet.tflite", sample=x)
    assert out.stat().st_size > 10_000
    got = run_tflite(out, x)
    assert got.shape == (1, 32, 32, 2)
    np.testing.assert_allclose(got, np.asarray(model(x, training=False)), atol=1e-4)
