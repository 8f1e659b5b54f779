"""``visionforge train``: train a model from key=value overrides or a saved config."""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  visionforge train data.root=path/to/images                 # detects the task, picks defaults
  visionforge train model=resnet18 data.root=digits trainer.max_epochs=3
  visionforge train data=segmentation data.root=pairs model=unet trainer=cpu
  visionforge train data=osdb data.root=events/ model=deepepicnn
  visionforge train --config runs/classification/exp/config.yaml   # reproduce a run
  visionforge train --config nnConfig.json                           # an nnTraining2 config
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


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.config_file and Path(args.config_file).suffix.lower() == ".json":
        return _nntraining2(args)

    from visionforge.config.loader import compose_config
    from visionforge.workflows.summary import print_summary
    from visionforge.workflows.train import train_from_config

    composed = compose_config(args.overrides, config_file=args.config_file)
    result = train_from_config(composed.cfg)
    print_summary(result)
    return 0
