"""The pipeline's comparison table: one row per backbone, as CSV, Markdown and HTML.

Columns: status, test accuracy, macro-F1, macro ROC-AUC, parameters, inference
images/s, one status column per export format (reasons for skipped/failed formats
and the error of a failed backbone are listed under the Markdown/HTML tables).
Written by hand (``csv`` and ``html.escape``): three small fixed-layout files do not
need pandas, which is not a dependency of the core.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from visionforge.io import atomic_write_text

__all__ = ["table_rows", "write_tables", "TABLE_FILES"]

TABLE_FILES = ("comparison.csv", "comparison.md", "comparison.html")

_METRICS = (("accuracy", "accuracy"), ("f1_macro", "macro-F1"), ("roc_auc_macro", "AUC"))


def _formats(records: Sequence[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for rec in records:
        for fmt in (rec.get("row") or {}).get("exports") or {}:
            if fmt not in out:
                out.append(fmt)
    return out


def _number(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else ""


def table_rows(records: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of the table; ``records`` are the status file's backbone entries."""
    formats = _formats(records)
    header = ["backbone", "status", *[label for _, label in _METRICS], "params", "img/s",
              *[f"export {f}" for f in formats], "k-fold accuracy", "best stage", "seconds"]
    rows = []
    for rec in records:
        row = rec.get("row") or {}
        exports = row.get("exports") or {}
        status = rec.get("status", "")
        if status == "failed":
            status = f"failed ({rec.get('step', '?')})"
        rows.append([
            str(row.get("backbone") or rec.get("backbone", "")),
            status,
            *[_number(row.get(key)) for key, _ in _METRICS],
            f"{row['params']:,}" if isinstance(row.get("params"), int) else "",
            _number(row.get("img_per_s"), 1),
            *[(exports.get(f) or {}).get("status", "") for f in formats],
            str(row.get("kfold_accuracy", "")),
            str(row.get("best_stage") or ""),
            _number(rec.get("seconds"), 1),
        ])
    return header, rows


def _notes(records: Sequence[dict[str, Any]]) -> list[str]:
    """Failed backbones' errors and the reasons of skipped/failed exports, one line each."""
    notes = []
    for rec in records:
        name = rec.get("backbone", "")
        if rec.get("status") == "failed":
            notes.append(f"{name}: failed at step {rec.get('step', '?')}: {rec.get('error', '')}")
        for fmt, res in ((rec.get("row") or {}).get("exports") or {}).items():
            if res.get("status") != "ok":
                reason = str(res.get("reason", ""))
                state = str(res.get("status"))
                text = reason if reason.startswith(state) else f"{state}: {reason}"
                notes.append(f"{name} {fmt}: {text}")
        warning = (rec.get("row") or {}).get("warning")
        if warning:
            notes.append(f"{name}: {warning}")
    return notes


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _markdown(header: list[str], rows: list[list[str]], notes: list[str], title: str) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [f"# {title}", "", line(header), "|" + "---|" * len(header)]
    out += [line(r) for r in rows]
    if notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def _html(header: list[str], rows: list[list[str]], notes: list[str], title: str) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td class='{_cell_class(c)}'>{esc(c)}</td>" for c in r) + "</tr>"
        for r in rows
    )
    items = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "th{background:#f0f0f0}td:first-child{text-align:left}"
        ".ok{color:#060}.failed{color:#b00;font-weight:bold}.skipped{color:#888}"
        "</style></head><body>"
        f"<h1>{esc(title)}</h1><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        + (f"<h2>Notes</h2><ul>{items}</ul>" if notes else "")
        + "</body></html>\n"
    )


def _cell_class(text: str) -> str:
    word = text.split(" ")[0]
    return word if word in ("ok", "failed", "skipped", "done") else ""


def write_tables(records: Sequence[dict[str, Any]], out: str | Path,
                 title: str = "Backbone comparison") -> list[Path]:
    """Write ``comparison.csv``, ``comparison.md`` and ``comparison.html`` into ``out``."""
    out = Path(out)
    header, rows = table_rows(records)
    notes = _notes(records)
    texts = (_csv(header, rows), _markdown(header, rows, notes, title),
             _html(header, rows, notes, title))
    return [atomic_write_text(out / name, text) for name, text in zip(TABLE_FILES, texts, strict=True)]
