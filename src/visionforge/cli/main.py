"""Entry point of the ``visionforge`` command.

Each subcommand lives in its own module under ``visionforge.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a
function taking the parsed ``argparse.Namespace`` and returning an exit code.
Subcommand modules import heavy libraries inside ``func`` only, so that
``visionforge --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import importlib
import logging
import signal
import sys
from collections.abc import Sequence

from visionforge import __version__

# subcommand -> module; a module that is not present yet is skipped.
COMMANDS: dict[str, str] = {
    "train": "visionforge.cli.train_cmd",
    "evaluate": "visionforge.cli.evaluate_cmd",
    "predict": "visionforge.cli.predict_cmd",
    "models": "visionforge.cli.models_cmd",
    "data": "visionforge.cli.data_cmd",
    "demo": "visionforge.cli.demo_cmd",
    "config": "visionforge.cli.config_cmd",
    "export": "visionforge.cli.export_cmd",
    "explain": "visionforge.cli.explain_cmd",
    "serve": "visionforge.cli.serve_cmd",
    "segment-large": "visionforge.cli.segment_large_cmd",
    "slides": "visionforge.cli.slides_cmd",
    "prune": "visionforge.cli.prune_cmd",
    "benchmark": "visionforge.cli.benchmark_cmd",
    "pipeline": "visionforge.cli.pipeline_cmd",
}

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors suggest the closest valid choice."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if "invalid choice" in message:
            bad = message.split("invalid choice: ")[1].split("'")[1] if "'" in message else ""
            choices = [c for c in COMMANDS if c]
            close = difflib.get_close_matches(bad, choices, n=3, cutoff=0.5)
            if close:
                message += f"\n  did you mean: {', '.join(close)}?"
        elif message.startswith("unrecognized arguments:"):
            message += self._option_hint(message.split(":", 1)[1].split())
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


    def _value_after(self, flag: str) -> str | None:
        """The word after ``flag`` on the command line (``--epochs 3`` -> ``"3"``); argparse
        has already taken it as a positional argument."""
        argv = list(getattr(self, "raw_argv", None) or sys.argv[1:])
        if flag in argv[:-1]:
            following = argv[argv.index(flag) + 1]
            return None if following.startswith("-") or "=" in following else following
        return None

    def _option_hint(self, unknown: list[str]) -> str:
        options = set()
        stack: list[argparse.ArgumentParser] = [self]
        while stack:
            parser = stack.pop()
            for action in parser._actions:
                options.update(action.option_strings)
                if isinstance(action, argparse._SubParsersAction):
                    stack.extend(action.choices.values())
        from visionforge.cli.options import flag_hint

        hints = []
        for arg in unknown:
            if arg.startswith("--"):
                close = difflib.get_close_matches(arg.split("=")[0], sorted(options), n=2, cutoff=0.85)
                if close:
                    hints.append(f"{arg}: did you mean {' or '.join(close)}?")
                else:
                    hints.append(flag_hint(arg, self._value_after(arg)))
        return "".join(f"\n  {h}" for h in hints)


#: library warnings that say nothing a visionforge user can act on (shown with -v)
_NOISE = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*smaller than the logging interval.*",
    r".*does not have many workers.*",
    r".*`training_step` returned `None`.*",
    r".*exists and is not empty.*",  # resuming in its own run dir (the CSV log is merged)
)


#: Lightning's chatty loggers; set before Lightning is imported, since its import resets the
#: level of "lightning", "lightning.pytorch" and "lightning.fabric" (not of these children)
_LIGHTNING_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
    "lightning.pytorch.utilities.distributed",
    "lightning.fabric.utilities.distributed",
    "lightning.fabric.utilities.seed",
)


def setup_logging(verbose: int = 0) -> None:
    """Quiet by default: warnings and errors only, without Lightning's INFO lines (each of
    which it printed twice: its own handler and the root's), its "litlogger" tip or
    known-harmless library warnings. ``-v`` shows INFO from every library, ``-vv`` DEBUG."""
    import warnings

    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    if not verbose:
        for pattern in _NOISE:
            warnings.filterwarnings("ignore", message=pattern)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand registered."""
    parser = _Parser(
        prog="visionforge",
        description=(
            "Train, evaluate, explain, export and serve image and signal models.\n"
            "Options are given as key=value overrides, e.g.\n"
            "  visionforge train model=resnet18 data.root=path/to/images trainer.max_epochs=10"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"visionforge {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="-v: also library INFO logs and warnings; -vv: debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_name in COMMANDS.values():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(sub)
    return parser


# What to do about the file-system errors a run commonly meets.
_OS_ERROR_HINTS = {
    errno.EROFS: "choose a writable folder (project_dir=... or out=...)",
    errno.EACCES: "choose a folder you may write to (project_dir=... or out=...)",
    errno.EPERM: "choose a folder you may write to (project_dir=... or out=...)",
    errno.ENOSPC: "free disk space or write to another disk",
    errno.EDQUOT: "free space within your disk quota or write elsewhere",
    errno.EFBIG: "the file-size limit was reached (see `ulimit -f`); raise it or write smaller files",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError``: the path, the errno meaning and what to do."""
    code = exc.errno
    what = exc.strerror or str(exc)
    if code in errno.errorcode:
        what = f"{what} ({errno.errorcode[code]})"
    where = exc.filename if exc.filename is not None else "a file"
    line = f"cannot access {where}: {what}"
    hint = _OS_ERROR_HINTS.get(code) if code is not None else None
    return f"{line}; {hint}" if hint else line


def _file_system_cause(exc: BaseException) -> OSError | None:
    # The OSError (one with a hint above) behind an exception, if it is one of those.
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _OS_ERROR_HINTS:
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _ignore_file_size_signal() -> None:
    # Past RLIMIT_FSIZE the kernel sends SIGXFSZ, whose default action kills the process
    # with a core dump; ignored, the write fails with EFBIG and is reported like any OSError.
    if hasattr(signal, "SIGXFSZ"):
        with contextlib.suppress(ValueError, OSError):  # ValueError: not the main thread
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 failure, 2 usage/input error)."""
    from visionforge.errors import VisionforgeError

    parser = build_parser()
    parser.raw_argv = list(argv) if argv is not None else None  # type: ignore[attr-defined]
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE if args.command is None else 0
    _ignore_file_size_signal()
    try:
        code = args.func(args)
    except VisionforgeError as exc:
        print(f"visionforge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as exc:
        print(f"visionforge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head` etc.
        sys.stderr.close()
        return 0
    except OSError as exc:  # read-only folder, full disk, file-size limit, ...
        print(f"visionforge: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("visionforge: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Libraries with C++ writers re-raise a write failure as another error type.
        cause = _file_system_cause(exc)
        if cause is None:
            raise
        print(f"visionforge: error: {describe_os_error(cause)}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
