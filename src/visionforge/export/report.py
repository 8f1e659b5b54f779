"""The export report: ``export_report.json`` and a printable table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionforge.export.base import ExportResult
from visionforge.io import atomic_write_json

__all__ = ["ExportReport", "format_size"]

REPORT_FILE = "export_report.json"


def format_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@dataclass
class ExportReport:
    """Results of one ``export_model`` call, one :class:`ExportResult` per format."""

    model_dir: str
    out_dir: str
    results: list[ExportResult] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, fmt: str) -> ExportResult:
        for r in self.results:
            if r.format == fmt:
                return r
        raise KeyError(f"no result for format {fmt!r}; formats: {[r.format for r in self.results]}")

    def __contains__(self, fmt: object) -> bool:
        return any(r.format == fmt for r in self.results)

    @property
    def ok(self) -> bool:
        """True when no format failed (skipped formats do not count as failures)."""
        return all(r.status != "failed" for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_dir": self.model_dir,
            "out_dir": self.out_dir,
            "model": self.meta,
            "results": [r.to_dict() for r in self.results],
        }

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path is not None else Path(self.out_dir) / REPORT_FILE
        atomic_write_json(target, self.to_dict())
        return target

    def table(self) -> str:
        """A fixed-width text table: format, status, file, size, parity, latency, reason."""
        head = ("format", "status", "file", "size", "parity err", "latency ms", "reason")
        rows = [head]
        for r in self.results:
            rows.append(
                (
                    r.format,
                    r.status,
                    Path(r.file).name if r.file else "-",
                    format_size(r.size_bytes),
                    f"{r.parity_error:.2e}" if r.parity_error is not None else "-",
                    f"{r.latency_ms:.1f}" if r.latency_ms is not None else "-",
                    r.reason,
                )
            )
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(head) - 1)]
        lines = []
        for k, row in enumerate(rows):
            cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths)]
            lines.append("  ".join([*cells, str(row[-1])]).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths) + "  ------")
        return "\n".join(lines)
