"""`visionforge train -m` (grid) and `hpo.trials=N` (Optuna) on a tiny digits subset."""

from __future__ import annotations

import csv
import json
import os

import pytest

from visionforge.cli.main import main
from visionforge.errors import ConfigError
from visionforge.workflows.sweep import grid_jobs, split_sweep


def test_comma_lists_expand_to_their_cartesian_product():
    fixed, sweep = split_sweep(["model=small_cnn", "optimizer.lr=1e-4,1e-3",
                                "optimizer.name=adam,sgd"])
    assert fixed == ["model=small_cnn"]
    jobs = grid_jobs(sweep)
    assert len(jobs) == 4 and ["optimizer.lr=0.0001", "optimizer.name=sgd"] in jobs


def test_an_interval_needs_optuna():
    _, sweep = split_sweep(["optimizer.lr=interval(1e-4,1e-2)"])
    with pytest.raises(ConfigError, match="hpo.trials"):
        grid_jobs(sweep)


@pytest.fixture(scope="module")
def digits_subset(tmp_path_factory):
    from visionforge.workflows.demo import write_digits_folder

    full = write_digits_folder(tmp_path_factory.mktemp("digits_full"))
    root = tmp_path_factory.mktemp("digits")
    for cls in sorted(full.iterdir()):  # 6 images a class: 60 images
        (root / cls.name).mkdir()
        for f in sorted(cls.iterdir())[:6]:
            (root / cls.name / f.name).write_bytes(f.read_bytes())
    return root


def _common(root, project):
    return [f"data.root={root}", "model=small_cnn", "data.image_size=16", "data.batch_size=16",
            "trainer.max_epochs=1", f"project_dir={project}", "trainer=cpu",
            "logger.tensorboard=false", "callbacks.progress=false"]


@pytest.mark.slow
def test_multirun_grid_writes_table_plot_and_best_link(digits_subset, tmp_path, capsys):
    assert main(["train", "-m", *_common(digits_subset, tmp_path),
                 "optimizer.lr=1e-3,1e-2"]) == 0
    sweep = tmp_path / "sweeps" / "sweep"
    rows = list(csv.DictReader(open(sweep / "results.csv")))
    assert [r["params"] for r in rows] == ["optimizer.lr=0.001", "optimizer.lr=0.01"]
    assert all(r["status"] == "ok" and float(r["val_loss"]) > 0 for r in rows)
    best = json.loads((sweep / "best.json").read_text())
    winner = min(rows, key=lambda r: float(r["val_loss"]))
    assert best["run_dir"] == winner["run_dir"] and best["model_dir"].endswith("model")
    assert os.path.realpath(sweep / "best") == os.path.realpath(winner["run_dir"])
    assert (sweep / "results.png").stat().st_size > 0 and "| trial |" in capsys.readouterr().out


@pytest.mark.slow
def test_optuna_search_runs_the_asked_trials(digits_subset, tmp_path):
    pytest.importorskip("optuna")
    assert main(["train", *_common(digits_subset, tmp_path), "hpo.trials=2", "name=hpo",
                 "optimizer.lr=tag(log,interval(1e-4,1e-1))"]) == 0
    sweep = tmp_path / "sweeps" / "hpo"
    rows = list(csv.DictReader(open(sweep / "results.csv")))
    assert len(rows) == 2 and all(r["params"].startswith("optimizer.lr=") for r in rows)
    lrs = [float(r["params"].split("=")[1]) for r in rows]
    assert all(1e-4 <= lr <= 1e-1 for lr in lrs)
    best = json.loads((sweep / "best.json").read_text())
    assert best["trials"] == 2 and best["finished"] + best["pruned"] == 2


def test_unknown_hpo_option_is_a_clear_error(digits_subset, tmp_path, capsys):
    assert main(["train", "-m", *_common(digits_subset, tmp_path), "hpo.trails=2",
                 "optimizer.lr=1e-3,1e-2"]) != 0
    assert "hpo.trails" in capsys.readouterr().err
