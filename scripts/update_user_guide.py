#!/usr/bin/env python3
"""Regenerate the keyboard shortcuts table of docs/USER_GUIDE.md from the window's actions and tools, and copy
the guide with its pictures into the package (workbench/gui/help/data/, what Help > User guide shows).

Run it after adding a shortcut, a tool or a screenshot: ``.venv/bin/python scripts/update_user_guide.py``.
tests/gui/test_help.py fails while either is stale.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # a throw-away config folder: the user's settings and saved layout play no part in the table
    os.environ["WORKBENCH_CONFIG_DIR"] = tempfile.mkdtemp(prefix="workbench-guide-")
    sys.path.insert(0, str(ROOT))
    from workbench.gui.app import create_app
    from workbench.gui.help.guide import update_user_guide
    from workbench.gui.main_window import MainWindow

    create_app()
    window = MainWindow(restore_layout=False, persist=False)
    changed = update_user_guide(window, ROOT / "docs")
    window.close()
    for name in changed:
        print(f"updated {name}")
    if not changed:
        print("docs/USER_GUIDE.md and the bundled guide are up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
