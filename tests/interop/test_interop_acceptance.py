"""Acceptance: a typical Keras script on sklearn digits runs with only the model line changed
and reaches the accuracy of plain PyTorch training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from visionforge.interop import EarlyStopping, KerasAdapter


def _convnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 16, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def _plain_pytorch(x_train, y_train, x_test, y_test, epochs):
    torch.manual_seed(0)
    net = _convnet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    xt = torch.from_numpy(x_train).permute(0, 3, 1, 2).contiguous()
    yt = torch.from_numpy(y_train)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(xt)).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(x_test).permute(0, 3, 1, 2)).argmax(1).numpy()
    return float((pred == y_test).mean())


@pytest.mark.slow
def test_interop_keras_script_on_digits_matches_plain_pytorch(digits):
    x_train, x_test, y_train, y_test = digits
    to_categorical = lambda y: np.eye(10, dtype="float32")[y]  # noqa: E731  (keras.utils.to_categorical)

    # ---- the Keras script; only the next line differs from Keras ----
    torch.manual_seed(0)
    model = KerasAdapter(_convnet())
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(
        x_train,
        to_categorical(y_train),
        batch_size=32,
        epochs=15,
        verbose=0,
        validation_split=0.1,
        callbacks=[EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)],
    )
    score = model.evaluate(x_test, to_categorical(y_test), verbose=0)
    # -----------------------------------------------------------------
    n_epochs = len(model.history.history["loss"])
    plain = _plain_pytorch(
        x_train[: int(len(x_train) * 0.9)],
        y_train[: int(len(y_train) * 0.9)],
        x_test,
        y_test,
        epochs=n_epochs,
    )
    assert isinstance(score, list) and len(score) == 2
    assert score[1] >= 0.95 and plain >= 0.95
    assert abs(score[1] - plain) <= 0.03
    assert score[1] == pytest.approx(float((model.predict(x_test).argmax(-1) == y_test).mean()))
