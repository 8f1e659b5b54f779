"""Safe file IO: atomic writes and pickle-free weight loading.

Every file visionforge writes goes through :func:`atomic_write`, so a crash or
kill at any moment leaves either the old file or the complete new one, never a
truncated file. Weights are read with safetensors or ``torch.load(...,
weights_only=True)``; nothing here unpickles arbitrary objects.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from visionforge.errors import WeightsError

__all__ = [
    "model_state_from_checkpoint",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "read_json",
    "atomic_torch_save",
    "load_state_dict_file",
    "safe_torch_load",
    "WEIGHT_SUFFIXES",
    "current_umask",
    "remove_stale_temp_files",
]

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")


def _fsync_dir(directory: Path) -> None:
    # Making the rename itself durable needs an fsync of the directory (POSIX).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it back at once
    os.umask(mask)
    return mask


def _file_mode(target: Path) -> int:
    # mkstemp creates 0600 files; give the file what a plain open() would: the old file's
    # mode when replacing one, else 0666 less the umask.
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


# The temporary names atomic_write uses: ".<target name>.<random>.tmp" beside the target.
TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"


def _name_path(exc: OSError, target: Path) -> OSError:
    # Errors raised by writes through a file object carry no file name, and those on the
    # temporary file name a path the user never asked for: name the target instead.
    name = Path(os.fsdecode(exc.filename)).name if exc.filename is not None else None
    is_temp = name is not None and name.startswith(f"{TEMP_PREFIX}{target.name}.")
    if name is None or (is_temp and name.endswith(TEMP_SUFFIX)):
        named = type(exc)(exc.errno, exc.strerror or str(exc), str(target))
        named.__cause__ = exc
        return named
    return exc


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is untouched; an
    ``OSError`` (read-only folder, full disk, file-size limit) names ``path``. The
    file gets the permissions a plain ``open()`` would give it (umask applied).
    """
    target = Path(path)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f"{TEMP_PREFIX}{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent
        )
        tmp = Path(tmp_name)
        os.fchmod(fd, _file_mode(target))
        os.close(fd)
        yield tmp
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        _remove_quietly(tmp)
        named = _name_path(exc, target)
        if named is exc:
            raise
        raise named from exc
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(tmp: Path | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            tmp.unlink()


def remove_stale_temp_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files that an interrupted :func:`atomic_write` left in ``directory``.

    Only names of the form ``.<name>.<random>.tmp`` are touched (the pattern
    :func:`atomic_write` creates); call it where no other writer is active, e.g. when a
    run or a resume starts. Returns the removed paths.
    """
    root = Path(directory)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for p in root.iterdir():
        name = p.name
        if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX) and p.is_file():
            stem = name[len(TEMP_PREFIX) : -len(TEMP_SUFFIX)]
            if "." in stem:  # "<target>.<random>"
                _remove_quietly(p)
                removed.append(p)
    return removed


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and tensors appear in metrics; paths in configs.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Serialise ``obj`` as JSON (numpy/tensor values converted) and write it atomically."""
    text = json.dumps(obj, indent=indent, default=_json_default, sort_keys=False)
    return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, naming the file in the error if it is missing or invalid."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: invalid JSON ({exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not a JSON file (binary content)") from None


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to ``path`` atomically (for training checkpoints of tensors and plain data)."""
    import torch

    # Through a Python file object: a failed write then raises OSError (ENOSPC, EFBIG,
    # EROFS) instead of torch's C++ "basic_ios::clear" / "unexpected pos" RuntimeError.
    with atomic_write(path) as tmp, open(tmp, "wb") as fh:
        try:
            torch.save(obj, fh)
        except RuntimeError as exc:
            # torch's zip writer fails again while closing after the OSError: keep the OSError.
            if isinstance(exc.__context__, OSError):
                raise exc.__context__ from None
            raise
    return Path(path)


def _unwrap_state_dict(obj: Any, path: Path) -> dict[str, Any]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model", "weights"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(k, str) for k in inner):
                obj = inner
                break
        import torch

        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            # Lightning prefixes the module's keys with "model." ; strip one common prefix.
            for prefix in ("model.", "module."):
                if all(k.startswith(prefix) for k in tensors):
                    tensors = {k[len(prefix):]: v for k, v in tensors.items()}
                    break
            return tensors
    raise WeightsError(
        f"{path}: no state dict of tensors found; save weights with "
        "torch.save(model.state_dict(), path) or as .safetensors"
    )


def safe_torch_load(
    path: str | os.PathLike[str],
    *,
    map_location: Any = "cpu",
    loader: Callable[..., Any] | None = None,
    what: str = "weights file",
) -> Any:
    """``torch.load(path, weights_only=True)`` with every failure turned into :class:`WeightsError`.

    The one place visionforge reads a torch pickle: a file that needs arbitrary unpickling
    (and so could run code) is refused, a missing or corrupt file is named with its path.
    ``what`` names the kind of file in the messages (``"weights file"``, ``"checkpoint"``).
    """
    import pickle

    import torch

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: {what} not found")
    load = loader or torch.load
    try:
        return load(str(p), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{p}: refused to load: the {what} needs arbitrary unpickling, which can run code "
            f"({str(exc).splitlines()[0]}). Only tensors and plain data are read: re-save it as "
            "a plain state dict or .safetensors."
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise WeightsError(f"{p}: cannot read the {what} ({exc})") from None


def load_state_dict_file(
    path: str | os.PathLike[str],
    *,
    map_location: str = "cpu",
    loader: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Load a state dict from ``.safetensors`` or a ``.pth``/``.pt``/``.bin``/``.ckpt`` file.

    Torch files are read with ``weights_only=True``: a file that needs arbitrary
    unpickling (and so could run code) is refused with :class:`WeightsError`.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(p), device=map_location)
        except Exception as exc:
            raise WeightsError(f"{p}: not a valid safetensors file ({exc})") from None
    obj = safe_torch_load(p, map_location=map_location, loader=loader)
    return _unwrap_state_dict(obj, p)


def model_state_from_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The wrapped model's state dict from a training checkpoint (``model.`` prefix removed).

    Read with ``weights_only=True`` (never runs pickled code); lives here, beside the safe
    loader, because model dirs (models/) and the engine both read run checkpoints.
    """
    ckpt = safe_torch_load(path, map_location="cpu", what="checkpoint")
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: no 'state_dict' in the checkpoint")
    prefix = "model."
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
