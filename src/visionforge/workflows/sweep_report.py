"""What a sweep leaves in its sweep dir: a results table, a plot and the best trial.

``results.csv`` and ``results.md`` (one row per trial: parameters, status, metric, run
dir), ``results.png`` (each trial's validation curve of the metric, the best one bold),
``best.json`` (the best trial's parameters, metric, run dir and model dir) and ``best``,
a symbolic link to the best trial's run dir (skipped where links are not allowed).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_sweep_report", "best_row"]

_COLUMNS = ("trial", "params", "status")


def best_row(rows: Sequence[dict[str, Any]], metric: str, mode: str) -> dict[str, Any] | None:
    """The finished trial with the best ``metric`` (``mode`` min or max), or None."""
    done = [r for r in rows if r["status"] == "ok" and not math.isnan(r.get(metric, math.nan))]
    if not done:
        return None
    pick = max if mode == "max" else min
    return pick(done, key=lambda r: r[metric])


def _columns(rows: Sequence[dict[str, Any]], metric: str) -> list[str]:
    extra = sorted({k for r in rows for k in r if k not in (*_COLUMNS, metric, "run_dir",
                                                            "model_dir", "history")})
    return [*_COLUMNS, metric, *extra, "run_dir"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _tables(rows: Sequence[dict[str, Any]], metric: str) -> tuple[str, str]:
    cols = _columns(rows, metric)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return buf.getvalue(), "\n".join(md) + "\n"


def _plot(rows: Sequence[dict[str, Any]], metric: str, best: dict[str, Any] | None,
          path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from visionforge.workflows.sweep import _curve

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        curve = _curve(r.get("history") or {}, metric)
        if curve:
            is_best = best is not None and r["trial"] == best["trial"]
            ax.plot(range(1, len(curve) + 1), curve, marker="o", lw=2.5 if is_best else 1,
                    label=f"{r['trial']}: {r['params']}"[:48] + (" (best)" if is_best else ""),
                    ls="-" if r["status"] == "ok" else ":")
    ax.set_xlabel("validation")
    ax.set_ylabel(metric)
    ax.set_title(f"sweep: {metric} per trial (dotted = pruned/failed)")
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    from visionforge.io import atomic_write

    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def _link_best(sweep_dir: Path, run_dir: str) -> str | None:
    link = sweep_dir / "best"
    try:
        if link.is_symlink():
            link.unlink()
        os.symlink(os.path.relpath(run_dir, sweep_dir), link, target_is_directory=True)
        return str(link)
    except OSError:  # e.g. Windows without the privilege: best.json still names the path
        return None


def write_sweep_report(sweep_dir: Path, rows: Sequence[dict[str, Any]], *, metric: str,
                       mode: str, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Write the sweep's table, plot, ``best.json`` and ``best`` link; return ``best.json``."""
    from visionforge.io import atomic_write_json, atomic_write_text

    best = best_row(rows, metric, mode)
    text_csv, text_md = _tables(rows, metric)
    atomic_write_text(sweep_dir / "results.csv", text_csv)
    atomic_write_text(sweep_dir / "results.md", text_md)
    _plot(rows, metric, best, sweep_dir / "results.png")
    summary: dict[str, Any] = {"metric": metric, "mode": mode, "trials": len(rows),
                               "finished": sum(r["status"] == "ok" for r in rows),
                               "pruned": sum(r["status"] == "pruned" for r in rows)}
    if best is not None:
        summary.update(best_trial=best["trial"], params=best["params"], value=best[metric],
                       run_dir=best["run_dir"], model_dir=best["model_dir"],
                       link=_link_best(sweep_dir, best["run_dir"]))
    atomic_write_json(sweep_dir / "best.json", summary)
    echo(text_md.rstrip())
    if best is not None:
        echo(f"best trial {best['trial']} ({best['params']}): {metric} {best[metric]:.4g}; "
             f"model dir {best['model_dir'] or '-'}; see {sweep_dir / 'best.json'}")
    else:
        echo(f"no trial finished; see {sweep_dir / 'results.md'}")
    return summary
