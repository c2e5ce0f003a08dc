"""Shared fixtures: an isolated config dir for every test (no test reads or writes the user's settings)."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("WORKBENCH_SITE_FILE", "")  # no machine-wide site.toml either (core/site.py)


@pytest.fixture
def fresh_session_cache():
    """No cached ONNX session before or after the test (model tests: ``pytest.mark.usefixtures``)."""
    from workbench.inference.session import clear_session_cache

    clear_session_cache()
    yield
    clear_session_cache()
