"""The first thing a training child process does (Qt-free; ``desktop/workers.py`` starts the process with
:func:`run_supervised` as its target):

- it becomes the leader of its own process group (POSIX), so that Cancel can end it together with any process it
  started (data loader workers) in one signal;
- it lowers its scheduling priority, so that the review session in the app stays responsive while it trains;
- a watchdog thread ends the whole group when the app's process goes away (a crash or a kill), so a training run
  never outlives the app as an orphan, and never activates a model nobody waits for.

Then it calls the real body, for example :func:`core.training.retrain_child.run_retrain`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

#: How much lower than the app the child runs (POSIX nice increment).
NICENESS = 5


def _end_own_group() -> None:
    if sys.platform != "win32":
        try:
            os.killpg(os.getpgid(0), signal.SIGKILL)
        except OSError:
            pass
    os._exit(1)


def _watch_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def wait() -> None:
        parent.join()  # returns when the parent process has ended
        _end_own_group()

    threading.Thread(target=wait, name="parent-watchdog", daemon=True).start()


def run_supervised(body: Callable[..., Any], *args: Any) -> None:
    """Set the process up as described in the module, then run ``body(*args)``."""
    if sys.platform != "win32":
        try:
            os.setpgid(0, 0)
        except OSError:
            pass
        try:
            os.nice(NICENESS)
        except OSError:
            pass
    _watch_parent()
    body(*args)
