"""Load test of ``visionforge serve`` on loopback: dynamic batching off vs on, side by side.

Starts two ``visionforge serve`` processes on 127.0.0.1 serving the same small classifier
(resnet18, 10 classes, 64x64; the clients run here, so they do not share the servers'
GIL): one answering each request with its own forward pass (batching off,
the baseline: the server before dynamic batching) and one with dynamic batching
(``--max-batch``, ``--max-wait-ms``). Then, ``--repeats`` times and alternating between
the two, ``--clients`` concurrent clients send ``--requests`` POST /predict calls (PNG
uploads). Prints, per mode, the median over repeats of throughput and p50/p99 latency,
and the ratios on/off.

    python benchmarks/serve_load.py [--requests 400] [--clients 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
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


def start(mdir: Path, backend: str, batching: dict) -> tuple[str, subprocess.Popen]:
    """``visionforge serve`` in its own process (the load generator must not share its GIL)."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "visionforge", "serve", str(mdir), "--port", str(port)]
    cmd += ["--backend", backend, "--max-batch", str(batching["max_batch"])]
    cmd += ["--max-wait-ms", str(batching["max_wait_ms"]), "--queue", str(batching["max_queue"])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(2400):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return f"http://127.0.0.1:{port}/predict", proc
        except httpx.HTTPError:
            time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"server did not start: {' '.join(cmd)}")


def load(url: str, pngs: list[bytes], requests: int, clients: int, max_s: float) -> dict:
    """``requests`` POSTs from ``clients`` threads: req/s, p50/p99 ms, errors."""
    import httpx

    lat: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.perf_counter() + max_s

    def client_loop() -> None:
        nonlocal errors
        with httpx.Client(timeout=60) as c:
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
                with lock:
                    lat.append(time.perf_counter() - t)
                    errors += 0 if ok else 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        for _ in range(clients):
            ex.submit(client_loop)
    wall = time.perf_counter() - t0
    ms = sorted(x * 1000 for x in lat)
    return {
        "rps": len(lat) / wall,
        "p50": statistics.median(ms),
        "p99": float(np.percentile(ms, 99)),
        "errors": errors,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()

    import torch
    from PIL import Image

    from visionforge.models import create_model, save_model_dir

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
        img = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
        Image.fromarray(img).save(buf, "PNG")
        pngs.append(buf.getvalue())

    settings = {
        "off": {"max_batch": 1, "max_wait_ms": 0, "max_queue": 256},
        "on": {"max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms, "max_queue": 256},
    }
    print(
        f"model: resnet18 {args.size}x{args.size}, backend {args.backend}; two `visionforge "
        f"serve` processes ({torch.get_num_threads()} threads); batching on = {settings['on']}"
    )
    servers = {k: start(mdir, args.backend, v) for k, v in settings.items()}
    try:
        for url, _ in servers.values():  # warm-up
            load(url, pngs, 2 * args.clients, args.clients, args.max_seconds)
        runs: dict[str, list[dict]] = {k: [] for k in settings}
        for rep in range(args.repeats):
            for mode, (url, _) in servers.items():
                r = load(url, pngs, args.requests, args.clients, args.max_seconds)
                runs[mode].append(r)
                print(
                    f"repeat {rep + 1} batching {mode:<3}: {r['rps']:.1f} req/s, "
                    f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, errors {r['errors']}"
                )
    finally:
        for _, proc in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    med = {
        m: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
        for m, rs in runs.items()
    }
    print(f"\n{args.clients} clients, median of {args.repeats} alternating runs:")
    for m, v in med.items():
        print(
            f"  batching {m:<3}: {v['rps']:.1f} req/s, p50 {v['p50']:.1f} ms, p99 {v['p99']:.1f} ms"
        )
    print(
        f"  on/off: throughput x{med['on']['rps'] / med['off']['rps']:.2f}, "
        f"p99 x{med['on']['p99'] / med['off']['p99']:.2f} (lower is better)"
    )


if __name__ == "__main__":
    main()
