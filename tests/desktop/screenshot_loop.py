"""The event loop helpers of the screenshot scripts (``make_*_screenshots.py``; not tests): run Qt's events until a
condition holds, or for a while."""

from __future__ import annotations

import time


def wait(app, condition, timeout_s: float = 300) -> None:
    """Process events until ``condition()`` holds; stop the script after ``timeout_s``."""
    deadline = time.time() + timeout_s
    while not condition():
        if time.time() > deadline:
            raise SystemExit("timed out")
        app.processEvents()
        time.sleep(0.02)


def settle(app, seconds: float = 0.4) -> None:
    """Process events for ``seconds`` (redraws, queued signals)."""
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.02)
