"""``Predictor``: run a model dir on images/signals with the fastest verified backend.

On CPU, ``backend="auto"`` exports the model to ONNX once (cached inside the model dir,
or in ``$VISIONFORGE_CACHE`` when the dir is read-only), checks ONNX Runtime and OpenVINO
against PyTorch on real samples, adds the calibrated INT8 files that ``export quantize=int8``
recorded with at most one point of accuracy/mIoU drop, times them all and keeps the
fastest (see :mod:`visionforge.inference.selection`); the decision is cached per model
dir and machine. Eager PyTorch runs channels_last. On a GPU the PyTorch model runs
channels_last under bf16 (or fp16) autocast.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import ConfigError, WeightsError
from visionforge.export.contract import (
    flatten_outputs,
    input_shape,
    normalize,
    real_sample_inputs,
)
from visionforge.export.runtimes import available, make_runner
from visionforge.inference.preprocess import prepare_batch, to_samples
from visionforge.inference.selection import (
    Candidate,
    choose_fastest,
    int8_candidates,
    selection_key,
)
from visionforge.inference.sliding_window import sliding_window_inference
from visionforge.inference.tta import tta as tta_fn
from visionforge.io import atomic_write_json, read_json
from visionforge.models.contract import InputContract, contract_from_meta
from visionforge.models.model_dir import (
    META_FILE,
    WEIGHTS_FILE,
    load_model,
    model_dir_path,
    read_model_meta,
)

__all__ = ["Predictor", "BACKENDS"]

_log = logging.getLogger(__name__)
BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
CACHE_ENV = "VISIONFORGE_CACHE"


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "none"


def _softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _labels(logits: np.ndarray) -> np.ndarray:
    lab = logits.argmax(1)
    return lab.astype(np.uint8 if logits.shape[1] <= 256 else np.int32)


class Predictor:
    """Predict with a model dir (``model.json`` + ``model.safetensors``).

    Args:
        model_dir: the model directory.
        backend: ``"auto"`` (fastest verified here, including a recorded INT8 model with
            at most one point of accuracy drop), ``"torch"``, ``"onnxruntime"``,
            ``"openvino"``, or an INT8 variant recorded in ``int8.json`` (drop <= 1 point)
            such as ``"onnxruntime-int8-static"`` or ``"openvino-int8-nncf"``.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        batch_size: samples per forward pass.
        layout: how to read arrays: ``"auto"`` (see :mod:`visionforge.inference.preprocess`),
            ``"NHWC"`` or ``"NCHW"``.
        resize: resize images to the model's input size (segmentation label maps are
            resized back to each image's size).
        cache_dir: where the ONNX export and the backend decision are cached.
        tolerance: max-abs-diff allowed between ONNX Runtime and PyTorch to use ONNX Runtime.

    Example:
        >>> p = Predictor("runs/digits/model")  # doctest: +SKIP
        >>> probs = p.predict(["a.png", "b.png"])  # [2, num_classes]  # doctest: +SKIP
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        backend: str = "auto",
        device: str = "auto",
        batch_size: int = 8,
        *,
        layout: str = "auto",
        resize: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        tolerance: float = 1e-3,
    ) -> None:
        import torch

        if backend not in BACKENDS and "-int8-" not in backend:
            raise ConfigError(
                f"backend must be one of {BACKENDS} or a recorded INT8 variant such as "
                f"'openvino-int8-nncf' (see Predictor.variants()), got {backend!r}"
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        # A file (checkpoint, pickle, weights) is refused here with what it is and what to pass.
        self.model_dir = model_dir_path(model_dir)
        self.meta = read_model_meta(self.model_dir)
        self.task: str = self.meta.get("task") or "classification"
        self.class_names: list[str] | None = self.meta.get("class_names")
        self.input_shape = input_shape(self.meta)
        #: the input contract from model.json (range, channel order, mean/std, interpolation)
        self.contract: InputContract = contract_from_meta(self.meta)
        self.batch_size = int(batch_size)
        self.layout = layout
        self.resize = resize
        self.tolerance = tolerance
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = load_model(self.model_dir, device=str(self.device))
        self._is_image = len(self.input_shape) == 3
        self._channels_last = self._is_image  # eager image models run channels_last on CPU
        if self._is_image:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._runner: Any = None  # ONNX Runtime / OpenVINO runner; None = eager PyTorch
        self._ref_names: list[str] = []
        self._onnx_path: Path | None = None
        #: ``fp32`` or ``int8`` (a calibrated INT8 file chosen by ``auto``)
        self.precision = "fp32"
        self._lock = threading.Lock()  # eager PyTorch calls are serialised across threads
        self.selection: dict[str, Any] = {}
        self.backend = self._choose(backend)

    # -- backend selection ---------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"Predictor({str(self.model_dir)!r}, task={self.task!r}, backend={self.backend!r}, "
            f"device={str(self.device)!r})"
        )

    def _cache_key(self) -> str:
        h = hashlib.sha256()
        st = (self.model_dir / WEIGHTS_FILE).stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        h.update((self.model_dir / META_FILE).read_bytes())
        for pkg in ("torch", "onnxruntime", "visionforge"):
            h.update(_version(pkg).encode())
        return h.hexdigest()[:16]

    def cache_dir(self) -> Path:
        """Writable folder for the cached ONNX export (inside the model dir when possible)."""
        if self._cache_dir is not None:
            candidates = [self._cache_dir]
        else:
            env = os.environ.get(CACHE_ENV)
            fallback = Path(env) if env else Path.home() / ".cache" / "visionforge"
            digest = hashlib.sha256(str(self.model_dir.resolve()).encode()).hexdigest()[:12]
            candidates = [self.model_dir / ".cache", fallback / "predictor" / digest]
        for cand in candidates:
            try:
                cand.mkdir(parents=True, exist_ok=True)
                probe = cand / f".probe-{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
                return cand
            except OSError:
                continue
        raise WeightsError(f"no writable cache folder among {[str(c) for c in candidates]}")

    def _choose(self, backend: str) -> str:
        if self.device.type != "cpu":
            if backend in ("onnxruntime", "openvino"):
                raise ConfigError(f"backend={backend!r} runs on CPU here; use device='cpu'")
            self.selection = {"backend": "torch", "reason": "GPU: channels_last + autocast"}
            return "torch"
        if backend == "torch":
            self.selection = {"backend": "torch", "choice": "torch", "reason": "requested"}
            return "torch"
        if backend not in BACKENDS:  # an INT8 variant recorded in int8.json
            self._onnx_path, _ = self._prepare_onnx()
            self.use(backend)
            return self.backend
        try:
            onnx_path, record = self._prepare_onnx()
            if backend != "auto":
                self._use(Candidate(backend, backend, onnx_path), check=True)
        except Exception as exc:
            if backend != "auto":
                raise WeightsError(
                    f"{self.model_dir}: {backend} backend unavailable: {exc}"
                ) from None
            self.selection = {"backend": "torch", "reason": f"ONNX export path failed: {exc}"}
            _log.info("Predictor: %s", self.selection["reason"])
            return "torch"
        if backend != "auto":
            self.selection = {
                **record,
                "backend": backend,
                "choice": backend,
                "reason": "requested",
            }
            return backend
        return self._auto(onnx_path, record)

    def _prepare_onnx(self) -> tuple[Path, dict[str, Any]]:
        """The fp32 ONNX export (cached) and its parity with PyTorch under ONNX Runtime."""
        from visionforge.export.onnx import export_onnx_file

        cache = self.cache_dir()
        key = self._cache_key()
        onnx_path = cache / f"predictor-{key}.onnx"
        rec_path = cache / f"predictor-{key}.json"
        record: dict[str, Any] = (
            read_json(rec_path) if rec_path.is_file() and onnx_path.is_file() else {}
        )
        x = real_sample_inputs(self.meta, min(self.batch_size, 2))
        ref = self._torch_forward(x)
        self._ref_names = [n for n, _ in ref]
        if not record:
            import torch

            cpu_model = self.model.to(memory_format=torch.contiguous_format)
            info = export_onnx_file(cpu_model, x, onnx_path, output_names=self._ref_names)
            if self._is_image:
                self.model = self.model.to(memory_format=torch.channels_last)
            record = {"onnx": str(onnx_path), "exporter": info["exporter"]}
        record["parity_error"] = self._parity(make_runner("onnxruntime", onnx_path), x, ref)
        atomic_write_json(rec_path, {k: v for k, v in record.items() if k != "parity_error"})
        self._onnx_path = onnx_path
        return onnx_path, record

    def _parity(self, runner: Any, x: np.ndarray, ref: list[tuple[str, np.ndarray]]) -> float:
        """Max |runner - PyTorch| on ``x``; raises when over the tolerance."""
        outs = runner(x)
        err = max(float(np.max(np.abs(o - r))) for o, (_, r) in zip(outs, ref))
        if not np.isfinite(err) or err > self.tolerance:
            raise RuntimeError(
                f"{runner.name} differs from PyTorch by {err:.3g} (> {self.tolerance})"
            )
        return err

    def _use(self, cand: Candidate, *, check: bool = False, runner: Any = None) -> None:
        """Run forward passes with ``cand`` from now on (``check``: parity with PyTorch first)."""
        self.precision = cand.precision
        if cand.runtime == "torch":
            self._runner = None
            return
        runner = runner or make_runner(cand.runtime, cand.file)
        if check:
            x = real_sample_inputs(self.meta, min(self.batch_size, 2))
            self._parity(runner, x, self._torch_forward(x))
        self._runner = runner

    def _auto(self, onnx_path: Path, record: dict[str, Any]) -> str:
        """Pick the fastest verified candidate (cached per model dir, INT8 record and machine)."""
        from visionforge.export.quantize import INT8_RECORD

        rec_file = self.model_dir / INT8_RECORD
        int8_rec = read_json(rec_file) if rec_file.is_file() else None
        path = self.cache_dir() / f"backend-{selection_key(self._cache_key(), int8_rec)}.json"
        cands, notes = self._candidates(onnx_path, int8_rec)
        cached = read_json(path) if path.is_file() else None
        decision: dict[str, Any] = {}
        if cached and cached.get("candidate") in cands:
            cand = cands[cached["candidate"]]
            try:
                self._use(cand, check=cand.precision == "fp32")
                decision = {**cached, "cached": True}
            except Exception as exc:  # e.g. a runtime upgraded under the cache: probe again
                notes.append(f"cached choice {cand.name} failed ({exc}); probed again")
        if not decision:
            decision = choose_fastest(self, cands, notes)
            atomic_write_json(path, decision)
        self.selection = {**record, **decision, "decision_file": str(path)}
        _log.info("Predictor(auto): %s", self.selection["reason"])
        return str(decision["backend"])

    def _candidates(
        self, onnx_path: Path, int8_rec: dict[str, Any] | None
    ) -> tuple[dict[str, Candidate], list[str]]:
        from visionforge.export.quantize import weights_digest

        runtimes = [r for r in ("onnxruntime", "openvino") if available(r)]
        cands = {"torch": Candidate("torch", "torch")}
        cands.update({r: Candidate(r, r, onnx_path) for r in runtimes})
        entries, notes = int8_candidates(
            self.model_dir, int8_rec, weights_digest(self.model_dir) if int8_rec else ""
        )
        for e in entries:
            # a QDQ ONNX file runs in both runtimes; an OpenVINO IR (NNCF) only in OpenVINO
            for r in [r for r in runtimes if e.get("runtime") in (None, r)]:
                name = e["name"] if e["name"].startswith(f"{r}-") else (
                    f"{r}-{e['name'].removeprefix('onnx-')}"
                )
                cands[name] = Candidate(name, r, Path(e["path"]), "int8", e)
        if not available("openvino"):
            notes.append("openvino not installed (pip install 'visionforge[openvino]')")
        return cands, notes

    def variants(self, *, include_int8: bool = True) -> dict[str, Candidate]:
        """The ways this model can run here: ``torch``, ``onnxruntime``, ``openvino`` (when
        installed) and ``<runtime>-int8-<mode>`` for each INT8 file in ``int8.json`` whose
        recorded drop is at most one point."""
        from visionforge.export.quantize import INT8_RECORD

        if self._onnx_path is None:
            self._onnx_path, _ = self._prepare_onnx()
        rec_file = self.model_dir / INT8_RECORD
        rec = read_json(rec_file) if include_int8 and rec_file.is_file() else None
        return self._candidates(self._onnx_path, rec)[0]

    def use(self, variant: str) -> None:
        """Run with ``variant`` (a name from :meth:`variants`) from now on; fp32 variants are
        checked against PyTorch first. Used by ``visionforge benchmark``."""
        cands = self.variants()
        if variant not in cands:
            from visionforge.export.quantize import INT8_RECORD

            rec_file = self.model_dir / INT8_RECORD
            rec = read_json(rec_file) if rec_file.is_file() else None
            assert self._onnx_path is not None
            notes = self._candidates(self._onnx_path, rec)[1]
            why = f" ({'; '.join(notes)})" if notes else ""
            raise ConfigError(
                f"{self.model_dir}: no variant {variant!r}; available: {sorted(cands)}{why}"
            )
        cand = cands[variant]
        self._use(cand, check=cand.precision == "fp32")
        self.backend = cand.runtime
        self.selection = {"backend": cand.runtime, "candidate": variant, "reason": "requested"}

    # -- forward passes ------------------------------------------------------
    def _torch_forward(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        if self._channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with self._lock, torch.inference_mode():
            if self.device.type == "cuda":
                dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
                with torch.autocast("cuda", dtype=dtype):
                    out = self.model(t)
            else:
                out = self.model(t)
        return [(n, v.float().cpu().numpy()) for n, v in flatten_outputs(out)]

    def forward(self, x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """Raw named outputs for a preprocessed batch (``[N, C, ...]`` float32), in chunks."""
        chunks: list[list[tuple[str, np.ndarray]]] = []
        for i in range(0, len(x), self.batch_size):
            xb = x[i : i + self.batch_size]
            if self._runner is not None:
                chunks.append(list(zip(self._ref_names, self._runner(xb))))
            else:
                chunks.append(self._torch_forward(xb))
        names = [n for n, _ in chunks[0]]
        return [(n, np.concatenate([c[k][1] for c in chunks])) for k, n in enumerate(names)]

    # -- public API ----------------------------------------------------------
    def predict(
        self,
        images: Any,
        *,
        layout: str | None = None,
        tta: bool = False,
        return_logits: bool = False,
    ) -> Any:
        """Predict on ``images`` (paths, PIL images, arrays or tensors; one or many).

        Returns:
            classification/signal: probabilities ``[N, num_classes]`` (float32);
            segmentation: label maps ``[N, H, W]`` at each input's size (``uint8`` when there are
            at most 256 classes, else ``int32``; a list when sizes differ);
            multitask: ``{"classification": ..., "segmentation": ...}``.
            With ``return_logits`` the raw (for segmentation: resized) logits instead.
        """
        samples = to_samples(images, self.meta, layout=layout or self.layout)
        batch, sizes = prepare_batch(samples, self.meta, resize=self.resize)
        if tta:
            names: list[str] = []

            def fn(xb: np.ndarray) -> list[np.ndarray]:
                outs = self.forward(xb)
                names[:] = [n for n, _ in outs]
                return [v for _, v in outs]

            averaged = tta_fn(fn, batch)
            named = list(zip(names, averaged))
        else:
            named = self.forward(batch)
        results = {n: self._postprocess(v, sizes, return_logits) for n, v in named}
        if len(results) == 1:
            return next(iter(results.values()))
        return results

    def _postprocess(self, logits: np.ndarray, sizes: list[tuple[int, ...]], raw: bool) -> Any:
        if logits.ndim == 2:
            return logits if raw else _softmax(logits).astype(np.float32)
        # dense logits [N, S, h, w]: back to each input's own size
        import torch
        import torch.nn.functional as F

        maps = []
        for lg, size in zip(logits, sizes):
            if tuple(lg.shape[-2:]) != tuple(size):
                lg = F.interpolate(
                    torch.from_numpy(lg)[None], size=size, mode="bilinear", align_corners=False
                )[0].numpy()
            maps.append(lg if raw else _labels(lg[None])[0])
        if all(m.shape == maps[0].shape for m in maps):
            return np.stack(maps)
        return maps

    def predict_large(
        self,
        image: Any,
        *,
        tile_size: int | tuple[int, int] | None = None,
        overlap: float = 0.25,
        blend: str = "gaussian",
        tile_batch: int | None = None,
        tta: bool = False,
        layout: str | None = None,
        return_logits: bool = False,
    ) -> np.ndarray:
        """Segment one image larger than the model input by sliding-window inference.

        Tiles default to the model's input size; logits are blended (``gaussian``/``linear``)
        and at most ``tile_batch`` (default ``batch_size``) tiles are in flight at once.
        Returns a label map ``[H, W]`` (or logits ``[S, H, W]``).
        """
        if not self._is_image:
            raise ConfigError("predict_large works on images; this model takes 1-D signals")
        samples = to_samples(image, self.meta, layout=layout or self.layout)
        if len(samples) != 1:
            raise ConfigError(f"predict_large takes one image, got {len(samples)}")
        x = normalize(samples[0][None], self.meta)
        tile = tile_size or tuple(self.input_shape[1:])
        dense = self.dense_logits
        fn = (lambda t: tta_fn(dense, t)) if tta else dense
        logits = sliding_window_inference(
            x, fn, tile, overlap=overlap, blend=blend, tile_batch=tile_batch or self.batch_size
        )[0]
        return logits if return_logits else _labels(logits[None])[0]

    def dense_logits(self, tiles: np.ndarray) -> np.ndarray:
        """Segmentation logits ``[B, S, h, w]`` for a preprocessed tile batch ``[B, C, h, w]``."""
        outs = self.forward(tiles)
        return dict(outs).get("segmentation", outs[0][1])

    def preprocess_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """An RGB ``uint8`` ``[H, W, 3]`` region as model input ``[C, H, W]`` (contract applied)."""
        (sample,) = to_samples(rgb, self.meta, layout="NHWC")
        return normalize(sample[None], self.meta)[0]

    def preprocess_tiles(self, tiles: np.ndarray) -> np.ndarray:
        """Raw channels-first tiles ``[B, 3, h, w]`` (RGB ``uint8``) as model input ``[B, C, h, w]``.

        Pixel-wise, like :meth:`preprocess_rgb`: preprocessing tiles cut from a region equals
        cutting them from the preprocessed region (streamed slide inference relies on it).
        """
        return normalize(np.stack(to_samples(tiles, self.meta, layout="NCHW")), self.meta)

    def info(self) -> dict[str, Any]:
        """Model contract and backend decision (for logs and ``/models``)."""
        return {
            "model_dir": str(self.model_dir),
            "name": self.meta.get("name"),
            "task": self.task,
            "class_names": self.class_names,
            "input_size": list(self.input_shape),
            "preprocessing": self.contract.to_dict(),
            "backend": self.backend,
            "precision": self.precision,
            "device": str(self.device),
            "selection": json.loads(json.dumps(self.selection, default=str)),
        }
