"""``visionforge train``: train a model from key=value overrides or a saved config."""

from __future__ import annotations

import argparse
from typing import Any

EXAMPLE = """examples:
  visionforge train data.root=path/to/images                 # detects the task, picks defaults
  visionforge train model=resnet18 data.root=digits trainer.max_epochs=3
  visionforge train data=segmentation data.root=pairs model=unet trainer=cpu
  visionforge train data=osdb data.root=events/ model=deepepicnn
  visionforge train --config runs/classification/exp/config.yaml   # reproduce a run
  visionforge train --config nnConfig.json                           # an nnTraining2 config
  visionforge train resume=true name=digits      # continue the latest run named digits
  visionforge train resume=runs/classification/digits trainer.max_epochs=20
  visionforge train -m data.root=digits optimizer.lr=1e-4,1e-3 optimizer.name=adam,sgd  # grid
  visionforge train data.root=digits hpo.trials=20 'optimizer.lr=tag(log,interval(1e-4,1e-1))'
resume=true|RUN_DIR|FILE.ckpt continues a run in its own run dir from checkpoints/last.ckpt
(true = the newest run of name= under project_dir); a checkpoint outside a run dir starts a
new run dir from it.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (classification, segmentation, signals)",
        description="Train a model. Options are key=value overrides of the config tree "
        "(see `visionforge config show` and docs/configuration.md); group=option picks a "
        "YAML of a config group (e.g. trainer=cpu).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    parser.add_argument("--config", dest="config_file",
                        help="a saved run config (YAML) or an nnTraining2 JSON config")
    parser.add_argument("--resume", nargs="?", const="true", metavar="PATH",
                        help="same as resume=true|PATH")
    parser.add_argument("-m", "--multirun", action="store_true",
                        help="sweep: one run per combination of comma lists (a,b), or an Optuna "
                        "search with hpo.trials=N; results in PROJECT/sweeps/NAME")
    parser.add_argument("--kfold", type=int, default=None,
                        help="nnTraining2 configs: train N folds and write kfold_summary.json")
    parser.set_defaults(func=run)


def _nntraining2(args: argparse.Namespace) -> int:
    from visionforge.errors import ConfigError
    from visionforge.interop.nntraining2 import is_nntraining2_config, run_nntraining2
    from visionforge.io import read_json
    from visionforge.workflows.run_dir import new_run_dir

    try:
        raw = read_json(args.config_file)
    except (OSError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    if not is_nntraining2_config(raw):
        raise ConfigError(
            f"{args.config_file}: a JSON config must be in nnTraining2's layout (a 'modelConfig' "
            "object); visionforge's own configs are YAML"
        )
    overrides = {}
    project_dir, name = "runs", None
    for item in args.overrides:
        key, _, value = item.partition("=")
        if not _:
            raise ConfigError(f"cannot parse argument {item!r}: expected key=value")
        if key == "project_dir":
            project_dir = value
        elif key == "name":
            name = value
        else:
            import yaml

            overrides[key] = yaml.safe_load(value)
    run_dir = new_run_dir(project_dir, "signal", name)
    results = run_nntraining2(args.config_file, run_dir, kfold=args.kfold,
                              overrides=overrides or None)
    print(f"results in {run_dir} (testResults.json)")
    for level in ("datapoint", "event"):
        part = results.get(level) if isinstance(results, dict) else None
        if isinstance(part, dict) and "tpr" in part:
            print(f"{level:<9} tpr={part['tpr']:.3f} fpr={part['fpr']:.3f}")
    return 0


def _split_resume(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """``resume=`` / ``--resume`` taken out of the overrides (it is not a config key)."""
    resume = getattr(args, "resume", None)
    overrides = []
    if resume is not None and "=" in resume:  # `--resume key=value`: the flag had no PATH
        overrides.append(resume)
        resume = "true"
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if sep and key.strip() in ("resume", "trainer.resume_from", "resume_from"):
            resume = value
        else:
            overrides.append(item)
    if resume is not None and resume.lower() in ("false", "no", "0", ""):
        resume = None
    return resume, overrides


def _compose_resumed(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The run config, the run dir to continue (or None) and the checkpoint (or None).

    Resuming a run dir without ``--config`` uses that run's saved ``config.yaml``, so the
    overrides given now (e.g. more epochs) change only what they name.
    """
    from visionforge.config.loader import compose_config
    from visionforge.workflows.run_dir import resolve_resume

    resume, overrides = _split_resume(args)
    composed = compose_config(overrides, config_file=args.config_file)
    if resume is None:
        return composed.cfg, None, None
    cfg = composed.cfg
    run_dir, ckpt = resolve_resume(resume, cfg.project_dir, cfg.name)
    saved = run_dir / "config.yaml" if run_dir is not None else None
    if saved is not None and saved.is_file():
        if args.config_file is None:
            cfg = compose_config(overrides, config_file=saved).cfg
        _check_same_schedule(compose_config([], config_file=saved).cfg, cfg, saved)
    return cfg, run_dir, ckpt


def _check_same_schedule(saved: Any, cfg: Any, path: Any) -> None:
    """A resumed run keeps its LR schedule, whose length was fixed by the epochs/steps it
    started with; only ``scheduler.name=none`` or ``plateau`` can run longer."""
    from visionforge.errors import ConfigError

    for key in ("max_epochs", "max_steps"):
        before, now = saved.trainer.get(key), cfg.trainer.get(key)
        if before != now and str(cfg.scheduler.name).lower() not in ("none", "plateau"):
            raise ConfigError(
                f"resume: trainer.{key}={now} differs from the run's {before} ({path}), but the "
                f"run's learning-rate schedule ({cfg.scheduler.name}) was sized for {before}; "
                f"resume with trainer.{key}={before}, or start a new run (--config {path} "
                f"trainer.{key}={now})"
            )


def _print_footer(result: Any) -> None:
    """Warnings worth a line (collapse) and the run dir's size."""
    from visionforge.export.report import format_size
    from visionforge.workflows.run_dir import dir_size

    for message in (result.metrics or {}).get("warnings", []):
        print(f"warning: {message}")
    print(f"run dir size: {format_size(dir_size(result.run_dir))} ({result.run_dir})")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.config_file and Path(args.config_file).suffix.lower() == ".json":
        return _nntraining2(args)

    if args.multirun or any(o.split("=", 1)[0] == "hpo.trials" for o in args.overrides):
        from visionforge.workflows.sweep import run_sweep

        run_sweep(args.overrides, config_file=args.config_file)
        return 0

    from visionforge.workflows.summary import print_summary
    from visionforge.workflows.train import train_from_config

    cfg, run_dir, ckpt = _compose_resumed(args)
    result = train_from_config(cfg, run_dir=run_dir, resume_from=ckpt)
    print_summary(result)
    _print_footer(result)
    return 0
