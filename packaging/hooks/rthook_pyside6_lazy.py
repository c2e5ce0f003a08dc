"""PyInstaller runtime hook (Linux build): PyInstaller's PySide6 hook, with the Qt import deferred.

The stock hook (PyInstaller/hooks/rthooks/pyi_rth_pyside6.py) imports ``PySide6.QtCore`` at every start to
register an embedded ``qt.conf`` that relocates Qt's prefix into the bundle. That costs ~150 ms per run
(shiboken6's signature machinery, the Qt libraries) even for ``Workbench info`` or ``--help``, which never
touch Qt: on the build machine ``--help`` took a median 0.53 s with the stock hook, 0.34-0.41 s with this
one (the source venv: 0.37 s). This hook does the cheap part at start (plugin and QML paths, the
single-binding guard) and the same ``qt.conf`` registration right after the app itself first imports
``PySide6.QtCore`` (only the GUI does), i.e. still before any QApplication exists. The spec swaps it in for
the stock hook on Linux only, where it is smoke-tested.
"""
import importlib.abc
import importlib.util
import os
import sys


def _pyi_rthook():
    from _pyi_rth_utils import qt as qt_rth_utils

    qt_rth_utils.ensure_single_qt_bindings_package("PySide6")
    qt_dir = os.path.join(sys._MEIPASS, "PySide6", "Qt")  # noqa: SLF001
    os.environ["QT_PLUGIN_PATH"] = os.path.join(qt_dir, "plugins")
    os.environ["QML2_IMPORT_PATH"] = os.path.join(qt_dir, "qml")

    class _RelocateQtAfterImport(importlib.abc.MetaPathFinder):
        """One-shot finder: lets the normal finders load PySide6.QtCore, then registers qt.conf."""

        def find_spec(self, fullname, path=None, target=None):
            if fullname != "PySide6.QtCore":
                return None
            sys.meta_path.remove(self)  # one shot; the find_spec below must not come back here
            spec = importlib.util.find_spec(fullname)
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def exec_and_relocate(module):
                exec_module(module)
                qt_rth_utils.create_embedded_qt_conf("PySide6", qt_dir)

            spec.loader.exec_module = exec_and_relocate  # this spec's own loader instance
            return spec

    sys.meta_path.insert(0, _RelocateQtAfterImport())


_pyi_rthook()
del _pyi_rthook
