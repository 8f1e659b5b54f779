"""``visionforge models list`` / ``visionforge models verify`` through the CLI entry point."""

from __future__ import annotations

import json

import pytest
from torch import nn

from visionforge.cli.main import main
from visionforge.models.factory import list_models, register_model
from visionforge.registry import MODELS


def test_list_all(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "custom_convnext" in out and "CustomConvNeXt" in out and "classification" in out
    assert f"{len(list_models())} models" in out


def test_list_pattern_task_params_json(capsys):
    assert main(["models", "list", "*swin*", "--task", "classification", "--params", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["custom_swin_transformer"]
    assert rows[0]["family"] == "swin" and rows[0]["tiny_params"] > 1000


def test_list_no_match_is_usage_error(capsys):
    assert main(["models", "list", "nothing_like_this*"]) == 2
    assert "no registered model matches" in capsys.readouterr().err


def test_verify_named_models(capsys):
    assert main(["models", "verify", "custom_convnext", "CustomMobileOne"]) == 0
    out = capsys.readouterr().out
    assert "custom_mobileone" in out and "backward" in out
    assert "2/2 models passed all checks" in out


def test_verify_json(capsys):
    assert main(["models", "verify", "custom_regnet", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["passed"] and len(result["checks"]) == 7


def test_verify_unknown_name_suggests(capsys):
    assert main(["models", "verify", "custom_convnex"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Did you mean: custom_convnext" in err


def test_verify_needs_names_or_all(capsys):
    assert main(["models", "verify"]) == 2
    assert "--all" in capsys.readouterr().err
    assert main(["models", "verify", "custom_regnet", "--all"]) == 2


@pytest.fixture
def broken_model():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)
            self.unused = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x.mean((2, 3)))

    register_model("zz_broken_test_model", task="classification", test_kwargs={})(Broken)
    yield "zz_broken_test_model"
    MODELS.remove("zz_broken_test_model")


def test_verify_failure_exit_code(broken_model, capsys):
    assert main(["models", "verify", broken_model]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "unused.weight" in out


def test_verify_all_task_filter(capsys):
    assert main(["models", "verify", "--all", "--task", "signal"]) == 0
    out = capsys.readouterr().out
    n = len(list_models(task="signal"))
    assert f"{n}/{n} models passed" in out
