"""Dynamic batching: concurrent requests share forward passes, each gets its own answer;
a full queue answers 503 with Retry-After."""

from __future__ import annotations

import asyncio
import io
import threading

import httpx
import numpy as np
import pytest
from PIL import Image

from visionforge.inference import Predictor
from visionforge.serve import create_app
from visionforge.serve.batching import BatchSettings, DynamicBatcher, QueueFull


def _png(seed: int, h: int = 32, w: int = 32) -> tuple[bytes, np.ndarray]:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue(), arr


def test_batcher_splits_outputs_per_request():
    seen: list[int] = []

    def predict(imgs):  # a dict output, like a multitask model
        seen.append(len(imgs))
        x = np.array(imgs, dtype=np.float32)
        return {"double": x * 2, "neg": -x}

    b = DynamicBatcher(predict, BatchSettings(max_batch=8, max_wait_ms=200, max_queue=64))

    async def main():
        return await asyncio.gather(*(b.submit([i] * (1 + i % 2)) for i in range(6)))

    outs = asyncio.run(main())
    for i, out in enumerate(outs):
        n = 1 + i % 2
        assert out["double"].tolist() == [2.0 * i] * n and out["neg"].tolist() == [-float(i)] * n
    assert sum(seen) == 9 and max(seen) > 1  # shared passes, every image once


def test_batcher_refuses_when_queue_is_full_and_passes_errors():
    gate, entered = threading.Event(), threading.Event()

    def predict(imgs):
        entered.set()
        gate.wait(10)
        if "bad" in imgs:
            raise ValueError("bad image")
        return np.array([len(str(i)) for i in imgs])

    b = DynamicBatcher(predict, BatchSettings(max_batch=2, max_wait_ms=0, max_queue=2, workers=1))

    async def main():
        first = asyncio.ensure_future(b.submit(["a"]))
        while not entered.is_set():
            await asyncio.sleep(0.005)
        queued = [asyncio.ensure_future(b.submit([x])) for x in ("bb", "bad")]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull) as full:
            await b.submit(["ccc"])
        assert full.value.retry_after >= 1
        gate.set()
        assert (await first).tolist() == [1]
        with pytest.raises(ValueError, match="bad image"):  # its batch-mate gets the error too
            await asyncio.gather(*queued)

    asyncio.run(main())


async def _post_all(app, pngs, path="/predict"):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await asyncio.gather(
            *(
                c.post(path, files={"file": (f"{i}.png", p, "image/png")})
                for i, p in enumerate(pngs)
            )
        )


def test_concurrent_requests_get_their_own_results(classifier_dir):
    app = create_app(
        [classifier_dir], backend="torch", batching={"max_batch": 8, "max_wait_ms": 100}
    )
    pairs = [_png(i) for i in range(6)]
    responses = asyncio.run(_post_all(app, [p for p, _ in pairs]))
    ref = Predictor(classifier_dir, backend="torch").predict([a for _, a in pairs], layout="NHWC")
    names = app.state.store.all()[0].predictor.class_names
    for r, expected in zip(responses, ref):
        assert r.status_code == 200, r.text
        got = np.array([r.json()["probabilities"][n] for n in names])
        np.testing.assert_allclose(got, expected, atol=1e-4)
    (batcher,) = app.state.handlers.batchers._by_model.values()
    assert sum(batcher.batch_sizes) == 6 and max(batcher.batch_sizes) > 1


def test_full_queue_answers_503_with_retry_after(classifier_dir):
    app = create_app(
        [classifier_dir],
        backend="torch",
        batching={"max_batch": 2, "max_wait_ms": 0, "max_queue": 1, "workers": 1},
    )
    pred = app.state.store.all()[0].predictor
    gate, entered = threading.Event(), threading.Event()
    original = pred.predict

    def slow_predict(*a, **k):
        entered.set()
        gate.wait(10)
        return original(*a, **k)

    pred.predict = slow_predict
    pngs = [_png(i)[0] for i in range(3)]

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:

            def post(p):
                return c.post("/predict", files={"file": ("x.png", p, "image/png")})

            first = asyncio.ensure_future(post(pngs[0]))
            while not entered.is_set():
                await asyncio.sleep(0.005)
            second = asyncio.ensure_future(post(pngs[1]))  # waits in the queue (1 image)
            await asyncio.sleep(0.05)
            third = await post(pngs[2])
            gate.set()
            return third, await first, await second

    third, first, second = asyncio.run(main())
    assert third.status_code == 503 and int(third.headers["Retry-After"]) >= 1
    assert "busy" in third.json()["detail"]
    assert first.status_code == 200 and second.status_code == 200


def test_batching_settings_are_checked():
    from visionforge.errors import ConfigError

    with pytest.raises(ConfigError, match="queue"):
        BatchSettings(max_queue=0)
    assert not BatchSettings(max_batch=1).enabled
