"""The importer on every quirk model of test_inference_quirks.py: the table in docs/PLUGINS.md is this run."""
from __future__ import annotations

from pathlib import Path

import importer_cases as C

from workbench.inference.session import clear_session_cache

DOCS = Path(__file__).resolve().parents[2] / "docs" / "PLUGINS.md"


def test_quirk_table_matches_the_docs(tmp_path):
    clear_session_cache()
    table = C.table(tmp_path)
    assert table in DOCS.read_text(encoding="utf-8"), "regenerate with scripts/importer_table.py:\n" + table
    # the importer gets the task of every quirk model right with the quirk's own sample
    for i, case in enumerate(C.CASES):
        got = C.fields_right(case, tmp_path / f"t{i}", with_sample=True)
        assert got["task"] and "error" not in got, (case.name, got)


def test_bundled_table_matches_the_docs():
    clear_session_cache()
    table = C.bundled_table()
    assert table in DOCS.read_text(encoding="utf-8"), "regenerate with scripts/importer_table.py:\n" + table


def test_volume_table_matches_the_docs(tmp_path):
    clear_session_cache()
    table = C.table(tmp_path, C.CASES_3D, "3-D model")
    assert table in DOCS.read_text(encoding="utf-8"), "regenerate with scripts/importer_table.py:\n" + table
