"""The core packages must import without Qt (house rule 1)."""
import subprocess
import sys

BLOCK_QT = r"""
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt', 'PyQt5', 'PyQt6', 'shiboken6'):
            raise ImportError('Qt is blocked in the core: ' + name)
        return None
sys.meta_path.insert(0, Blocker())
import importlib, pkgutil
import workbench
for pkg in ('core', 'io', 'processing', 'inference', 'export', 'batch', 'similar', 'commands'):
    mod = importlib.import_module('workbench.' + pkg)
    for info in pkgutil.walk_packages(mod.__path__, mod.__name__ + '.'):
        importlib.import_module(info.name)
import workbench.cli
workbench.cli.build_parser()
print('ok')
"""


def test_core_imports_without_qt():
    out = subprocess.run([sys.executable, "-c", BLOCK_QT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
