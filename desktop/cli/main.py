"""The ``vertebra-review`` parser, built from every command module's ``register``, and ``main``.

Every command exits 0 on success. On bad input it prints one line naming the file and the problem and exits 1
(``--debug`` shows the traceback). Partial success (some files skipped) exits 3 and lists what was skipped.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence

from core import __version__
from core.errors import VertebraReviewError
from desktop.cli import (
    app,
    bench,
    consensus,
    demo,
    detect,
    diagnose,
    evaluate,
    models,
    pacs,
    retrain,
    study,
    synth,
    train,
)
from desktop.cli.output import EXIT_ERROR, EXIT_INTERNAL, EXIT_OK, warn

#: The command modules, in the order their commands are listed in the help.
COMMANDS = (study, synth, train, detect, evaluate, diagnose, models, consensus, demo, retrain, pacs, app, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vertebra-review",
        description="Review, correct and retrain vertebra disease detection on sagittal CT slices.",
    )
    parser.add_argument("--version", action="version", version=f"vertebra-review {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    app.add_smoke_test(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands)
    return parser


class _OwnRecords(logging.Filter):
    """Lets through only the app's own log records (the ``core`` loggers): what a library logs or warns (pydicom's
    tracebacks for a corrupt frame, Pillow's decompression-bomb warning) is a detail for ``--debug``, since the file's
    problem reaches the user as our one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "core" or record.name.startswith("core.")


def _log_to_stderr(debug: bool) -> logging.Handler:
    """A handler on the root logger that prints log records (and warnings) as ``vertebra-review: ...`` lines on
    stderr: only ours, or with ``--debug`` everything, with the libraries' tracebacks."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vertebra-review: %(message)s"))
    if not debug:
        handler.addFilter(_OwnRecords())
    logging.getLogger().addHandler(handler)
    logging.getLogger("core").setLevel(logging.DEBUG if debug else logging.INFO)
    logging.captureWarnings(True)  # warnings become records of the "py.warnings" logger, so the filter sees them
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.smoke_test is not None:
        args.func = app.cmd_smoke_test
    elif not getattr(args, "command", None):
        parser.print_help()
        return EXIT_OK
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:  # a command group without its subcommand, such as "train"
        parser.parse_args([*(argv or sys.argv[1:]), "--help"])
        return EXIT_ERROR
    handler = _log_to_stderr(args.debug)
    try:
        return func(args)
    except VertebraReviewError as exc:
        if args.debug:
            traceback.print_exc()
        warn(f"vertebra-review: error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        warn("vertebra-review: interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback without --debug
        if args.debug:
            traceback.print_exc()
        warn(f"vertebra-review: internal error: {type(exc).__name__}: {exc} (run with --debug for details)")
        return EXIT_INTERNAL
    finally:
        logging.captureWarnings(False)
        logging.getLogger().removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
