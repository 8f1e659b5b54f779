"""Shared key=value parsing of the utility subcommands."""

from __future__ import annotations

import pytest

from visionforge.cli.options import parse_options
from visionforge.errors import ConfigError


def test_typed_options_and_errors():
    assert parse_options(["n=3", "out=x"], {"n": int, "out": str}, "cmd") == {"n": 3, "out": "x"}
    assert parse_options(["a=b=c"], ("a",), "cmd") == {"a": "b=c"}
    with pytest.raises(ConfigError, match=r"cmd: unknown option 'outt' \(did you mean 'out'\?\)"):
        parse_options(["outt=1"], ("out", "n"), "cmd")
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_options(["oops"], ("out",), "cmd")
    with pytest.raises(ConfigError, match="n='three' is not a valid int"):
        parse_options(["n=three"], {"n": int}, "cmd")


def test_demo_rejects_unknown_options(capsys):
    from visionforge.cli.main import main

    assert main(["demo", "epochs.classifcation=2"]) == 2
    assert "did you mean 'epochs.classification'" in capsys.readouterr().err
