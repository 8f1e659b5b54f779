"""One reading of yes/no words across settings, CLI options and environment switches."""

from __future__ import annotations

import pytest

from visionforge.booleans import is_true, parse_bool


@pytest.mark.parametrize("word", ["1", "true", "YES", " on ", "y", "T", True])
def test_true_words(word):
    assert parse_bool(word) is True and is_true(word)


@pytest.mark.parametrize("word", ["0", "false", "No", "off", "n", "F", False])
def test_false_words(word):
    assert parse_bool(word) is False and not is_true(word)


@pytest.mark.parametrize("word", ["", "maybe", "2", "truee", None])
def test_anything_else_is_an_error_but_not_true(word):
    with pytest.raises(ValueError, match="choose true or false"):
        parse_bool(word)
    assert not is_true(word)


def test_every_place_reads_the_same_words(monkeypatch):
    from visionforge.cli.slides_cmd import _bool as slides_bool
    from visionforge.config.framework import _parse_bool as framework_bool
    from visionforge.errors import ConfigError
    from visionforge.progress import progress_enabled
    from visionforge.workflows.pipeline_settings import _convert

    for word, want in (("on", True), ("y", True), ("off", False), ("f", False)):
        assert slides_bool(word) is framework_bool(word) is _convert(
            "retry_failed", word, "cli") is want
        monkeypatch.setenv("VISIONFORGE_PROGRESS", word)
        assert progress_enabled() is want
    assert framework_bool("") is False  # VISIONFORGE_AMP= (empty) means off
    with pytest.raises(ConfigError, match="retry_failed='maybe' is not a valid bool"):
        _convert("retry_failed", "maybe", "cli")
