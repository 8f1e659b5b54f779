"""KerasAdapter.predict overhead vs the raw PyTorch forward on the same data (goal <= 1.05x).

Baseline: ``model(x_nchw)`` in ``torch.inference_mode`` over the same batches, with the
inputs already in NCHW tensors and outputs converted to NumPy. A second baseline runs the
raw forward on the NCHW *view* of the NHWC array (channels-last memory, as the adapter
does), which isolates the adapter's own overhead from the memory-layout effect. Ours: ``adapter.predict``
on NHWC NumPy input (permute in, permute out). Medians of several repeats, one run.

    python benchmarks/keras_adapter.py [--repeats 7] [--batch 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from visionforge.interop import KerasAdapter
from visionforge.models import create_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--model", default="resnet18")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=10).eval()
    x = np.random.default_rng(0).random((args.n, args.size, args.size, 3), dtype=np.float32)
    x_nchw = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    adapter = KerasAdapter(model)

    def raw() -> np.ndarray:
        outs = []
        with torch.inference_mode():
            for i in range(0, args.n, args.batch):
                outs.append(model(x_nchw[i : i + args.batch]).numpy())
        return np.concatenate(outs)

    x_view = torch.from_numpy(x).permute(0, 3, 1, 2)  # NCHW view of the NHWC memory

    def raw_view() -> np.ndarray:
        outs = []
        with torch.inference_mode():
            for i in range(0, args.n, args.batch):
                outs.append(model(x_view[i : i + args.batch]).numpy())
        return np.concatenate(outs)

    def ours() -> np.ndarray:
        return adapter.predict(x, batch_size=args.batch, verbose=0)

    np.testing.assert_allclose(ours(), raw(), atol=1e-4)  # same answers (and warm-up)
    t_raw, t_view, t_ours = [], [], []
    for _ in range(args.repeats):  # interleaved so drift affects both equally
        t0 = time.perf_counter()
        raw()
        t_raw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        raw_view()
        t_view.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours()
        t_ours.append(time.perf_counter() - t0)
    r, v, o = statistics.median(t_raw), statistics.median(t_view), statistics.median(t_ours)
    print(
        f"model={args.model} n={args.n} batch={args.batch} size={args.size} threads={torch.get_num_threads()}"
    )
    print(f"raw forward   : {r * 1000:8.1f} ms (median of {args.repeats})")
    print(f"adapter.predict: {o * 1000:8.1f} ms (median of {args.repeats})")
    print(f"raw forward on the NHWC memory (same tensor layout as the adapter): {v * 1000:8.1f} ms")
    print(f"ratio adapter/raw: {o / r:.3f} (goal <= 1.05)")
    print(f"ratio adapter/raw-same-layout (pure adapter overhead): {o / v:.3f}")


if __name__ == "__main__":
    main()
