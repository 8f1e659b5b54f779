"""Seeding and deterministic execution.

Example:
    >>> import torch
    >>> set_seed(0); a = torch.rand(2)
    >>> set_seed(0); bool(torch.equal(a, torch.rand(2)))
    True
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

__all__ = [
    "set_seed",
    "enable_determinism",
    "enable_cudnn_determinism",
    "restore_determinism",
    "seed_worker",
]

_CUBLAS_CONFIG = ":4096:8"


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device).

    Also exports ``PYTHONHASHSEED`` (child processes get stable ``hash()``) and
    Lightning's ``PL_GLOBAL_SEED``/``PL_SEED_WORKERS`` so that Lightning seeds its
    DataLoader workers and spawned DDP processes from the same seed.
    """
    from lightning.fabric.utilities.seed import seed_everything

    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    # Lightning seeds random, numpy and torch (all CUDA devices) and records the seed.
    seed_everything(seed, workers=True, verbose=False)
    random.seed(seed)


def enable_determinism(warn_only: bool = False) -> dict[str, Any]:
    """Make torch pick deterministic kernels; returns the previous settings.

    Sets cuDNN to deterministic without benchmarking, calls
    ``torch.use_deterministic_algorithms(True, warn_only=warn_only)`` (ops with no
    deterministic kernel then raise, or only warn with ``warn_only``), and sets
    ``CUBLAS_WORKSPACE_CONFIG`` which CUDA >= 10.2 needs for deterministic cuBLAS.
    Pass the returned dict to :func:`restore_determinism` to undo.
    """
    previous = {
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", _CUBLAS_CONFIG)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=warn_only)
    return previous


def enable_cudnn_determinism() -> dict[str, Any]:
    """Only the cuDNN part of :func:`enable_determinism`: deterministic cuDNN convolutions and
    no benchmarking (autotuning picks kernels nondeterministically). Other ops keep their
    fast kernels; use :func:`enable_determinism` for every op. Returns the previous settings
    for :func:`restore_determinism`."""
    previous = {
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return previous


def restore_determinism(previous: dict[str, Any]) -> None:
    """Undo :func:`enable_determinism` with the settings it returned."""
    torch.backends.cudnn.deterministic = previous["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = previous["cudnn_benchmark"]
    torch.use_deterministic_algorithms(
        previous["deterministic_algorithms"], warn_only=previous["warn_only"]
    )
    if previous["cublas_workspace_config"] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = previous["cublas_workspace_config"]


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: seed NumPy and ``random`` in each
    worker from torch's per-worker seed (torch seeds itself per worker already)."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
