"""Cold start of the CLI: ``visionforge --help`` against ``python -c pass`` (baseline), in one run.

Goal: ``visionforge --help`` under one second, i.e. heavy libraries (torch, timm, lightning)
are imported lazily. Prints medians of several runs and the ratio to the bare interpreter.

    python benchmarks/cli_cold_start.py --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def _time(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    baseline = _time([sys.executable, "-c", "pass"], args.repeats)
    help_s = _time([sys.executable, "-m", "visionforge", "--help"], args.repeats)
    train_help = _time([sys.executable, "-m", "visionforge", "train", "--help"], args.repeats)
    torch_import = _time([sys.executable, "-c", "import torch"], args.repeats)
    print(f"python -c pass (baseline)  : {baseline * 1000:7.1f} ms")
    print(f"visionforge --help         : {help_s * 1000:7.1f} ms  ratio {help_s / baseline:.2f}")
    print(f"visionforge train --help   : {train_help * 1000:7.1f} ms  ratio {train_help / baseline:.2f}")
    print(f"python -c 'import torch'   : {torch_import * 1000:7.1f} ms  (what a non-lazy CLI would pay)")
    print(f"goal: --help < 1000 ms -> {'met' if help_s < 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
