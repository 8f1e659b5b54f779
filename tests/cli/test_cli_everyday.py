"""Issue 13, the everyday CLI path: resume, evaluate splits, clean failures, honest output.

One tiny run (trained once for the module) is resumed, evaluated and inspected; the rest
are unit-sized checks of the failure paths and messages.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from visionforge.cli.main import main

TINY = ["model=small_cnn", "model.kwargs.width=8", "data.image_size=16", "data.batch_size=8",
        "trainer=cpu", "data.augment=false", "scheduler.name=none"]


def _class_folder(root: Path, n_per_class: int = 10, size: int = 16) -> Path:
    """Two classes told apart by brightness: ``root/dark/*.png`` and ``root/light/*.png``."""
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("light", 210)):
        folder = root / name
        folder.mkdir(parents=True)
        noise = rng.normal(0, 20, (n_per_class, size, size, 3))
        for i, pixels in enumerate(np.clip(level + noise, 0, 255).astype(np.uint8)):
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def _main(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-epoch run trained with a *relative* data.root, as a new user would type it."""
    base = tmp_path_factory.mktemp("everyday")
    _class_folder(base / "data")
    old = os.getcwd()
    os.chdir(base)
    try:
        code, out, err = _main(["train", "data.root=data", "name=tiny", "trainer.max_epochs=2",
                                "project_dir=runs", *TINY])
    finally:
        os.chdir(old)
    assert code == 0, err
    return {"base": base, "dir": base / "runs" / "classification" / "tiny", "out": out}


# -- train: output, config, checkpoints ---------------------------------------------------

def test_saved_config_has_absolute_paths(run):
    cfg = yaml.safe_load((run["dir"] / "config.yaml").read_text())
    root = Path(cfg["data"]["root"])
    assert root.is_absolute() and root == (run["base"] / "data").resolve()


def test_train_prints_one_line_per_epoch_and_the_run_dir_size(run):
    lines = run["out"].splitlines()
    epochs = [ln for ln in lines if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in epochs] == ["1/2", "2/2"]
    assert all("train_loss" in ln and "val_loss" in ln and ln.endswith("s") for ln in epochs)
    assert "val_loss" in epochs[0] and "*" in epochs[0]  # the monitored metric is marked
    size = [ln for ln in lines if ln.startswith("run dir size:")]
    assert len(size) == 1 and str(run["dir"]).endswith(size[0].split("(")[-1].rstrip(")"))


def test_best_checkpoint_holds_weights_only_last_keeps_the_state(run):
    best = torch.load(run["dir"] / "checkpoints" / "best.ckpt", map_location="cpu",
                      weights_only=False)
    last = torch.load(run["dir"] / "checkpoints" / "last.ckpt", map_location="cpu",
                      weights_only=False)
    assert "state_dict" in best and not best.get("optimizer_states")
    assert last.get("optimizer_states")
    assert (run["dir"] / "checkpoints" / "best.ckpt").stat().st_size < \
        (run["dir"] / "checkpoints" / "last.ckpt").stat().st_size


def test_best_checkpoint_keeps_the_state_when_asked():
    from visionforge.config.settings import TrainSettings
    from visionforge.engine.callbacks.standard import build_callback

    for asked in (False, True):
        settings = TrainSettings(save_optimizer_state_in_best=asked)
        best = [cb for cb in build_callback("checkpoint", settings, Path("ck"))
                if cb.monitor is not None][0]
        assert best.save_weights_only is (not asked)


# -- evaluate: splits, leakage, fresh folders ------------------------------------------------

def test_evaluate_split_test_uses_the_run_manifest_and_never_overwrites(run):
    rows = (run["dir"] / "splits.csv").read_text().splitlines()[1:]
    n_test = sum(1 for r in rows if r.endswith(",test"))
    code, out, err = _main(["evaluate", str(run["dir"]), "split=test"])
    assert code == 0, err
    assert f"({n_test} samples)" in out and "leakage" not in out
    first = run["dir"] / "evaluation" / "metrics.json"
    assert json.loads(first.read_text())["split"] == "test"
    before = first.read_bytes()
    code, out, err = _main(["evaluate", str(run["dir"] / "model"), "split=val"])
    assert code == 0, err
    assert (run["dir"] / "evaluation2" / "metrics.json").is_file()
    assert first.read_bytes() == before  # the first evaluation is untouched


def test_evaluating_training_images_warns_about_leakage(run):
    rows = (run["dir"] / "splits.csv").read_text().splitlines()[1:]
    n_train = sum(1 for r in rows if r.endswith(",train"))
    code, out, err = _main(["evaluate", str(run["dir"]), str(run["base"] / "data")])
    assert code == 0, err
    warning = [ln for ln in out.splitlines() if "leakage" in ln]
    assert len(warning) == 1 and f"{n_train} of {len(rows)} images" in warning[0]
    newest = max((p for p in run["dir"].glob("evaluation*")), key=lambda p: p.stat().st_mtime)
    assert any("leakage" in w for w in json.loads((newest / "metrics.json").read_text())["warnings"])


def test_evaluate_rejects_a_bad_split(run):
    code, _, err = _main(["evaluate", str(run["dir"]), "split=holdout"])
    assert code == 2 and "train, val, test" in err


# -- resume ----------------------------------------------------------------------------------

def test_resume_continues_the_run_in_its_own_run_dir(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # another directory: the saved config must still work
    code, out, err = _main(["train", f"resume={run['dir']}", "trainer.max_epochs=3"])
    assert code == 0, err
    assert "resuming from" in out and str(run["dir"] / "checkpoints" / "last.ckpt") in out
    assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("epoch ")] == ["3/3"]
    history = json.loads((run["dir"] / "history.json").read_text())
    assert len(history["train_loss"]) == 3  # the two earlier epochs plus the resumed one
    logged = (run["dir"] / "logs" / "metrics.csv").read_text().splitlines()
    epochs = {row.split(",")[0] for row in logged[1:]}
    assert {"0", "1", "2"} <= epochs  # the CSV log of the first epochs is kept
    assert sorted(p.name for p in (run["base"] / "runs" / "classification").iterdir()) == ["tiny"]
    assert not (tmp_path / "runs").exists()


def test_resume_true_finds_the_latest_run_of_the_name(run):
    from visionforge.workflows.run_dir import resolve_resume

    run_dir, ckpt = resolve_resume("true", run["base"] / "runs", "tiny")
    assert run_dir == run["dir"] and ckpt == run["dir"] / "checkpoints" / "last.ckpt"
    run_dir, ckpt = resolve_resume(str(ckpt), "elsewhere", None)
    assert run_dir == run["dir"]


@pytest.mark.parametrize("args, expected", [
    (["resume=true", "name=nothing_here"], "no run named 'nothing_here'"),
    (["resume=/no/such/run"], "no such run dir or checkpoint"),
])
def test_resume_errors_are_one_line(tmp_path, args, expected):
    code, _, err = _main(["train", *args, f"project_dir={tmp_path}"])
    assert code == 2 and expected in err and "Traceback" not in err


def test_resume_refuses_a_longer_onecycle_schedule(run):
    code, _, err = _main(["train", f"resume={run['dir']}", "trainer.max_epochs=9",
                          "scheduler.name=onecycle"])
    assert code == 2 and "learning-rate schedule" in err


# -- failures leave nothing behind -----------------------------------------------------------

def _corrupt_folder(root: Path) -> Path:
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            (root / name / f"{i}.png").write_bytes(b"not a png")
    return root


@pytest.mark.parametrize("case", ["missing", "empty_classes", "corrupt", "bad_model"])
def test_failed_runs_leave_no_run_dir(tmp_path, case):
    project = tmp_path / "runs"
    args = ["train", f"project_dir={project}", *TINY]
    if case == "missing":
        args.append(f"data.root={tmp_path / 'nope'}")
    elif case == "empty_classes":
        (tmp_path / "d" / "a").mkdir(parents=True)
        (tmp_path / "d" / "b").mkdir()
        args += [f"data.root={tmp_path / 'd'}", "data.kind=folder"]
    elif case == "corrupt":
        args += [f"data.root={_corrupt_folder(tmp_path / 'd')}"]
    else:
        args += [f"data.root={_class_folder(tmp_path / 'd', 2)}", "model=resnet_18"]
    code, _, err = _main(args)
    assert code == 2, err
    assert not project.exists(), sorted(str(p) for p in project.rglob("*"))
    if case == "corrupt":  # the fix is spelt as the CLI needs it
        assert "data.on_bad_image=skip" in err and "on_bad_image='skip'" not in err
    if case == "bad_model":
        assert "resnet18" in err.split("Did you mean:")[1].split("?")[0].split(", ")[0]


# -- collapse --------------------------------------------------------------------------------

class _Constant(torch.nn.Module):
    """A 'segmentation model' that predicts class 0 everywhere."""

    def forward(self, x):
        out = torch.zeros(x.shape[0], 2, *x.shape[-2:])
        out[:, 0] = 1.0
        return out


def test_segmentation_collapse_is_flagged_in_metrics(tmp_path):
    from visionforge.workflows.train import evaluate_into_run_dir

    masks = torch.zeros(4, 8, 8, dtype=torch.long)
    masks[:, :4] = 1
    data = [{"image": torch.rand(3, 8, 8), "mask": m} for m in masks]
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    metrics = evaluate_into_run_dir(_Constant(), loader, tmp_path, task="segmentation",
                                    class_names=["background", "cell"], split="test")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["collapsed"] is True and metrics["collapsed"] is True
    assert "'background' for every pixel" in saved["warnings"][0]


def test_collapse_warnings_ignore_healthy_models():
    from visionforge.workflows.train import collapse_warnings

    assert collapse_warnings({"confusion_matrix": [[5, 1], [2, 4]]}) == []
    assert collapse_warnings({"confusion_matrix": [[5, 0], [0, 0]]}) == []  # one class present
    nested = {"segmentation": {"confusion_matrix": [[0, 9], [0, 3]], "num_pixels": 12}}
    assert "segmentation collapsed" in collapse_warnings(nested)[0]


# -- data check / data split --copy ----------------------------------------------------------

def test_data_check_writes_to_the_current_directory_not_the_dataset(tmp_path, monkeypatch):
    data = _class_folder(tmp_path / "data", 2)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, _, err = _main(["data", "check", str(data)])
    assert code == 0, err
    assert (work / "data_check.json").is_file() and not (data / "data_check.json").exists()
    code, _, _ = _main(["data", "check", str(data), f"out={tmp_path / 'r.json'}"])
    assert code == 0 and (tmp_path / "r.json").is_file()
    assert not (data / "data_check.json").exists()


def test_the_folder_data_split_copy_writes_trains_directly(tmp_path):
    from visionforge.config.loader import compose_config
    from visionforge.workflows.data_setup import prepare_data, resolve_kind

    data = _class_folder(tmp_path / "data", 10)
    code, _, err = _main(["data", "split", str(data), f"out={tmp_path / 's.csv'}",
                          "--copy", str(tmp_path / "copied")])
    assert code == 0, err
    cfg = compose_config([f"data.root={tmp_path / 'copied'}", "data.image_size=16"], env={}).cfg
    assert resolve_kind(cfg.data) == "folder"
    prepared = prepare_data(cfg.data, None, 16)
    assert prepared.class_names == ["dark", "light"] and len(prepared.train) > 0
    assert prepared.test is not None


# -- model=auto: docs and printed defaults match the code ------------------------------------

def test_auto_model_docs_and_printed_defaults_match_the_code():
    from visionforge.config.loader import compose_config
    from visionforge.workflows.data_setup import default_image_size
    from visionforge.workflows.detect import task_defaults
    from visionforge.workflows.train import _resolve_defaults

    docs = Path(__file__).resolve().parents[2] / "docs"
    reference = (docs / "configuration.md").read_text()
    line = next(ln for ln in reference.splitlines() if ln.startswith("- `model=auto`"))
    assert "small CNN" not in line and task_defaults("folder").model in line
    printed: list[str] = []
    cfg = compose_config([], env={}).cfg
    _resolve_defaults(cfg, "folder", printed.append)
    assert f"model={task_defaults('folder').model}" in printed[0]
    assert f"data.image_size={default_image_size('folder')}" in printed[0]


@pytest.mark.parametrize("kind", ["folder", "segmentation", "signals", "osdb", "detection"])
def test_auto_builds_the_chosen_model_as_its_model_config_does(kind):
    """One source of truth: ``model=auto`` takes the chosen model's kwargs from its
    ``conf/model`` option, the same ones ``model=NAME`` composes."""
    from omegaconf import OmegaConf

    from visionforge.config.loader import CONF_DIR, compose_config
    from visionforge.workflows.train import _resolve_defaults

    name, kwargs = _resolve_defaults(compose_config([], env={}).cfg, kind, lambda _: None)
    option = next(p.stem for p in (CONF_DIR / "model").glob("*.yaml")
                  if OmegaConf.load(p).name == name)
    named = compose_config([f"model={option}"], env={}).cfg
    assert kwargs == OmegaConf.to_container(named.model.kwargs)


# -- did you mean ----------------------------------------------------------------------------

def test_unknown_model_suggests_timm_names_first():
    from visionforge.errors import UnknownNameError
    from visionforge.models import create_model

    with pytest.raises(UnknownNameError) as err:
        create_model("resnet_18")
    close = str(err.value).split("Did you mean: ")[1].split("?")[0].split(", ")
    assert close[0] == "resnet18" and "resnet1d" not in close[:1]


@pytest.mark.parametrize("override, best", [
    ("trainer.epochs=3", "trainer.max_epochs"),
    ("epochs=3", "trainer.max_epochs"),
    ("trainer.lr=0.1", "optimizer.lr"),
    ("data.on_bad=skip", "data.on_bad_image"),
])
def test_unknown_config_keys_name_the_closest_not_every_key(override, best):
    from visionforge.config.loader import compose_config
    from visionforge.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        compose_config([override], env={})
    message = str(err.value)
    assert f"did you mean {best}=" in message
    assert "validation_freq" not in message and "accumulate_grad_batches" not in message


def test_unknown_flags_get_the_cli_spelling(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--epochs", "3"])
    err = capsys.readouterr().err
    assert "trainer.max_epochs=3" in err and " epochs=VALUE" not in err


# -- quiet console ---------------------------------------------------------------------------

def test_quiet_logging_hides_lightning_info_and_known_warnings():
    import warnings

    from visionforge.cli.main import setup_logging

    setup_logging(0)
    import lightning.pytorch  # noqa: F401 - its import must not undo the setting

    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert not rank_zero.isEnabledFor(logging.INFO) and rank_zero.isEnabledFor(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        setup_logging(0)
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", stacklevel=1)
    assert not caught
    setup_logging(1)
    assert rank_zero.isEnabledFor(logging.INFO)
    setup_logging(0)


def test_progress_bar_fits_80_columns(monkeypatch):
    from lightning.pytorch.callbacks import TQDMProgressBar

    from visionforge.engine.callbacks.console import CompactProgressBar

    full = {"train_loss_step": 0.123456, "v_num": 3, "val_loss": 0.5, "val_accuracy": 0.75,
            "val_f1_macro": 0.7, "train_loss": 0.2}
    monkeypatch.setattr(TQDMProgressBar, "get_metrics", lambda self, t, m: dict(full))
    bar = CompactProgressBar("val_accuracy")
    shown = bar.get_metrics(None, None)
    assert shown == {"loss": "0.1235", "val_accuracy": "0.75"}

    class _Bar:
        dynamic_ncols, ncols = True, None

    narrowed = bar._narrow(_Bar())
    assert narrowed.ncols == 80 and narrowed.dynamic_ncols is False
