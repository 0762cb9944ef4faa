"""The name of one slice of a study: its case and its slice id."""

from __future__ import annotations

from typing import NamedTuple


class SliceKey(NamedTuple):
    """``SliceKey("case-0001", "s003")``: a tuple, so it is a dictionary key and unpacks as ``case, slice_id``."""

    case: str
    slice_id: str

    @property
    def text(self) -> str:
        """``case-0001/s003``, as messages and the case list name a slice."""
        return f"{self.case}/{self.slice_id}"


def slice_key(key: tuple[str, str]) -> SliceKey:
    """``key`` as a :class:`SliceKey` (callers may pass a plain pair)."""
    return key if isinstance(key, SliceKey) else SliceKey(*key)
