"""Config composition priorities, validation errors and the `config show` / top-level CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from visionforge.cli.main import main
from visionforge.config.loader import compose_config, save_config
from visionforge.errors import ConfigError


def test_priority_argument_over_env_over_file_over_default(tmp_path):
    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text("trainer:\n  device: mps\n  max_epochs: 7\noptimizer:\n  lr: 0.5\n")
    env = {"VISIONFORGE_DEVICE": "cpu", "VISIONFORGE_AMP": "true"}
    c = compose_config(["optimizer.lr=0.25"], config_file=cfg_file, env=env)
    assert c.cfg.optimizer.lr == 0.25 and c.sources["optimizer.lr"] == "argument"
    assert c.cfg.trainer.device == "cpu" and c.sources["trainer.device"] == "env VISIONFORGE_DEVICE"
    assert c.cfg.trainer.max_epochs == 7 and c.sources["trainer.max_epochs"] == "config file my.yaml"
    assert c.cfg.trainer.mixed_precision is True
    assert c.cfg.optimizer.weight_decay == 1e-4 and c.sources["optimizer.weight_decay"] == "default"
    # an explicit argument beats the environment for the same key
    c2 = compose_config(["trainer.device=mps"], env=env)
    assert c2.cfg.trainer.device == "mps" and c2.sources["trainer.device"] == "argument"


def test_group_selection_and_shortcuts(tmp_path):
    c = compose_config(["trainer=multi_gpu", "optimizer=sgd", "model=convnext_atto",
                        f"data={tmp_path}"], env={})
    assert c.cfg.trainer.strategy == "ddp" and c.sources["trainer.strategy"] == "trainer=multi_gpu"
    assert c.cfg.optimizer.name == "sgd" and c.cfg.optimizer.lr == 0.01
    assert c.cfg.model.name == "convnext_atto"
    assert c.cfg.data.root == str(tmp_path)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["trainer.max_epoch=3"], "did you mean trainer.max_epochs="),
        (["trainer.max_epochs=abc"], "trainer.max_epochs"),
        (["trainer=gpux"], "choose one of: cpu, debug, default, gpu, multi_gpu"),
        (["nonsense"], "key=value"),
        (["scheduler.name=cosine"], "choose one of: auto, onecycle"),
        (["task=detection"], "choose one of: auto, classification"),
    ],
)
def test_bad_config_errors_name_the_key_and_choices(overrides, expected):
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        compose_config(overrides, env={})


def test_saved_config_reproduces_values(tmp_path):
    c = compose_config(["trainer=cpu", "trainer.max_epochs=4", "data.splits=[0.6,0.2,0.2]"], env={})
    path = save_config(c, tmp_path / "config.yaml")
    again = compose_config([], config_file=path, env={})
    assert again.to_yaml() == c.to_yaml()


def test_config_show_cli_prints_sources(capsys, monkeypatch):
    monkeypatch.setenv("VISIONFORGE_COMPILE", "true")
    assert main(["config", "show", "optimizer.lr=0.1"]) == 0
    out = capsys.readouterr().out
    assert "[argument]" in out.split("optimizer.lr")[1].splitlines()[0]
    assert "[env VISIONFORGE_COMPILE]" in out.split("trainer.compile")[1].splitlines()[0]


def test_cli_errors_are_one_line_with_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "visionforge", "config", "show", "trainer.epochs=3"],
        capture_output=True, text=True, cwd=Path(__file__).parent,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "trainer.epochs" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "visionforge", "trian"], capture_output=True, text=True)
    assert proc.returncode == 2 and "did you mean: train" in proc.stderr


def test_every_subcommand_has_help(capsys):
    from visionforge.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"config"} <= set(sub.choices)
    for name in sub.choices:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert "usage: visionforge " + name in capsys.readouterr().out


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from visionforge.cli.main import build_parser; build_parser().format_help();"
        "print(sorted(m for m in ('torch', 'timm', 'lightning', 'tensorflow') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_unknown_option_suggests_a_fix():
    proc = subprocess.run([sys.executable, "-m", "visionforge", "train", "--confg", "x.yaml"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "did you mean --config" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "visionforge", "train", "--max-epochs", "3"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "key=value" in proc.stderr and "Traceback" not in proc.stderr
