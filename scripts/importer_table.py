#!/usr/bin/env python3
"""Print the "Importing a model" table of docs/PLUGINS.md: on every quirk model the test suite builds
(tests/importer_cases.py), how many hand-written fields `workbench models import` gets right unaided.

    .venv/bin/python scripts/importer_table.py
"""
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import importer_cases  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    print(importer_cases.table(Path(tmp)))
