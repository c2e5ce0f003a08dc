"""Stand-in for PySide6.QtOpenGL in the Linux clinic build (issue 20: the real binding is 8.5 MiB).

pyqtgraph imports ``PySide6.QtOpenGL`` at import time (PlotCurveItem, PColorMeshItem, Qt/OpenGLHelpers) but
uses it only to draw with OpenGL shaders, which the app switches off (``useOpenGL=False`` in
workbench/gui/qt.py; ``enableExperimental`` is never set). Every name of this module is an object that
raises ImportError when used, so a plugin or a future code path that does need QtOpenGL fails with one
clear message instead of a crash. Qt's own OpenGL library (libQt6OpenGL) and QtOpenGLWidgets stay.
"""
from __future__ import annotations

MESSAGE = ("PySide6.QtOpenGL is left out of this Workbench build (docs/PACKAGING.md): "
           "OpenGL drawing of plots is unavailable")


class _Unavailable:
    """A QtOpenGL class that is not there: any call or attribute raises ImportError."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise ImportError(f"{MESSAGE} ({self._name})")

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(f"{MESSAGE} ({self._name}.{attr})")

    def __repr__(self) -> str:
        return f"<unavailable PySide6.QtOpenGL.{self._name}>"


def __getattr__(name: str) -> object:
    if name.startswith("__"):
        raise AttributeError(name)
    return _Unavailable(name)
