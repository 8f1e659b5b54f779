"""A/B serving: split the traffic of one model name between two (or more) of its versions.

``create_app(..., ab={"digits": {"1": 0.9, "2": 0.1}})`` (CLI: ``--ab digits=1:90,2:10``)
adds, per split model:

* ``POST /ab/{name}/predict``: the request goes to a version drawn by the weights. With an
  ``X-Client-Id`` header the draw is a hash of the client id, so a client stays on one
  version (sticky); without it the draw is random. The response is the usual prediction
  (its ``version`` says which one answered; also header ``X-Model-Version``) plus a
  ``request_id``.
* ``POST /ab/{name}/feedback?request_id=...&label=...``: the true class of an answered
  request, so each version gets an accuracy on real traffic.
* ``GET /ab/{name}``: the split and per-version metrics: requests, observed share, errors,
  latency (mean, p50, p95 over the last 1,000 requests), predicted-class counts, mean top
  probability, feedback count and accuracy.

Metrics live in the server process (one uvicorn worker; several workers each count their
own). FastAPI has no traffic splitting of its own; a gateway (Istio, NGINX split_clients)
can split across servers instead, this split works inside one server.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import FastAPI, File, Header, HTTPException, Query, Response, UploadFile
from pydantic import BaseModel, Field

from visionforge.errors import ConfigError
from visionforge.serve.registry import ModelStore, ServedModel
from visionforge.serve.schemas import Prediction

__all__ = ["ABSplit", "ABPrediction", "ABReport", "parse_ab", "add_ab_routes"]

_WINDOW = 1000  # latencies kept per version
_PENDING = 10_000  # answered requests kept for feedback


class ABPrediction(Prediction):
    request_id: str = Field(description="send it to /ab/{name}/feedback with the true label")


class VersionStats(BaseModel):
    weight: float
    requests: int
    share: float = Field(description="observed share of the split's requests")
    errors: int
    latency_ms_mean: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    predicted: dict[str, int] = Field(description="requests per predicted top class")
    mean_top_probability: float | None
    feedback: int
    accuracy: float | None = Field(description="share of feedback whose label was predicted")


class ABReport(BaseModel):
    name: str
    sticky_header: str = "X-Client-Id"
    versions: dict[str, VersionStats]


def parse_ab(spec: str) -> tuple[str, dict[str, float]]:
    """``"digits=1:90,2:10"`` -> ``("digits", {"1": 0.9, "2": 0.1})`` (weights normalised)."""
    name, sep, rest = spec.partition("=")
    try:
        pairs = [p.rsplit(":", 1) for p in rest.split(",") if p]
        weights = {v.strip(): float(w) for v, w in pairs}
    except ValueError:
        weights = {}
    if not sep or not name or len(weights) < 2:
        raise ConfigError(f"--ab {spec!r}: write NAME=VERSION:WEIGHT,VERSION:WEIGHT, "
                          "e.g. digits=1:90,2:10")
    return name.strip(), weights


class _Stats:
    def __init__(self) -> None:
        self.requests = self.errors = self.feedback = self.correct = 0
        self.latency: deque[float] = deque(maxlen=_WINDOW)
        self.predicted: Counter[str] = Counter()
        self.top_prob_sum, self.top_prob_n = 0.0, 0


class ABSplit:
    """The weighted split of one model name over its versions, with per-version metrics."""

    def __init__(self, store: ModelStore, name: str, weights: Mapping[str, float],
                 seed: int | None = None) -> None:
        if name not in store.names():
            raise ConfigError(f"A/B split for {name!r}: no such model is served "
                              f"({', '.join(store.names())})")
        missing = [v for v in weights if v not in store.versions(name)]
        if missing:
            raise ConfigError(f"A/B split for {name!r}: versions {missing} are not served; "
                              f"versions: {', '.join(store.versions(name))}")
        if len(weights) < 2 or any(w < 0 for w in weights.values()) or not sum(weights.values()):
            raise ConfigError(f"A/B split for {name!r}: give two or more versions with "
                              f"non-negative weights, not all zero (got {dict(weights)})")
        total = float(sum(weights.values()))
        self.name, self.store = name, store
        self.weights = {str(v): float(w) / total for v, w in weights.items()}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stats = {v: _Stats() for v in self.weights}
        self._pending: OrderedDict[str, tuple[str, str | None]] = OrderedDict()

    def choose(self, client_id: str | None = None) -> ServedModel:
        """The version for this request: sticky per ``client_id``, else a weighted draw."""
        if client_id:
            digest = hashlib.sha256(f"{self.name}|{client_id}".encode()).digest()
            u = int.from_bytes(digest[:8], "big") / 2**64
        else:
            with self._lock:
                u = self._rng.random()
        acc = 0.0
        version = next(reversed(self.weights))
        for v, w in self.weights.items():
            acc += w
            if u < acc:
                version = v
                break
        return self.store.get(self.name, version)

    def record(self, version: str, latency_ms: float, pred: Prediction | None) -> str:
        """Count one answered (``pred``) or failed (``None``) request; return its request id."""
        rid = uuid.uuid4().hex
        with self._lock:
            s = self._stats[version]
            s.requests += 1
            s.latency.append(latency_ms)
            if pred is None:
                s.errors += 1
                return rid
            if pred.top_class is not None:
                s.predicted[pred.top_class] += 1
            if pred.probabilities:
                s.top_prob_sum += max(pred.probabilities.values())
                s.top_prob_n += 1
            self._pending[rid] = (version, pred.top_class)
            while len(self._pending) > _PENDING:
                self._pending.popitem(last=False)
        return rid

    def feedback(self, request_id: str, label: str) -> bool:
        """Record the true ``label`` of an answered request; whether the prediction matched."""
        with self._lock:
            found = self._pending.pop(request_id, None)
            if found is None:
                raise HTTPException(404, f"unknown or already rated request_id {request_id!r}")
            version, predicted = found
            s = self._stats[version]
            s.feedback += 1
            s.correct += int(predicted == label)
            return predicted == label

    def report(self) -> ABReport:
        """The split and the metrics of each version."""
        with self._lock:
            total = sum(s.requests for s in self._stats.values())
            out = {}
            for v, s in self._stats.items():
                lat = sorted(s.latency)
                out[v] = VersionStats(
                    weight=self.weights[v], requests=s.requests,
                    share=s.requests / total if total else 0.0, errors=s.errors,
                    latency_ms_mean=sum(lat) / len(lat) if lat else None,
                    latency_ms_p50=_quantile(lat, 0.5), latency_ms_p95=_quantile(lat, 0.95),
                    predicted=dict(s.predicted),
                    mean_top_probability=s.top_prob_sum / s.top_prob_n if s.top_prob_n else None,
                    feedback=s.feedback,
                    accuracy=s.correct / s.feedback if s.feedback else None,
                )
        return ABReport(name=self.name, versions=out)


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


FileArg = Annotated[UploadFile, File(description="an image file")]
ClientHeader = Annotated[str | None, Header(alias="X-Client-Id",
                                            description="sticky routing key (optional)")]
RequestQ = Annotated[str, Query(description="request_id of an A/B prediction")]
LabelQ = Annotated[str, Query(description="the true class name")]


def add_ab_routes(app: FastAPI, store: ModelStore, handlers: Any, auth: list[Any],
                  splits: Mapping[str, Mapping[str, float]], seed: int | None = None
                  ) -> dict[str, ABSplit]:
    """Add ``/ab/{name}/predict``, ``/ab/{name}/feedback`` and ``GET /ab/{name}`` for each split."""
    built = {name: ABSplit(store, name, w, seed) for name, w in splits.items()}
    app.state.ab = built

    def split_of(name: str) -> ABSplit:
        if name not in built:
            raise HTTPException(404, f"no A/B split for {name!r}; splits: {', '.join(built)}")
        return built[name]

    @app.post("/ab/{name}/predict", response_model=ABPrediction, dependencies=auth,
              response_model_exclude_none=True)
    async def ab_predict(name: str, file: FileArg, response: Response,
                         client: ClientHeader = None) -> ABPrediction:
        split = split_of(name)
        m = split.choose(client)
        start = time.perf_counter()
        try:
            pred = await handlers.predict_one(m, file)
        except Exception:
            split.record(m.version, (time.perf_counter() - start) * 1000, None)
            raise
        rid = split.record(m.version, (time.perf_counter() - start) * 1000, pred)
        response.headers["X-Model-Version"] = m.version
        return ABPrediction(**pred.model_dump(), request_id=rid)

    @app.post("/ab/{name}/feedback", dependencies=auth)
    def ab_feedback(name: str, request_id: RequestQ, label: LabelQ) -> dict[str, Any]:
        return {"request_id": request_id, "correct": split_of(name).feedback(request_id, label)}

    @app.get("/ab/{name}", response_model=ABReport, dependencies=auth)
    def ab_report(name: str) -> ABReport:
        return split_of(name).report()

    return built
