"""KerasAdapter.fit on the engine: History keys and Keras callback behaviour."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch import nn

from visionforge.interop import (
    Callback,
    CSVLogger,
    EarlyStopping,
    KerasAdapter,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)


def _model(lr=1e-2):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    m = KerasAdapter(net)
    m.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        learning_rate=lr,
    )
    return m


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.weights, self.batches, self.epochs_begun, self.logs = [], 0, [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs_begun.append(epoch)

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        assert "loss" in logs and "accuracy" in logs

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())
        self.logs.append(dict(logs))


@pytest.fixture(scope="module")
def small(digits):
    xtr, xte, ytr, yte = digits
    return xtr[:320], ytr[:320], xte[:100], yte[:100]


def test_interop_fit_history_csv_scheduler_checkpoint(small, tmp_path):
    x, y, xv, yv = small
    model = _model()
    rec = Recorder()
    sched = LearningRateScheduler(lambda epoch, lr: 0.02 * 0.5**epoch)
    ckpt = ModelCheckpoint(
        tmp_path / "best.weights.h5",
        monitor="val_accuracy",
        save_best_only=True,
        save_weights_only=True,
    )
    history = model.fit(
        x,
        y,
        batch_size=64,
        epochs=3,
        validation_data=(xv, yv),
        verbose=0,
        callbacks=[rec, sched, CSVLogger(tmp_path / "log.csv"), ckpt],
    )
    h = history.history
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(h)
    assert all(len(v) == 3 for v in h.values()) and history.epoch == [0, 1, 2]
    assert h["learning_rate"] == pytest.approx([0.02, 0.01, 0.005])
    assert h["loss"][-1] < h["loss"][0] and model.history is history
    assert rec.batches == 3 * 5 and rec.epochs_begun == [0, 1, 2]
    # the epoch logs equal a fresh evaluation of the validation data at the end
    assert h["val_loss"][-1] == pytest.approx(model.evaluate(xv, yv, verbose=0)[0], abs=1e-5)
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert float(rows[2]["val_loss"]) == pytest.approx(h["val_loss"][2], rel=1e-5)
    best_epoch = int(np.argmax(h["val_accuracy"]))
    restored = _model()
    restored.load_weights(tmp_path / "best.weights.h5")
    for a, b in zip(restored.get_weights(), rec.weights[best_epoch], strict=True):
        np.testing.assert_array_equal(a, b)


def test_interop_fit_validation_split_takes_last_fraction(small):
    x, y, _, _ = small
    model = _model()
    seen = {}

    class Spy(Callback):
        def on_train_begin(self, logs=None):
            seen["steps"] = self.params["steps"]

    h = model.fit(
        x, y, batch_size=32, epochs=1, validation_split=0.25, verbose=0, callbacks=[Spy()]
    ).history
    assert seen["steps"] == 240 // 32 + 1
    assert h["val_loss"][0] == pytest.approx(model.evaluate(x[240:], y[240:])[0], abs=1e-5)


def test_interop_early_stopping_restores_best_weights(small):
    x, y, xv, yv = small
    model = _model()
    rec = Recorder()
    # min_delta so large that no epoch after the first counts as an improvement
    stop = EarlyStopping(monitor="loss", min_delta=1e9, patience=1, restore_best_weights=True)
    h = model.fit(x, y, batch_size=64, epochs=10, verbose=0, callbacks=[rec, stop]).history
    assert len(h["loss"]) == 2 and stop.stopped_epoch == 1 and stop.best_epoch == 0
    final = model.get_weights()
    for a, b in zip(final, rec.weights[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(final[1], rec.weights[1][1])


def test_interop_reduce_lr_on_plateau(small):
    x, y, _, _ = small
    model = _model(lr=0.01)
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e9, min_lr=0.003)
    h = model.fit(x, y, batch_size=64, epochs=4, verbose=0, callbacks=[cb]).history
    # epoch 0 sets the best; every later epoch is a plateau -> halve, floored at min_lr
    assert h["learning_rate"] == pytest.approx([0.01, 0.01, 0.005, 0.003])
    assert model.learning_rate == pytest.approx(0.003)


def test_interop_user_callback_stop_training(small):
    x, y, _, _ = small
    model = _model()

    class StopAfter(Callback):
        def __init__(self):
            super().__init__()
            self.n = 0

        def on_train_batch_end(self, batch, logs=None):
            self.n += 1
            if self.n == 3:
                self.model.stop_training = True

    cb = StopAfter()
    h = model.fit(x, y, batch_size=32, epochs=5, verbose=0, callbacks=[cb]).history
    assert cb.n == 3 and len(h["loss"]) == 1


def test_interop_terminate_on_nan(small):
    from visionforge.engine.callbacks.nan_guard import NonFiniteLossError

    x, y, _, _ = small
    bad = x.copy()
    bad[100:] = np.nan
    model = _model()
    before = model.get_weights()
    with pytest.raises(NonFiniteLossError):
        model.fit(bad, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    model = _model()
    term = TerminateOnNaN()
    seen = []

    class Spy(Callback):
        def on_train_end(self, logs=None):
            seen.append(logs["loss"])

    model.fit(bad, y, batch_size=32, epochs=2, shuffle=False, verbose=0, callbacks=[term, Spy()])
    assert model.stop_training and np.isnan(seen[-1])
    # the non-finite step never reached the weights
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert not all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
