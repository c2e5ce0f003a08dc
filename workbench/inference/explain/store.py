"""The heat maps of the open document (Qt-free): explanations plus how each is shown.

Kept beside ``Document.results`` rather than in it: a heat map is *about* a prediction, not a prediction,
and the exports that walk the results (masks, measurements, DICOM SEG) have nothing to do with it. The
store hangs off the document (:func:`heatmaps_of`) and empties itself when a new image is opened.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psygnal import Signal

from ._common import Explanation


@dataclass
class HeatmapStyle:
    """How a heat map is drawn: colormap name, opacity 0-1, shown or hidden."""

    cmap: str = "inferno"
    opacity: float = 0.6
    visible: bool = True


class HeatmapStore:
    """An ordered list of explanations with their styles and one current item.

    Signals: ``changed()`` -- an item was added/removed or the current one changed; ``styled()`` -- the
    current item's style changed.
    """

    changed = Signal()
    styled = Signal()

    def __init__(self) -> None:
        self.items: list[Explanation] = []
        self.styles: list[HeatmapStyle] = []
        self.current: int = -1

    def add(self, expl: Explanation, style: HeatmapStyle | None = None) -> None:
        self.items.append(expl)
        self.styles.append(style or HeatmapStyle())
        self.current = len(self.items) - 1
        self.changed.emit()

    def remove(self, index: int) -> None:
        if not 0 <= index < len(self.items):
            return
        del self.items[index]
        del self.styles[index]
        self.current = min(self.current, len(self.items) - 1)
        self.changed.emit()

    def clear(self) -> None:
        self.items, self.styles, self.current = [], [], -1
        self.changed.emit()

    def select(self, index: int) -> None:
        if 0 <= index < len(self.items) and index != self.current:
            self.current = index
            self.changed.emit()

    def current_item(self) -> tuple[Explanation, HeatmapStyle] | None:
        if 0 <= self.current < len(self.items):
            return self.items[self.current], self.styles[self.current]
        return None

    def set_style(self, **changes: Any) -> None:
        """Change the current item's style (``cmap``, ``opacity``, ``visible``)."""
        item = self.current_item()
        if item is None:
            return
        style = item[1]
        for key, value in changes.items():
            if not hasattr(style, key):
                raise AttributeError(key)
            setattr(style, key, value)
        self.styled.emit()


def heatmaps_of(document: Any) -> HeatmapStore:
    """The heat-map store of ``document`` (created on first use; cleared when its image changes)."""
    store = getattr(document, "heatmaps", None)
    if store is None:
        store = HeatmapStore()
        document.heatmaps = store
        document.image_changed.connect(store.clear)
    return store
