"""User settings: a pydantic model stored as JSON in the platform config dir.

``WORKBENCH_CONFIG_DIR`` overrides the folder (tests, portable installs).
"""
from __future__ import annotations

import difflib
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from .errors import WorkbenchError

if TYPE_CHECKING:
    from .site import SitePolicy

SCHEMA_VERSION = 1


class TrustedPlugin(BaseModel):
    """One ``workbench models trust`` record: the plugin's content hash (its .py files, plugin.yaml and
    model file(s)), with the id and folder it had when trusted (shown to the user, not used for trust)."""

    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    id: str = ""
    folder: str = ""
    files: list[str] = Field(default_factory=list)


class Settings(BaseModel):
    """Everything the user can set; defaults are what a fresh install uses.

    Unknown keys (a misspelt ``trusted_plugin``) are kept when the file is saved again and reported once
    per file by :func:`load_settings`, never silently ignored.
    """

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    max_pixels: int = Field(250_000_000, ge=1, description="refuse images with more pixels than this")
    intra_op_threads: int = Field(1, ge=0, description="ONNX Runtime intra-op threads (0 = runtime default)")
    provider: str = Field("auto", pattern="^(auto|cpu|cuda|tensorrt)$")
    plugin_dirs: list[str] = Field(default_factory=list)
    trusted_plugins: list[str] = Field(default_factory=list,
                                       description="obsolete: plugin ids are no longer trusted (any folder can "
                                                   "claim an id); see trusted_code")
    run_on_drop: list[str] = Field(default_factory=list, description="plugin ids run on every opened image")
    theme: str = Field("dark", pattern="^(dark|light)$")
    recent_files: list[str] = Field(default_factory=list)
    undo_max_mb: int = Field(512, ge=16)
    # issue 11 (bounds, integrity, recovery)
    inference_time_limit_s: float = Field(600.0, ge=0, description="cancel one model run after this many "
                                          "seconds (0 = no limit)")
    extra_providers: list[str] = Field(default_factory=list, description="ONNX Runtime providers allowed "
                                       "besides the local ones (CPU, CUDA, TensorRT, DirectML, CoreML, "
                                       "OpenVINO, ROCm)")
    autosave_interval_s: int = Field(60, ge=0, description="write a recovery file this often while there are "
                                     "unsaved edits (0 = only after operations)")
    # NVIDIA GPU (workbench/inference/gpu.py, docs/GPU.md)
    cuda_device_id: int = Field(0, ge=0, description="CUDA device of every CUDA session")
    cuda_mem_limit_mb: int = Field(0, ge=0, description="GPU memory arena limit per session in MiB (0 = none)")
    cudnn_conv_algo_search: str = Field("HEURISTIC", pattern="^(HEURISTIC|EXHAUSTIVE|DEFAULT)$")
    allow_tensorrt: bool = Field(False, description="try TensorRT when a plugin lists it (engine build: minutes)")
    # PACS (workbench/pacs/nodes.py validates the nodes; no credentials are ever stored here)
    pacs_nodes: list[dict] = Field(default_factory=list, description="configured DICOM / DICOMweb nodes")
    pacs_ae_title: str | None = Field(None, description="our AE title (default: site file, then WORKBENCH)")
    pacs_storage_port: int | None = Field(None, ge=0, le=65535, description="port of our C-MOVE storage SCP")
    pacs_cache_mb: int | None = Field(None, ge=1, description="size cap of the local study cache")
    # -- plugin code trust (issue 21 / 11): keyed by content hash, written by `workbench models trust` --
    trusted_code: list[TrustedPlugin] = Field(default_factory=list,
                                              description="plugins allowed to run their own decoder code")
    # issue 20: True when ``provider`` is the site file's default_provider standing in for the user's "auto"
    # (core/site.py); save_settings then writes "auto" back, so the user's file never pins the site's value
    _provider_from_site: bool = PrivateAttr(False)


def config_dir() -> Path:
    """The folder of settings.json and the user's plugin folder."""
    override = os.environ.get("WORKBENCH_CONFIG_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir("workbench", appauthor=False))


def data_dir() -> Path:
    """The folder of the log and of crash-recovery files (``WORKBENCH_DATA_DIR`` overrides it)."""
    override = os.environ.get("WORKBENCH_DATA_DIR")
    if override:
        return Path(override)
    if os.environ.get("WORKBENCH_CONFIG_DIR"):  # tests and portable installs: keep everything together
        return Path(os.environ["WORKBENCH_CONFIG_DIR"]) / "data"
    return Path(platformdirs.user_data_dir("workbench", appauthor=False))


def settings_path() -> Path:
    return config_dir() / "settings.json"


def load_settings(path: Path | None = None) -> Settings:
    """Read settings; a missing file gives the defaults, a broken one raises :class:`WorkbenchError`."""
    from .site import site_policy

    site = site_policy()  # a broken site file stops here, before anything runs (core/site.py)
    path = path or settings_path()
    if not path.exists():
        return _with_site(Settings(), site)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        settings = Settings.model_validate(raw)
        _warn_unknown(path, settings)
        return _with_site(settings, site)
    except (OSError, ValueError, ValidationError) as exc:
        first = str(exc).splitlines()
        detail = first[0] if first else type(exc).__name__
        if isinstance(exc, ValidationError) and exc.errors():
            err = exc.errors()[0]
            detail = f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
        raise WorkbenchError(f"invalid settings file ({detail})", path=path) from exc


def _with_site(settings: Settings, site: SitePolicy) -> Settings:
    """The site's ``default_provider`` replaces the user's ``auto`` (an explicit choice stays)."""
    if site.default_provider and settings.provider == "auto":
        settings.provider = site.default_provider
        settings._provider_from_site = True
    return settings


_WARNED: set[tuple[str, str]] = set()
_WARNED_LOCK = threading.Lock()


def unknown_keys(settings: Settings) -> list[str]:
    """Keys of the settings file that are no setting (misspelt or from a newer version)."""
    return sorted((settings.model_extra or {}).keys())


def _warn_unknown(path: Path, settings: Settings) -> None:
    """One stderr line per unknown key and file per process (the GUI and every command load settings)."""
    known = list(Settings.model_fields)
    for key in unknown_keys(settings):
        with _WARNED_LOCK:
            if (str(path), key) in _WARNED:
                continue
            _WARNED.add((str(path), key))
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        print(f"workbench: warning: {path}: unknown setting {key!r} is ignored{hint}", file=sys.stderr)
