"""The one place the GUI imports Qt and pyqtgraph.

PySide6 must be imported before pyqtgraph so that pyqtgraph binds to it (and not to another Qt binding that
happens to be installed); every GUI module imports Qt through here. Arrays are row-major ``(y, x)``, so
pyqtgraph is told so once, globally.
"""
from __future__ import annotations

import ctypes
import sys

import pyqtgraph as pg

# isort: off  (PySide6 first on purpose: pyqtgraph binds to the Qt binding already imported)
from PySide6 import QtCore, QtGui, QtWidgets

# isort: on

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, useOpenGL=False)

Qt = QtCore.Qt
Signal = QtCore.Signal
Slot = QtCore.Slot

__all__ = ["QtCore", "QtGui", "QtWidgets", "pg", "Qt", "Signal", "Slot", "cpp_address"]


def cpp_address(obj) -> int:
    """The address of the C++ object behind a Qt wrapper: its identity. ``id()`` of a wrapper is not one: a
    wrapper nothing else holds is freed after use and its ``id`` reused by the next, and PySide6 6.9 hands out
    a new wrapper for an object whose old one it invalidated (see gui/help/shortcuts.py)."""
    import shiboken6  # ships with PySide6 (imported here: ruff's isort would reorder it above PySide6)

    return int(shiboken6.getCppPointer(obj)[0])


def _guard_singleton_refcount_bug() -> bool:
    """Work around PySide6 6.12.0 dropping references to ``None``, ``True`` and ``False``.

    With PySide6/shiboken6 6.12.0 on CPython < 3.12 (where the singletons are not immortal) every call of a
    ``void`` Qt method from Python drops one reference to ``None``, every ``signal.emit()`` one to ``True``,
    and some calls one to ``False`` (6.11.3 is clean; reproduced with CPython 3.11.7). pyqtgraph makes
    thousands of such calls per second of interaction, and CPython aborts ("Fatal Python error: none_dealloc")
    once a count reaches zero — within seconds of opening an image. Until the dependency pin excludes 6.12.0,
    detect the leak with two probes and give the singletons a reserve of references no session can use up (the
    singletons are static objects that are never freed, so a large count changes nothing else). Returns
    whether the bug was found; on a PySide6/CPython without it nothing is touched.
    """

    class _Probe(QtCore.QObject):
        fired = QtCore.Signal()

    probe = _Probe()
    calls = 16
    before = {id(v): sys.getrefcount(v) for v in (None, True, False)}
    for _ in range(calls):
        probe.fired.emit()
        probe.setObjectName("probe")  # a void method
    found = any(before[id(v)] - sys.getrefcount(v) >= calls for v in (None, True, False))
    if found:
        # other calls leak False too: reserve for all three singletons. ob_refcnt is the first field of
        # every object in the (non free-threaded) CPython ABI.
        for value in (None, True, False):
            ctypes.c_ssize_t.from_address(id(value)).value += 1 << 40
    return found


SINGLETON_REFCOUNT_BUG = _guard_singleton_refcount_bug()
