"""Consensus commands (issue 7)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Adds ``consensus``."""
