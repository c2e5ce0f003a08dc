"""Entry script of the frozen app: ``Workbench [FILES...]`` opens the GUI, ``Workbench COMMAND ...`` the CLI.

PyInstaller needs a script, and ``workbench/cli.py`` cannot be one (it uses relative imports), so this file
only calls :func:`workbench.cli.main`, exactly as the ``workbench`` console script does.
"""
import multiprocessing
import sys

from workbench.cli import main

if __name__ == "__main__":
    # a library that starts worker processes re-executes the frozen exe (Windows/macOS spawn); without this
    # the child would open a second Workbench window instead of running the worker
    multiprocessing.freeze_support()
    sys.exit(main())
