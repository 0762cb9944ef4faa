"""``gui`` and ``--smoke-test``: the two commands that start the desktop app.

They import the Qt side (:mod:`desktop.app`, :mod:`desktop.smoke`) only when run, so that every other command works
on a machine without a display or without PySide6.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import VertebraReviewError
from desktop.cli.output import EXIT_OK, say


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        from desktop.app import main as app_main
    except ImportError as exc:
        raise VertebraReviewError(f"the desktop app cannot start: {exc}") from exc
    return int(app_main(path=args.path, demo=args.demo, reader=args.reader))


def cmd_smoke_test(args: argparse.Namespace) -> int:
    try:
        from desktop.smoke import run_smoke_test
    except ImportError as exc:
        raise VertebraReviewError(f"smoke test failed: the desktop app cannot start: {exc}") from exc
    say(run_smoke_test(args.smoke_test or None).summary())
    return EXIT_OK


def add_smoke_test(parser: argparse.ArgumentParser) -> None:
    """Adds ``--smoke-test [STUDY]`` to the top-level parser (an option, as installers and packagers expect)."""
    parser.add_argument(
        "--smoke-test",
        nargs="?",
        const="",
        metavar="STUDY",
        help="start the app offscreen on the demo study (or STUDY), run its models on one slice, exit 0 if all works",
    )


def register(commands: argparse._SubParsersAction) -> None:
    """Adds ``gui``."""
    gui = commands.add_parser("gui", help="open the desktop app")
    gui.add_argument("path", nargs="?", type=Path, help="a study, DICOM folder, NIfTI or image to open")
    gui.add_argument("--demo", action="store_true",
                     help="open a working copy of the bundled demo study with its demo models")
    gui.add_argument("--reader", help="your reader id")
    gui.set_defaults(func=cmd_gui)
