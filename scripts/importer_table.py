#!/usr/bin/env python3
"""Print the three tables of docs/PLUGINS.md "Importing a model": on every quirk model the test suite builds
(tests/importer_cases.py), on its 3-D models, and on the bundled plugins, how many hand-written fields
`workbench models import` gets right unaided.

    .venv/bin/python scripts/importer_table.py
"""
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import importer_cases

with tempfile.TemporaryDirectory() as tmp:
    print(importer_cases.table(Path(tmp)))
    print()
    print(importer_cases.table(Path(tmp) / "3d", importer_cases.CASES_3D, "3-D model"))
print()
print(importer_cases.bundled_table())
