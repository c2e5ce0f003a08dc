"""Dark and light themes: Fusion style, a palette, and a small style sheet from assets/styles/."""
from __future__ import annotations

import logging
from pathlib import Path

from .qt import QtGui, QtWidgets, pg

log = logging.getLogger(__name__)

STYLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "styles"
THEMES = ("dark", "light")

# (window, base, alternate base, text, disabled text, button, highlight, canvas background)
_COLORS = {
    "dark": ("#2b2d30", "#1f2023", "#26282b", "#e6e6e6", "#7d7f84", "#35373b", "#3d7bd9", "#101113"),
    "light": ("#efeff1", "#ffffff", "#f5f5f7", "#1d1d1f", "#9a9aa0", "#e4e4e8", "#2f6fd6", "#1a1a1c"),
}


def canvas_background(theme: str) -> str:
    """The image canvas background: near-black in both themes (images are judged against dark)."""
    return _COLORS[theme if theme in _COLORS else "dark"][7]


def palette(theme: str) -> QtGui.QPalette:
    window, base, alt, text, disabled, button, highlight, _ = _COLORS[theme]
    pal = QtGui.QPalette()
    role = QtGui.QPalette.ColorRole
    group = QtGui.QPalette.ColorGroup
    for r, c in ((role.Window, window), (role.WindowText, text), (role.Base, base), (role.AlternateBase, alt),
                 (role.ToolTipBase, base), (role.ToolTipText, text), (role.Text, text), (role.Button, button),
                 (role.ButtonText, text), (role.Highlight, highlight), (role.HighlightedText, "#ffffff"),
                 (role.Link, highlight), (role.PlaceholderText, disabled)):
        pal.setColor(r, QtGui.QColor(c))
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(group.Disabled, r, QtGui.QColor(disabled))
    return pal


def apply_theme(app: QtWidgets.QApplication, theme: str, root: QtWidgets.QWidget | None = None) -> None:
    """Switch the application to ``theme`` (``"dark"`` or ``"light"``).

    ``root``: a window whose existing pyqtgraph plots get their axes re-coloured (plots created later pick
    the colour up by themselves).
    """
    if theme not in THEMES:
        raise ValueError(f"theme must be one of {THEMES}, got {theme!r}")
    app.setStyle("Fusion")
    app.setPalette(palette(theme))
    # pyqtgraph reads these when plots are created; existing plots get their axes re-coloured below
    text = _COLORS[theme][3]
    pg.setConfigOption("foreground", text)
    pg.setConfigOption("background", None)
    sheet = STYLES_DIR / f"{theme}.qss"
    try:
        app.setStyleSheet(sheet.read_text(encoding="utf-8"))
    except OSError as exc:  # a damaged install still works with the palette alone
        log.warning("style sheet %s not loaded: %s", sheet, exc)
        app.setStyleSheet("")
    # only the given window's plots: app.allWidgets() also returns widgets pending deletion
    for widget in (root.findChildren(pg.PlotWidget) if root is not None else []):
        for name in ("left", "bottom"):
            axis = widget.getAxis(name)
            axis.setPen(pg.mkPen(text))
            axis.setTextPen(pg.mkPen(text))
