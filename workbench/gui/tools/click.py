"""A tool that reports clicks in image coordinates (region-grow seeds, island picks)."""
from __future__ import annotations

from typing import Callable

from ...core.mpr import to_voxel
from ..qt import Qt
from .base import CanvasEvent
from .editing import PaintOptions, _DocumentTool, index_point


class ClickTool(_DocumentTool):
    """A tool that hands every left click (slice, row, column as pixel indices) to a callback."""

    cursor = Qt.CursorShape.PointingHandCursor
    any_view = True  # works in coronal/sagittal views too (gui/mpr): the click is mapped to its voxel

    def __init__(self, name: str, options: PaintOptions,
                 on_click: Callable[[int, float, float, Qt.KeyboardModifier], None]) -> None:
        super().__init__(options)
        self.name = name
        self._on_click = on_click

    def press(self, event: CanvasEvent) -> bool:
        image = self.image
        if image is None:
            return False
        row, col = index_point(event.x, event.y)
        if not (-0.5 <= row < image.height - 0.5 and -0.5 <= col < image.width - 0.5):
            return True  # outside the image: consumed, nothing to do
        z, row, col = to_voxel(self.canvas.orientation, event.z, row, col)  # the callback speaks (z, y, x)
        self._on_click(z, row, col, event.modifiers)
        return True
