"""``visionforge models``: list the registered models and verify them.

visionforge models list            # every registered model
visionforge models list '*vit*' --task classification --params
visionforge models verify custom_convnext CustomMaxViT
visionforge models verify --all
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from visionforge.errors import ConfigError

TASK_CHOICES = ("classification", "segmentation", "multitask", "signal", "backbone")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list registered models or verify them",
        description=(
            "List registered models or run the 7 model checks (device transfer, forward, "
            "output shape, trainable parameters, backward, train/eval switch, layer inventory)\n"
            "on their tiny test variants. Examples:\n"
            "  visionforge models list '*vit*' --task classification\n"
            "  visionforge models verify custom_convnext deepepicnn\n"
            "  visionforge models verify --all\n"
            "  visionforge models card runs/classification/digits/model"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")

    p_list = sub.add_parser("list", help="table of registered models")
    p_list.add_argument("pattern", nargs="?", default=None, help="wildcard, e.g. '*swin*'")
    p_list.add_argument("--task", choices=TASK_CHOICES, default=None, help="only this task")
    p_list.add_argument(
        "--params", action="store_true", help="also build each tiny variant and count parameters"
    )
    p_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_list.set_defaults(func=run_list)

    p_verify = sub.add_parser("verify", help="run the 7 checks on models' tiny variants")
    p_verify.add_argument("names", nargs="*", help="registry names or aliases")
    p_verify.add_argument("--all", action="store_true", help="verify every registered model")
    p_verify.add_argument("--task", choices=TASK_CHOICES, default=None, help="with --all: one task")
    p_verify.add_argument("--device", default="cpu", help="cpu (default), cuda, mps")
    p_verify.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_verify.set_defaults(func=run_verify)

    p_card = sub.add_parser("card", help="(re)write MODEL_DIR/model_card.md from the run's files")
    p_card.add_argument("model_dir", help="model dir (RUN_DIR/model written by visionforge train)")
    p_card.add_argument("--print", action="store_true", help="print the card instead of writing it")
    p_card.set_defaults(func=run_card)

    parser.set_defaults(func=lambda args: _help(parser))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


def run_list(args: argparse.Namespace) -> int:
    from visionforge.models.factory import create_model, list_models, model_entry

    names = list_models(args.pattern, task=args.task)
    if not names:
        raise ConfigError(
            f"no registered model matches pattern={args.pattern!r} task={args.task!r}; "
            "run 'visionforge models list' to see all"
        )
    rows = []
    for name in names:
        entry = model_entry(name)
        meta = entry.metadata
        row = {
            "name": name,
            "aliases": list(entry.aliases),
            "task": meta.get("task"),
            "family": meta.get("family"),
            "description": meta.get("description", ""),
        }
        if args.params:
            model = create_model(name, **meta.get("test_kwargs", {}))
            row["tiny_params"] = sum(p.numel() for p in model.parameters())
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    headers = ["name", "aliases", "task", "family"]
    if args.params:
        headers.append("tiny params")
    headers.append("description")
    table_rows = []
    for r in rows:
        cells = [r["name"], ",".join(r["aliases"]) or "-", r["task"], r["family"]]
        if args.params:
            cells.append(f"{r['tiny_params']:,}")
        cells.append(r["description"])
        table_rows.append(cells)
    print(_table(headers, table_rows))
    print(f"\n{len(rows)} models. Any timm architecture name is also accepted by create_model.")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from visionforge.models.factory import list_models, model_entry
    from visionforge.models.verify import CHECKS, verify_all

    if args.all and args.names:
        raise ConfigError("give model names or --all, not both")
    if not args.all and not args.names:
        raise ConfigError("name the models to verify (e.g. 'custom_convnext') or pass --all")
    if args.all:
        names = list_models(task=args.task)
    else:
        names = [model_entry(n).name for n in args.names]  # unknown names: error + suggestions
    results = verify_all(names=names, device=args.device)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        headers = ["model", "params", *CHECKS, "result"]
        rows = []
        for r in results:
            marks = []
            for check in CHECKS:
                found = [c for c in r.checks if c.name == check]
                marks.append("ok" if found and found[0].passed else ("FAIL" if found else "-"))
            rows.append([r.name, f"{r.params_total:,}", *marks, "PASS" if r.passed else "FAIL"])
        print(_table(headers, rows))
        failed = [r for r in results if not r.passed]
        for r in failed:
            print(f"  {r.summary()}")
        print(f"\n{len(results) - len(failed)}/{len(results)} models passed all checks")
    return 0 if all(r.passed for r in results) else 1


def run_card(args: argparse.Namespace) -> int:
    from visionforge.workflows.card import render_model_card, write_model_card

    if args.print:
        print(render_model_card(args.model_dir), end="")
        return 0
    print(f"wrote {write_model_card(args.model_dir)}")
    return 0
