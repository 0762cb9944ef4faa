"""Edit commands the review needs beyond :mod:`core.annotations.commands`: several edits as one undo step."""

from __future__ import annotations

from collections.abc import Sequence

from core.annotations.commands import Command
from core.annotations.model import SliceAnnotation


class CompoundCommand(Command):
    """Apply ``commands`` in order as one edit; undo reverts them in reverse order. All or nothing."""

    def __init__(self, commands: Sequence[Command], text: str) -> None:
        self.commands = tuple(commands)
        self.text = text

    def apply(self, state: SliceAnnotation) -> SliceAnnotation:
        done: list[Command] = []
        current = state
        try:
            for command in self.commands:
                current = command.apply(current)
                done.append(command)
        except Exception:
            for command in reversed(done):
                current = command.revert(current)
            raise
        return current

    def revert(self, state: SliceAnnotation) -> SliceAnnotation:
        for command in reversed(self.commands):
            state = command.revert(state)
        return state
