"""Whole-slide inference: speed against MONAI and memory against slide size.

1. Speed: the same model (U-Net, ResNet-18 encoder, 3 classes, 256² tiles) on the same
   in-memory region (the IHC image mirrored to ``--region`` px), overlap 0.25, Gaussian
   blending, 8 tiles per batch: visionforge's ``sliding_window_inference`` (PyTorch eager, and
   the Predictor's chosen backend) vs MONAI's ``sliding_window_inference``; prints the
   time ratio visionforge / MONAI (≤ 1.0 means visionforge is as fast or faster) and the
   label agreement.
2. Memory: peak RSS (``VmHWM``/``resource.getrusage``, one child process per case) of
   ``segment_slides`` on a generated ``--size``² slide (default 20,000²) and a ``--small``²
   slide (default 5,000²), both mirrored IHC pyramids at 0.5 µm/px written tile by tile into a
   temporary folder; segmented at ``--mpp`` µm/px. Skipped with a message when the disk is short.

    python benchmarks/slide_inference.py [--size 20000] [--small 5000] [--region 2048]
        [--mpp 2.0] [--repeats 3] [--skip-rss] [--skip-speed] [--backend torch|auto] [--tile-batch 8]

Peak RSS is dominated by the process (PyTorch ≈ 0.5 GB after import) and the tiles in flight
(``--tile-batch``); ``--backend auto`` adds the ONNX Runtime session (and, the first time, the
export) on top.

A check run: ``--size 2048 --small 1024 --region 512`` (about a minute on 2 busy cores).
The full run (20,000² at 2 µm/px: 676 tiles of 256²) takes about 5–10 minutes on 16 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TILE = 256
BLOCK = 1024  # the mirrored IHC image repeats every 1024 px


def make_model(path: Path, mpp: float) -> Path:
    import torch

    from visionforge import create_model
    from visionforge.models.model_dir import save_model_dir
    from visionforge.slides.synthetic import IHC_CLASSES

    torch.manual_seed(0)
    net = create_model("unet", backbone="resnet18", num_classes=3)
    return save_model_dir(net, path, task="segmentation", class_names=list(IHC_CLASSES),
                          input_size=[3, TILE, TILE], extra={"slide_mpp": mpp})


def write_mirrored_slide(path: Path, size: int, mpp: float = 0.5, levels=(1, 4, 16)) -> Path:
    """A ``size``² mirrored-IHC pyramid (SVS layout) written tile by tile: never held whole."""
    import tifffile
    from PIL import Image
    from skimage import data

    from visionforge.slides.synthetic import mirror_tile

    block = mirror_tile(data.immunohistochemistry(), BLOCK)
    desc = (f"Aperio Image Library v12.0.0 \n{size}x{size} [0,0 {size}x{size}] ({TILE}x{TILE}) "
            f"visionforge benchmark|AppMag = 20|MPP = {mpp}")
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for i, ds in enumerate(levels):
            n = size // ds
            period = BLOCK // ds
            lb = block if ds == 1 else np.asarray(
                Image.fromarray(block).resize((period, period), Image.Resampling.BOX))
            big = np.tile(lb, (2, 2, 1))  # any TILE window inside one period + TILE

            def tiles(n=n, big=big, period=period):
                for y in range(0, n, TILE):
                    for x in range(0, n, TILE):
                        yield big[y % period : y % period + TILE, x % period : x % period + TILE]

            if period < TILE:  # tiny levels: write them whole
                whole = np.tile(lb, (-(-n // period), -(-n // period), 1))[:n, :n]
                tw.write(whole, tile=(TILE, TILE), photometric="rgb", compression="zlib",
                         metadata=None)
            else:
                tw.write(tiles(), shape=(n, n, 3), dtype=np.uint8, tile=(TILE, TILE),
                         photometric="rgb", compression="zlib", metadata=None,
                         description=desc if i == 0 else None,
                         resolution=(1e4 / (mpp * ds), 1e4 / (mpp * ds)),
                         resolutionunit="CENTIMETER")
            if i == 0:
                thumb = np.asarray(Image.fromarray(block).resize((256, 256)))
                tw.write(thumb, photometric="rgb", compression="zlib", metadata=None)
    return path


def speed(model_dir: Path, region: int, repeats: int) -> dict[str, float]:
    import torch
    from monai.inferers import sliding_window_inference as monai_swi
    from skimage import data

    from visionforge.inference import Predictor
    from visionforge.inference.sliding_window import sliding_window_inference
    from visionforge.slides.synthetic import mirror_tile

    image = mirror_tile(data.immunohistochemistry(), region)
    eager = Predictor(model_dir, backend="torch", batch_size=8)
    auto = Predictor(model_dir, backend="auto", batch_size=8)
    x = eager.preprocess_rgb(image)
    model = eager.model.eval()

    def monai_run():
        with torch.inference_mode():
            t = torch.from_numpy(x)[None].contiguous(memory_format=torch.channels_last)
            return monai_swi(t, (TILE, TILE), 8, model, overlap=0.25, mode="gaussian")[0].numpy()

    def vf(pred):
        return lambda: sliding_window_inference(x, pred.dense_logits, TILE, overlap=0.25,
                                                blend="gaussian", tile_batch=8)

    runs = {"monai": monai_run, "visionforge_torch": vf(eager), f"visionforge_{auto.backend}": vf(auto)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    labels = {name: fn().argmax(0) for name, fn in runs.items()}  # warm-up
    for _ in range(repeats):  # interleaved, so load drift on a shared machine hits all alike
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    out: dict[str, float] = {name: statistics.median(t) for name, t in times.items()}
    for name in runs:
        if name != "monai":  # median of the per-repeat ratios: robust to drift between repeats
            out[f"ratio {name} / monai"] = statistics.median(
                a / b for a, b in zip(times[name], times["monai"], strict=True))
    out["label_agreement_torch_vs_monai"] = float(
        (labels["monai"] == labels["visionforge_torch"]).mean())
    return out


def peak_rss_mib() -> float:
    """This process's peak RSS. ``VmHWM`` where there is /proc: ``ru_maxrss`` survives
    fork + exec on Linux, so a child would report its (bigger) parent's peak."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_child(model_dir: str, slide: str, out: str, mpp: float, backend: str,
              tile_batch: int) -> None:
    """Run in a child: segment one slide and print peak RSS (MiB) as JSON."""
    from visionforge.slides.segment import segment_slides

    t0 = time.perf_counter()
    (res,) = segment_slides(model_dir, [slide], out, mpp=mpp, resume=False, backend=backend,
                            tile_batch=tile_batch)
    peak = peak_rss_mib()
    print(json.dumps({"status": res.status, "reason": res.reason, "peak_rss_mib": peak,
                      "seconds": time.perf_counter() - t0, "shape": res.info.get("shape"),
                      "tiles": res.info.get("tiles")}))


def memory(model_dir: Path, tmp: Path, sizes: list[int], mpp: float, backend: str,
           tile_batch: int) -> dict[int, dict]:
    need = sum(s * s for s in sizes) * 3 // 2  # compressed pyramids are ~half raw RGB at most
    free = shutil.disk_usage(tmp).free
    if free < need:
        print(f"skip peak RSS: {free / 2**30:.1f} GiB free in {tmp}, need ~{need / 2**30:.1f} GiB")
        return {}
    out = {}
    for size in sizes:
        t0 = time.perf_counter()
        slide = write_mirrored_slide(tmp / f"slide_{size}.svs", size)
        print(f"  wrote {size}² slide in {time.perf_counter() - t0:.1f}s "
              f"({slide.stat().st_size / 2**20:.0f} MiB)")
        proc = subprocess.run([sys.executable, __file__, "--child", str(model_dir), str(slide),
                               str(tmp / f"out_{size}"), str(mpp), backend, str(tile_batch)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        out[size] = json.loads(proc.stdout.strip().splitlines()[-1])
        slide.unlink()
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        rss_child(*sys.argv[2:5], float(sys.argv[5]), sys.argv[6], int(sys.argv[7]))
        return
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--small", type=int, default=5000)
    ap.add_argument("--region", type=int, default=2048)
    ap.add_argument("--mpp", type=float, default=2.0, help="working µm/px (slides are 0.5)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--backend", default="torch", help="segment_slides backend for the RSS runs")
    ap.add_argument("--tile-batch", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        model_dir = make_model(tmp / "model", args.mpp)
        if not args.skip_speed:
            s = speed(model_dir, args.region, args.repeats)
            print(f"speed, {args.region}² region, {TILE}² tiles, overlap 0.25, batch 8 "
                  f"(median of {args.repeats} interleaved repeats; s):")
            for k, v in s.items():
                print(f"  {k:<44} {v:.4f}")
        if args.skip_rss:
            return
        m = memory(model_dir, tmp, [args.size, args.small], args.mpp, args.backend,
                   args.tile_batch)
        for size, r in m.items():
            print(f"  {size}² slide at {args.mpp} µm/px: {r}")
        if len(m) == 2:
            big, small = m[args.size]["peak_rss_mib"], m[args.small]["peak_rss_mib"]
            print(f"peak RSS {args.size}²: {big:.0f} MiB, {args.small}²: {small:.0f} MiB, "
                  f"ratio {big / small:.3f}")


if __name__ == "__main__":
    main()
