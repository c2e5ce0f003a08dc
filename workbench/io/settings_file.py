"""Writing the settings file (:class:`~workbench.core.settings.Settings`) atomically.

Reading is :func:`workbench.core.settings.load_settings`; the write lives here because atomic writes are
the io layer's (:mod:`workbench.io.atomic`), and the core imports nothing above itself.
"""
from __future__ import annotations

from pathlib import Path

from ..core.settings import Settings, settings_path
from ..core.site import site_policy
from .atomic import atomic_write_text


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write settings atomically (default: :func:`~workbench.core.settings.settings_path`)."""
    path = path or settings_path()
    if settings._provider_from_site and settings.provider == site_policy().default_provider:
        # the site's default stood in for the user's "auto" and is unchanged: do not pin it in their file
        settings = settings.model_copy(update={"provider": "auto"})
    atomic_write_text(path, settings.model_dump_json(indent=2))
