"""The readers' boxes over the slice, each reader in their own colour and line style (pooled items, as the box
overlay's)."""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg

from desktop.viewer.reader_box_item import DrawnVersion, ReaderBoxItem


class ReaderOverlay:
    def __init__(self, view: pg.ViewBox) -> None:
        self._view = view
        self._pool: list[ReaderBoxItem] = []
        self._shown = 0

    def show(self, versions: Sequence[DrawnVersion]) -> None:
        for index, version in enumerate(versions):
            while len(self._pool) <= index:
                item = ReaderBoxItem()
                self._view.addItem(item, ignoreBounds=True)
                self._pool.append(item)
            self._pool[index].show_version(version)
        for item in self._pool[len(versions):]:
            item.setVisible(False)
        self._shown = len(versions)

    def clear(self) -> None:
        self.show(())

    def items(self) -> list[ReaderBoxItem]:
        return self._pool[: self._shown]
