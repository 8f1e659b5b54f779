"""``visionforge config show``: the effective configuration and where each value came from."""

from __future__ import annotations

import argparse

EXAMPLE = """example:
  visionforge config show trainer=cpu optimizer.lr=3e-4
  VISIONFORGE_DEVICE=cpu visionforge config show --yaml > my.yaml
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show the effective configuration and the source of each value",
        description="Show the effective run configuration (defaults < --config file < "
        "VISIONFORGE_* environment < key=value arguments).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = sub.add_parser(
        "show",
        help="print effective values with their sources",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("overrides", nargs="*", help="key=value overrides, e.g. trainer.max_epochs=5")
    show.add_argument("--config", dest="config_file", help="a saved run config (YAML)")
    show.add_argument("--yaml", action="store_true", help="print plain YAML (no sources)")
    show.set_defaults(func=run_show)
    groups = sub.add_parser("groups", help="list the config groups and their options")
    groups.set_defaults(func=run_groups)


def run_show(args: argparse.Namespace) -> int:
    from visionforge.config.loader import compose_config, flatten

    composed = compose_config(args.overrides, config_file=args.config_file)
    if args.yaml:
        print(composed.to_yaml(), end="")
        return 0
    values = flatten(composed.cfg)
    width = max(len(k) for k in values)
    vwidth = min(40, max(len(repr(v)) for v in values.values()))
    for key, value in values.items():
        source = composed.sources.get(key, "default")
        print(f"{key:<{width}}  {value!r:<{vwidth}}  [{source}]")
    # Settings outside the run config (they steer tiling, not training) resolve from the env.
    from visionforge.config.framework import resolve_setting

    mode, source, var = resolve_setting("tile_generation_mode")
    print(f"{'tile_generation_mode':<{width}}  {mode!r:<{vwidth}}  [{f'env {var}' if var else source}]")
    return 0


def run_groups(args: argparse.Namespace) -> int:
    from visionforge.config.loader import GROUPS, group_options

    for group in GROUPS:
        print(f"{group:<10} {', '.join(group_options(group))}")
    return 0
