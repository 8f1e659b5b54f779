"""Imports point downward only (docs/architecture.md): a lower layer never imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "visionforge"
#: higher number = higher layer; a module may import its own layer or lower ones.
LAYER = {
    "registry": 0, "config": 0, "io": 0, "errors": 0, "progress": 0, "conf": 0,
    "models": 1, "data": 1, "evaluation": 1, "explain": 1, "export": 1,
    # interop: the Keras twins and weight transfer (interop/tensorflow) are model code; the
    # Keras adapter and the nnTraining2 runner drive the engine, so they sit above it.
    "interop.tensorflow": 1, "interop": 2.5,
    # slides: whole-slide jobs built on data/, inference/ and evaluation/ (DESIGN.md)
    "slides": 2.5, "compat": 3,
    "engine": 2, "inference": 2,
    "workflows": 3,
    "cli": 4, "serve": 4,
}


def _layer_key(parts: tuple[str, ...]) -> str | None:
    """The most specific LAYER key for a module path below visionforge/ (or None)."""
    parts = tuple(p.removesuffix(".py") for p in parts)
    if len(parts) > 1 and ".".join(parts[:2]) in LAYER:
        return ".".join(parts[:2])
    return parts[0] if parts and parts[0] in LAYER else None


def _package(module: str) -> str | None:
    parts = module.split(".")
    return _layer_key(tuple(parts[1:])) if len(parts) > 1 and parts[0] == "visionforge" else None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def _violations() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        own = _layer_key(rel.parts)
        if own is None:
            continue
        for module in _imports(path):
            other = _package(module)
            if other in LAYER and LAYER[other] > LAYER[own]:
                bad.append(f"{rel}: imports {module} ({other} is above {own})")
    return bad


# Known exceptions, each with the reason it is allowed.
ALLOWED = {
    # evaluation.experiment drives a Trainer run end to end (a small workflow kept beside the
    # evaluator for its users' convenience); moving it to workflows/ is a later clean-up.
    "evaluation/experiment.py": "engine",
}


def test_no_module_imports_a_higher_layer():
    bad = [v for v in _violations()
           if not any(v.startswith(f) and f"({pkg} is above" in v for f, pkg in ALLOWED.items())]
    if bad:
        pytest.fail("layer violations:\n" + "\n".join(bad))
