"""PyInstaller runtime hook: point Workbench at the plugins bundled inside the frozen app.

Runs before the app's own code. ``workbench.inference.registry.bundled_plugins_dir`` reads
``$WORKBENCH_PLUGINS_DIR`` first ("the frozen app sets it"); the spec copies the repository's ``plugins/``
to ``<bundle>/plugins`` (``sys._MEIPASS``: ``Workbench/_internal`` in a one-folder build). A value already in
the environment wins, so an administrator can point a packaged install at another bundled-plugin folder.
"""
import os
import sys

os.environ.setdefault("WORKBENCH_PLUGINS_DIR", os.path.join(sys._MEIPASS, "plugins"))  # noqa: SLF001
