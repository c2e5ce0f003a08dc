"""What every editing tool shares: :class:`PaintOptions` (edited by the Tools dock, read at every event), a
``labels.edit`` block held open across a drag (:class:`OpenEdit`), the document-following base tool, and
the coordinate/intensity helpers.

Coordinates: a :class:`~workbench.gui.tools.base.CanvasEvent` puts pixel ``(r, c)`` on ``[c, c+1) x [r, r+1)``;
the processing functions put the centre of pixel ``(r, c)`` at ``(r, c)``. :func:`index_point` converts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.document import Document
from ...core.edits import paint_rule
from ...core.image import ImageVolume
from ...core.labels import LabelMap
from ...processing import to_scalar
from .base import BaseCanvasTool


# -- helpers ----------------------------------------------------------------------------------------
def index_point(x: float, y: float) -> tuple[float, float]:
    """Canvas image coordinates ``(x, y)`` -> pixel-index ``(row, column)`` (pixel centres at integers)."""
    return (y - 0.5, x - 0.5)

_scalar_cache: tuple[ImageVolume | None, np.ndarray | None] = (None, None)


def scalar_volume(image: ImageVolume) -> np.ndarray:
    """``image.data`` as a scalar ``(z, y, x)`` array (colour -> luma, computed once per image).

    Greyscale data is returned as is (no copy); colour luma is cached for the last image asked for, so the
    gate of a brush dab or a threshold preview does not recompute it.
    """
    global _scalar_cache
    if image.data.ndim == 3:
        _scalar_cache = (None, None)  # do not keep a colour image's luma alive
        return image.data
    cached_image, cached = _scalar_cache
    if cached_image is image and cached is not None:
        return cached
    out = to_scalar(image.data)
    _scalar_cache = (image, out)
    return out


def known_spacing(image: ImageVolume | None) -> tuple[float, float, float] | None:
    """The image's ``(z, y, x)`` spacing in mm when it is known, else ``None`` (what processing expects)."""
    if image is None or not image.spacing_known:
        return None
    return tuple(float(s) for s in image.spacing)  # type: ignore[return-value]


@dataclass
class PaintOptions:
    """What the editing tools paint with; edited by the Tools dock, read by the tools at every event.

    Attributes
    ----------
    label : int
        The label value painted (the view state's active label).
    radius : float
        Brush radius in ``units``.
    units : {"px", "mm"}
    sphere : bool
        On a stack, paint a ball through neighbouring slices.
    gate : bool
        Paint only where ``lo <= intensity <= hi``.
    lo, hi : float
    overwrite : {"any", "background", "selected"}
        Painting: over any label / only over background / over background and label ``mask_label``.
        Erasing: any label / only the current label / only label ``mask_label``.
    mask_label : int
        The label of the ``"selected"`` rule.
    erase_polygon : bool
        The polygon/lasso erases instead of filling.
    """

    label: int = 1
    radius: float = 8.0
    units: str = "px"
    sphere: bool = False
    gate: bool = False
    lo: float = 0.0
    hi: float = 255.0
    # issue 11: "background only" by default -- a threshold or region grow must never erase a label drawn
    # by hand unless the user asks ("any label")
    overwrite: str = "background"
    mask_label: int = 1
    erase_polygon: bool = False

    def paint_rule(self, erase: bool) -> tuple[int, str, int | None]:
        """``(value, overwrite, selected)`` arguments of :meth:`LabelEdit.paint` for painting or erasing
        (the document's rule: :func:`workbench.core.edits.paint_rule`)."""
        return paint_rule(self.label, self.overwrite, self.mask_label, erase=erase)


class OpenEdit:
    """A ``labels.edit(name)`` block held open across several events (a drag).

    While it is open the history is held (:meth:`~workbench.core.undo.UndoStack.held`): no undo or redo
    can run into the middle of the drag, and the Undo/Redo actions follow ``undo.changed`` by themselves.
    """

    class _Abandoned(Exception):
        pass

    def __init__(self, labels: LabelMap, name: str) -> None:
        self.labels = labels
        self._hold = labels.undo.held()
        self._hold.__enter__()
        self._cm = labels.edit(name)
        self.edit = self._cm.__enter__()
        self._open = True

    def close(self) -> None:
        """Commit: everything written becomes one undo step."""
        if self._open:
            self._open = False
            try:
                self._cm.__exit__(None, None, None)
            finally:
                self._hold.__exit__(None, None, None)

    def abandon(self) -> None:
        """Roll the writes back and push nothing."""
        if self._open:
            self._open = False
            exc = OpenEdit._Abandoned()
            try:
                self._cm.__exit__(OpenEdit._Abandoned, exc, None)
            finally:
                self._hold.__exit__(None, None, None)


# -- tools ------------------------------------------------------------------------------------------
class _DocumentTool(BaseCanvasTool):
    """Base of the editing tools: follows the document's image changes while active."""

    def __init__(self, options: PaintOptions) -> None:
        super().__init__()
        self.options = options
        self._document: Document | None = None

    def activate(self, canvas) -> None:
        super().activate(canvas)
        self._document = canvas.document
        self._document.image_changed.connect(self._on_image_changed)

    def deactivate(self) -> None:
        if self._document is not None:
            self._document.image_changed.disconnect(self._on_image_changed)
            self._document = None
        super().deactivate()

    def _on_image_changed(self) -> None:
        """The image (and label map) was replaced: drop whatever is in progress."""

    @property
    def labels(self) -> LabelMap | None:
        # the canvas' view frame: a coronal/sagittal canvas hands out an OrientedLabels (core/oriented_labels)
        return self.canvas.view_labels if self.canvas is not None else None

    @property
    def image(self) -> ImageVolume | None:
        return self.canvas.view_image if self.canvas is not None else None
