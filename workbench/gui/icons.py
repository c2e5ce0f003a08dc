"""Small line icons of the toolbar, drawn here as SVG (24 x 24, one stroke colour): no files to ship or find.

``icon(name, widget)`` renders one in the widget's text colour, so it reads on the dark and the light theme.
An unknown name gets a circled initial, so a tool registered without an icon of its own still has one.
"""
from __future__ import annotations

from .qt import QtCore, QtGui, QtWidgets

_STROKE = 'fill="none" stroke="{c}" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"'

# path data only; the frame (size, stroke) is added by _svg
SHAPES: dict[str, str] = {
    # actions
    "open": '<path d="M3 7h6l2 2h10v10H3z"/><path d="M3 7V5h6"/>',
    "save": '<path d="M4 4h13l3 3v13H4z"/><path d="M8 4v5h8V4"/><rect x="7" y="13" width="10" height="7"/>',
    "undo": '<path d="M9 5L4 10l5 5"/><path d="M4 10h10a6 6 0 0 1 0 12h-3"/>',
    "redo": '<path d="M15 5l5 5-5 5"/><path d="M20 10H10a6 6 0 0 0 0 12h3"/>',
    "run": '<path d="M7 4l13 8-13 8z"/>',
    "export": '<path d="M12 15V3"/><path d="M7 8l5-5 5 5"/><path d="M4 14v6h16v-6"/>',
    "zoom_fit": '<path d="M3 8V3h5M16 3h5v5M21 16v5h-5M8 21H3v-5"/><rect x="8" y="8" width="8" height="8"/>',
    "report": '<path d="M6 3h9l4 4v14H6z"/><path d="M9 11h7M9 15h7M9 19h4"/>',
    # tools
    "navigate": '<path d="M12 3v18M3 12h18"/><path d="M9 6l3-3 3 3M9 18l3 3 3-3M6 9l-3 3 3 3M18 9l3 3-3 3"/>',
    "brush": '<path d="M20 4L11 13"/><path d="M11 13c-3-1-6 1-6 4 0 2-1 3-2 3 3 1 8 1 9-3 .4-1.6-.2-3-1-4z"/>',
    "eraser": '<path d="M3 16l9-9 7 7-6 6H7z"/><path d="M8 11l7 7"/><path d="M13 20h8"/>',
    "polygon": '<path d="M5 18L4 8l8-5 8 6-3 10z"/><circle cx="4" cy="8" r="1.3"/><circle cx="12" cy="3" r="1.3"/>'
               '<circle cx="20" cy="9" r="1.3"/><circle cx="17" cy="19" r="1.3"/><circle cx="5" cy="18" r="1.3"/>',
    "grow": '<circle cx="12" cy="12" r="2"/><circle cx="12" cy="12" r="6" stroke-dasharray="3 2"/>'
            '<circle cx="12" cy="12" r="10" stroke-dasharray="2 3"/>',
    "pick": '<path d="M4 3l6 15 2-6 6-2z"/><path d="M14 14c2-1 6 0 6 3s-3 4-5 3"/>',
    "ai": '<path d="M12 3l2 5 5 2-5 2-2 5-2-5-5-2 5-2z"/><path d="M18 16l1 2 2 1-2 1-1 2-1-2-2-1 2-1z"/>',
    "ruler": '<path d="M3 16L16 3l5 5L8 21z"/><path d="M7 12l2 2M10 9l2 2M13 6l2 2M6 17l1 1M9 14l1 1M12 11l1 1"/>',
    "angle": '<path d="M20 19H4L15 5"/><path d="M9 19a5 5 0 0 0-1.7-3.9"/>',
    "ellipse": '<ellipse cx="12" cy="12" rx="9" ry="6"/>',
    "rectangle": '<rect x="3" y="6" width="18" height="12"/>',
    "text": '<path d="M5 6V4h14v2M12 4v16M9 20h6"/>',
    "arrow": '<path d="M4 20L19 5"/><path d="M11 5h8v8"/>',
    "profile": '<path d="M3 20h18"/><path d="M3 16c3-8 5-8 7-2s5 2 6-4 3-5 5-3"/>',
}


def _svg(body: str, colour: str) -> bytes:
    frame = (f'<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48" viewBox="0 0 24 24" '
             f'{_STROKE.format(c=colour)}>{body}</svg>')
    return frame.encode("utf-8")


def _initial(name: str, colour: str) -> str:
    letter = (name[:1] or "?").upper()
    return (f'<circle cx="12" cy="12" r="9"/><text x="12" y="16.5" text-anchor="middle" font-size="12" '
            f'font-family="sans-serif" stroke="none" fill="{colour}">{letter}</text>')


def svg_bytes(name: str, colour: str = "#e6e6e6") -> bytes:
    """The SVG document of icon ``name`` drawn in ``colour``."""
    return _svg(SHAPES.get(name) or _initial(name, colour), colour)


def icon(name: str, widget: QtWidgets.QWidget | None = None) -> QtGui.QIcon:
    """Icon ``name`` in the text colour of ``widget``'s palette (the application palette without one);
    the disabled state in the palette's disabled text colour."""
    pal = widget.palette() if widget is not None else QtWidgets.QApplication.palette()
    result = QtGui.QIcon()
    for mode, group in ((QtGui.QIcon.Mode.Normal, QtGui.QPalette.ColorGroup.Active),
                        (QtGui.QIcon.Mode.Disabled, QtGui.QPalette.ColorGroup.Disabled)):
        colour = pal.color(group, QtGui.QPalette.ColorRole.ButtonText).name()
        pixmap = QtGui.QPixmap()
        if pixmap.loadFromData(QtCore.QByteArray(svg_bytes(name, colour)), "SVG"):
            result.addPixmap(pixmap, mode)
    return result


__all__ = ["SHAPES", "icon", "svg_bytes"]
