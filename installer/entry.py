"""The packaged application's entry point: the ``vertebra-review`` command line, as installed from source.

With no arguments (a double click, a desktop entry without arguments) the bundle opens the desktop app. Child
processes started through multiprocessing re-enter here, which ``freeze_support`` hands over to them.
"""

from __future__ import annotations

import multiprocessing
import sys


def main() -> int:
    multiprocessing.freeze_support()
    from desktop.cli import main as cli_main

    argv = sys.argv[1:]
    if not argv and getattr(sys, "frozen", False):
        argv = ["gui"]
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
