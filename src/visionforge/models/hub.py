"""Fail fast offline: decide once, in seconds, whether weight downloads can work.

Every ``pretrained=True`` in visionforge ends in timm, which asks the Hugging Face hub
(or, for a few old weights, a URL through ``torch.hub``). Without a network those
libraries retry and time out for about a minute before giving up. Instead, before the
first download visionforge checks connectivity once per process -- ``HF_HUB_OFFLINE=1``
(or ``TRANSFORMERS_OFFLINE=1``) means offline without any check; otherwise one TCP
connection to the hub host (or to the HTTPS proxy) with a :data:`PROBE_TIMEOUT_S`
timeout -- and, when offline, runs the download in the hub's offline mode: weights
already in the local cache (or a ``pretrained_cfg_overlay`` file) still load, anything
else fails at once with the message of :func:`offline_message`.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from visionforge.booleans import is_true
from visionforge.errors import WeightsError

__all__ = [
    "PROBE_TIMEOUT_S",
    "FETCH_ERRORS",
    "FetchError",
    "hub_address",
    "probe",
    "offline_reason",
    "offline_message",
    "fetching_weights",
]

#: Seconds the connectivity check may take (name lookup included).
PROBE_TIMEOUT_S = 3.0

#: What a failed download raises (huggingface_hub's offline errors are ``OSError`` or
#: ``ConnectionError``; timm reports some failures as ``RuntimeError``/``ValueError``).
FETCH_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, RuntimeError, ValueError)

_probe_results: dict[tuple[str, int], str | None] = {}


class FetchError(WeightsError):
    """``pretrained=True`` could not get the weights of ``arch`` (``cause``: the library's error)."""

    def __init__(self, name: str, cause: BaseException, reason: str | None, arch: str = "") -> None:
        super().__init__(offline_message(name, cause, reason, arch=arch))
        self.arch, self.cause, self.reason = arch or name, cause, reason


def offline_message(
    name: str, exc: BaseException | None, reason: str | None = None, *, arch: str = ""
) -> str:
    """The one message for "``pretrained=True`` could not get ``name``'s weights".

    ``arch``: the part whose weights were missing when it is not ``name`` itself (e.g. the
    ResNet-50 encoder of a segmentation model).
    """
    detail = "no detail"
    if exc is not None:
        first = str(exc).splitlines()[0] if str(exc) else "no detail"
        detail = f"{type(exc).__name__}: {first}"
    if arch and arch != name:
        detail = f"weights of {arch!r}: {detail}"
    why = f" Offline: {reason}." if reason else ""
    return (
        f"Could not fetch pretrained weights for model {name!r} ({detail}).{why} visionforge "
        f"runs offline: download the weights on a connected machine and pass a local file "
        f"instead, e.g. create_model({name!r}, pretrained='/path/to/weights.safetensors') "
        f"(a .pth state dict also works), or on the CLI model.pretrained=/path/to/weights.safetensors."
    )


def _env_offline() -> str | None:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if is_true(os.environ.get(var, "")):
            return f"{var}={os.environ[var]} is set"
    return None


def hub_address() -> tuple[str, int]:
    """``(host, port)`` a download connects to first: the HTTPS proxy if set, else the hub."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.hostname:
            return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    parts = urlsplit(endpoint)
    return parts.hostname or "huggingface.co", parts.port or (80 if parts.scheme == "http" else 443)


def probe(address: tuple[str, int], timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """``None`` if a TCP connection to ``address`` opens within ``timeout`` s, else why not.

    Runs in a daemon thread so that a hanging name lookup (which ignores socket
    timeouts) cannot hold the caller longer than ``timeout``.
    """
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=connect, name="visionforge-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"no answer within {timeout:g} s"
    return outcome[0]


def offline_reason() -> str | None:
    """Why downloads cannot work now (``None``: they can); the probe runs once per process."""
    declared = _env_offline()
    if declared:
        return declared
    address = hub_address()
    if address not in _probe_results:
        result = probe(address)
        _probe_results[address] = None if result is None else f"{address[0]}:{address[1]} {result}"
    return _probe_results[address]


@contextmanager
def _hub_offline_mode() -> Iterator[None]:
    """huggingface_hub's offline mode (cache only, no request) and short socket timeouts."""
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(PROBE_TIMEOUT_S)  # torch.hub URL downloads: fail, do not hang
    try:
        import huggingface_hub.constants as hf_constants
    except ImportError:  # pragma: no cover - timm depends on huggingface_hub
        hf_constants = None
    previous_offline = getattr(hf_constants, "HF_HUB_OFFLINE", None)
    if hf_constants is not None:
        hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous_timeout)
        if hf_constants is not None:
            hf_constants.HF_HUB_OFFLINE = previous_offline


@contextmanager
def fetching_weights(
    name: str, *, errors: tuple[type[BaseException], ...] = FETCH_ERRORS
) -> Iterator[None]:
    """Around code that downloads ``name``'s published weights: fast, one clear error offline.

    Offline (see :func:`offline_reason`) the body runs in the hub's offline mode, so cached
    weights still load and missing ones fail at once. A failure of type ``errors`` becomes
    a :class:`FetchError` (a :class:`WeightsError`) with :func:`offline_message`; an inner
    ``FetchError`` (e.g. an encoder's) is re-worded for ``name``, the model the user asked
    for; any other ``WeightsError`` passes through.
    """
    reason = offline_reason()
    mode = _hub_offline_mode() if reason else _nothing()
    try:
        with mode:
            yield
    except FetchError as inner:
        if inner.arch == name:
            raise
        raise FetchError(name, inner.cause, inner.reason, arch=inner.arch) from None
    except WeightsError:
        raise
    except errors as exc:
        raise FetchError(name, exc, reason) from None


@contextmanager
def _nothing() -> Iterator[None]:
    yield
