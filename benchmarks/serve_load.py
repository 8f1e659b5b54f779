"""Load test of ``visionforge serve`` on loopback: throughput, p50/p99 latency, errors.

Starts the FastAPI app with uvicorn on 127.0.0.1 (random free port) serving a small
classifier, then sends ``--requests`` POST /predict calls (PNG uploads) from
``--clients`` concurrent clients, stopping at ``--max-seconds``. The baseline is the
same predictions made in-process with ``Predictor.predict`` one image at a time
(no HTTP); the ratio shows what the HTTP layer costs.

    python benchmarks/serve_load.py [--requests 1000] [--clients 16] [--max-seconds 120]
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()

    import httpx
    import torch
    import uvicorn
    from PIL import Image

    from visionforge.models import create_model, save_model_dir
    from visionforge.serve import create_app

    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="vf_serve_"))
    mdir = save_model_dir(
        create_model("resnet18", num_classes=10),
        tmp / "digits",
        class_names=[str(i) for i in range(10)],
        input_size=[3, args.size, args.size],
    )
    rng = np.random.default_rng(0)
    pngs = []
    for _ in range(16):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)).save(
            buf, "PNG"
        )
        pngs.append(buf.getvalue())

    app = create_app([mdir])
    pred = app.state.store.all()[0].predictor
    print(f"model: resnet18 {args.size}x{args.size}, backend {pred.backend}")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    # baseline: in-process predictions, one image at a time
    imgs = [np.asarray(Image.open(io.BytesIO(p))) for p in pngs]
    n_base = 200
    t0 = time.perf_counter()
    for i in range(n_base):
        pred.predict(imgs[i % len(imgs)])
    base_rps = n_base / (time.perf_counter() - t0)

    url = f"http://127.0.0.1:{port}/predict"
    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(args.requests))
    deadline = time.perf_counter() + args.max_seconds

    def client_loop() -> None:
        nonlocal errors
        with httpx.Client(timeout=30) as c:
            while time.perf_counter() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t = time.perf_counter()
                try:
                    r = c.post(url, files={"file": (f"{i}.png", pngs[i % len(pngs)], "image/png")})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                dt = time.perf_counter() - t
                with lock:
                    lat.append(dt)
                    errors += 0 if ok else 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as ex:
        for _ in range(args.clients):
            ex.submit(client_loop)
    wall = time.perf_counter() - t0
    server.should_exit = True
    thread.join(timeout=10)
    lat_ms = sorted(x * 1000 for x in lat)
    p99 = lat_ms[min(len(lat_ms) - 1, int(0.99 * len(lat_ms)))]
    rps = len(lat) / wall
    print(
        f"{len(lat)} requests from {args.clients} clients in {wall:.1f}s: {rps:.1f} req/s, "
        f"p50 {statistics.median(lat_ms):.1f} ms, p99 {p99:.1f} ms, errors {errors}"
    )
    print(
        f"baseline in-process Predictor.predict (1 image/call): {base_rps:.1f} img/s; "
        f"HTTP/in-process ratio {rps / base_rps:.2f}"
    )


if __name__ == "__main__":
    main()
