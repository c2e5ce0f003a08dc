"""The reliability suite (issue 11): every test here carries the ``reliability`` marker
(``./scripts/test -m reliability`` runs only these); helpers are in rel_helpers.py."""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)
