"""Progress bars appear only when asked for or on a terminal."""

from __future__ import annotations

from visionforge.progress import progress, progress_enabled


def test_progress_is_silent_when_not_interactive(monkeypatch, capsys):
    monkeypatch.delenv("VISIONFORGE_PROGRESS", raising=False)
    items = [1, 2, 3]
    assert progress(items, "x") is items  # stderr is captured, not a TTY: no bar at all
    monkeypatch.setenv("VISIONFORGE_PROGRESS", "0")
    assert not progress_enabled()


def test_progress_can_be_forced_on(monkeypatch, capsys):
    monkeypatch.setenv("VISIONFORGE_PROGRESS", "1")
    assert list(progress(range(5), "counting")) == [0, 1, 2, 3, 4]
    assert "counting" in capsys.readouterr().err
