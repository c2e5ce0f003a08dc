"""Writing the settings file (:class:`~workbench.core.settings.Settings`) atomically.

Reading is :func:`workbench.core.settings.load_settings`; the write lives here because atomic writes are
the io layer's (:mod:`workbench.io.atomic`), and the core imports nothing above itself.
"""
from __future__ import annotations

from pathlib import Path

from ..core.settings import Settings, settings_path
from .atomic import atomic_write_text


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write settings atomically (default: :func:`~workbench.core.settings.settings_path`)."""
    path = path or settings_path()
    atomic_write_text(path, settings.model_dump_json(indent=2))
