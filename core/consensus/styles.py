"""How each reader's boxes are drawn when readers are overlaid (the co-annotation view and the report): a colour
from the Okabe-Ito palette and a line style, so readers stay apart in grey scale and for colour-blind eyes too.

Plain data for any renderer: ``dash`` is a pattern of dash and gap lengths in line widths (empty: solid), which
maps onto SVG's ``stroke-dasharray`` and Qt's ``QPen.setDashPattern``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ReaderStyle:
    colour: str
    dash: tuple[float, ...]
    name: str


_STYLES: tuple[tuple[str, tuple[float, ...], str], ...] = (
    ("#000000", (), "solid black"),
    ("#D55E00", (4.0, 2.0), "dashed vermillion"),
    ("#0072B2", (1.5, 1.5), "dotted blue"),
    ("#009E73", (5.0, 2.0, 1.5, 2.0), "dash-dot green"),
    ("#CC79A7", (3.0, 3.0), "long-dashed purple"),
    ("#E69F00", (1.0, 3.0), "sparse-dotted orange"),
)


def reader_style(readers: Sequence[str], reader: str) -> ReaderStyle:
    """The style of ``reader`` among ``readers`` (by position, so the same study always looks the same)."""
    index = list(readers).index(reader) if reader in readers else len(readers)
    colour, dash, name = _STYLES[index % len(_STYLES)]
    return ReaderStyle(colour, dash, name)
