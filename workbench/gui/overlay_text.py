"""Overlay text in the corners of an image view: modality and series, zoom, slice, window/level.

:func:`corner_texts` is the content (Qt-free, tested on its own); :class:`OverlayText` draws it on one
canvas view and refreshes it on the view state's slice / window / image events and the view box's range
changes (zoom, pan, resize). Every :class:`~.canvas.CanvasWidget` makes one, so every view has it.

The series description is free text (it may name the patient, the referrer or the reason for the study):
it is shown only when the user chose to keep the patient identity (File > Keep patient identity, the
de-identification setting of the exports); otherwise the line says it is hidden. Modality, slice, window
and zoom identify nobody.
"""
from __future__ import annotations

from typing import Any

from .qt import Qt, QtCore, QtWidgets

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
_MARGIN = 8


def _num(value: float) -> str:
    """A window value the way a reader says it: ``400``, ``-600``, ``0.25``."""
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.3g}"


def series_text(image: Any, *, keep_identity: bool) -> str:
    """The series line: its description when identity is kept, else a note that it is hidden."""
    dicom = (image.metadata or {}).get("dicom") or {}
    description = str(dicom.get("SeriesDescription") or "").strip()
    if not description:
        return ""
    if keep_identity:
        return description
    return "series description hidden (de-identified)"


def corner_texts(image: Any, *, slice_index: int, window: tuple[float, float], zoom: float | None,
                 keep_identity: bool = False, shown: Any = None) -> dict[str, str]:
    """The text of each corner for ``image`` shown at ``slice_index`` with ``window`` (centre, width) and
    ``zoom`` (screen pixels per image pixel; ``None`` before the view has a size). ``shown``: the volume the
    view pages through when it is not ``image`` itself (a coronal or sagittal view's frame); slice n/N and the
    slice position are counted in it.

    Returns
    -------
    dict
        ``top_left``: modality (the file format for plain images) and the series line; ``top_right``: zoom
        in percent; ``bottom_left``: slice n/N (and its position when the spacing is known);
        ``bottom_right``: window width and level (HU for CT). Empty strings without an image.
    """
    if image is None:
        return dict.fromkeys(CORNERS, "")
    modality = image.modality or str((image.metadata or {}).get("format") or "image")
    series = series_text(image, keep_identity=keep_identity)
    top_left = modality + (f"\n{series}" if series else "")
    frame = shown if shown is not None else image
    n = frame.n_slices
    z = min(max(int(slice_index), 0), n - 1)
    bottom_left = f"Slice {z + 1}/{n}"
    if frame.spacing_known and n > 1:
        bottom_left += f"  ·  {frame.origin[0] + z * frame.spacing[0]:.1f} mm"
    center, width = window
    unit = " HU" if image.is_ct else ""
    bottom_right = f"W {_num(width)}  L {_num(center)}{unit}"
    top_right = f"Zoom {zoom * 100:.0f}%" if zoom else ""
    return {"top_left": top_left, "top_right": top_right, "bottom_left": bottom_left,
            "bottom_right": bottom_right}


class OverlayText(QtCore.QObject):
    """Four mouse-transparent labels over ``canvas.view`` (see the module docstring)."""

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self._canvas = canvas
        self._view = canvas.view
        self.keep_identity = False
        self._enabled = True
        self.labels: dict[str, QtWidgets.QLabel] = {}
        align = {"top_left": Qt.AlignmentFlag.AlignLeft, "top_right": Qt.AlignmentFlag.AlignRight,
                 "bottom_left": Qt.AlignmentFlag.AlignLeft, "bottom_right": Qt.AlignmentFlag.AlignRight}
        for corner in CORNERS:
            label = QtWidgets.QLabel(self._view)
            label.setObjectName(f"overlay_{corner}")
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
            label.setAlignment(align[corner] | Qt.AlignmentFlag.AlignVCenter)
            # light text on a faint dark plate: legible over white bone and black air alike
            label.setStyleSheet("QLabel { color: #f2f2f2; background: rgba(0, 0, 0, 110); border-radius: 3px; "
                                "padding: 1px 4px; }")
            label.hide()
            self.labels[corner] = label
        state = canvas.view_state
        state.slice_changed.connect(self._on_state)
        state.window_changed.connect(self._on_state)
        state.reloaded.connect(self._on_state)
        self._view.vb.sigRangeChanged.connect(self._on_state)
        self._view.vb.sigResized.connect(self._on_state)
        self._view.installEventFilter(self)
        self.refresh()

    # -- public ---------------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Show (``True``) or hide the overlay text (View > Overlay text)."""
        self._enabled = bool(enabled)
        self.refresh()

    def set_keep_identity(self, keep: bool) -> None:
        self.keep_identity = bool(keep)
        self.refresh()

    def zoom(self) -> float | None:
        """Screen pixels per image pixel of the view (``None`` before it has a size)."""
        if self._view.vb.width() <= 1:
            return None
        sx, _sy = self._view.vb.viewPixelSize()
        return 1.0 / sx if sx > 0 else None

    def texts(self) -> dict[str, str]:
        """What each corner shows now (empty strings when hidden or without an image)."""
        if not self._enabled:
            return dict.fromkeys(CORNERS, "")
        canvas = self._canvas
        state = canvas.view_state
        # a canvas that pages through another frame (the multi-view area's coronal/sagittal views) says so
        # with ``slice_index`` / ``view_image``; the axial canvas is the view state's slice of the image
        slice_index = getattr(canvas, "slice_index", state.slice_index)
        shown = getattr(canvas, "view_image", None)
        return corner_texts(canvas.document.image, slice_index=slice_index, window=state.window,
                            zoom=self.zoom(), keep_identity=self.keep_identity, shown=shown)

    def refresh(self) -> None:
        texts = self.texts()
        for corner, label in self.labels.items():
            text = texts[corner]
            label.setText(text)
            label.setVisible(bool(text))
            label.adjustSize()
        self._place()

    # -- internals ------------------------------------------------------------------------------------
    def _on_state(self, *_args) -> None:
        self.refresh()

    def _place(self) -> None:
        w, h = self._view.width(), self._view.height()
        for corner, label in self.labels.items():
            size = label.sizeHint()
            x = _MARGIN if corner.endswith("left") else w - size.width() - _MARGIN
            y = _MARGIN if corner.startswith("top") else h - size.height() - _MARGIN
            label.setGeometry(max(x, 0), max(y, 0), size.width(), size.height())

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt API)
        if watched is self._view and event.type() == QtCore.QEvent.Type.Resize:
            self._place()
        return False


__all__ = ["CORNERS", "OverlayText", "corner_texts", "series_text"]
