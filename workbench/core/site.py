"""The site configuration of clinic IT: one TOML file read at start, which users cannot change.

Where: ``$WORKBENCH_SITE_FILE`` (an empty value: no site file), else ``site.toml`` in the system-wide
config folder (Linux ``/etc/xdg/workbench/site.toml``, beside the PACS site file ``pacs.yaml``; Windows
``C:\\ProgramData\\workbench\\site.toml``). A missing file means no site policy. A file that is there but
broken, or has a key this version does not know, stops every command with one line naming the file and
the key: a misspelt ``clinic_mod = true`` must never leave a workstation silently unlocked.

Keys (all optional; docs/INSTALL.md is the administrator's reference)::

    clinic_mode = true                 # users cannot add, import or trust plugins (see below)
    plugin_dirs = ["/opt/clinic/plugins"]   # searched after the bundled plugins, before the user's
    default_provider = "cpu"           # replaces the user's "auto": auto | cpu | cuda | tensorrt
    export_folder = "/srv/exports"     # where export dialogs and `predict`/`batch` without -o write
    deidentify = "always"              # "always": exports are always de-identified; "default": the user
                                       # may keep the identity in a DICOM SEG (the built-in behaviour)
    trusted_code = ["<sha256>", ...]   # clinic mode: content hashes of plugins whose decoder code may run

Clinic mode: only the bundled plugins, the site's ``plugin_dirs`` and no installed-package entry points are
searched; the user's plugin folder and ``plugin_dirs`` setting are ignored; ``models import``, ``models
trust`` and the GUI's import and plugin-folder controls refuse; and a plugin's own decoder code runs only
when its content hash is in the site's ``trusted_code`` (the user's trust records are ignored).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import WorkbenchError

ENV_SITE_FILE = "WORKBENCH_SITE_FILE"
SITE_FILE_NAME = "site.toml"


class ClinicModeError(WorkbenchError):
    """An action the site configuration's clinic mode does not allow."""


class SitePolicy(BaseModel):
    """The site file's settings; the defaults are an installation without a site file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clinic_mode: bool = False
    plugin_dirs: tuple[str, ...] = ()
    default_provider: str | None = Field(None, pattern="^(auto|cpu|cuda|tensorrt)$")
    export_folder: str | None = None
    deidentify: Literal["always", "default"] = "default"
    trusted_code: tuple[str, ...] = ()
    #: the file these values came from (None: no site file)
    path: str | None = Field(None, exclude=True)

    @property
    def always_deidentify(self) -> bool:
        return self.deidentify == "always"

    def export_dir(self) -> Path | None:
        """The site's export folder (``~`` and environment variables expanded), or None."""
        if not self.export_folder:
            return None
        return Path(os.path.expandvars(self.export_folder)).expanduser()

    def refuse_in_clinic_mode(self, action: str) -> None:
        """Raise :class:`ClinicModeError` naming ``action`` and the site file when clinic mode is on."""
        if self.clinic_mode:
            raise ClinicModeError(f"{action} is disabled in clinic mode (set by the site configuration; ask "
                                  "your IT department)", path=self.path)


def site_file() -> Path | None:
    """The site file's location, or None when ``$WORKBENCH_SITE_FILE`` is set empty."""
    override = os.environ.get(ENV_SITE_FILE)
    if override is not None:
        return Path(override) if override.strip() else None
    import platformdirs

    return Path(platformdirs.site_config_dir("workbench", appauthor=False)) / SITE_FILE_NAME


_CACHE: dict[tuple[str, int, int], SitePolicy] = {}
_LOCK = threading.Lock()


def read_site_policy(path: Path) -> SitePolicy:
    """Parse and validate one site file; raises :class:`WorkbenchError` naming the file and the bad key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WorkbenchError(f"cannot read the site configuration ({exc.strerror or exc})", path=path) from exc
    except UnicodeDecodeError as exc:
        raise WorkbenchError(f"invalid site configuration (not UTF-8: {exc.reason})", path=path) from exc
    except tomllib.TOMLDecodeError as exc:
        raise WorkbenchError(f"invalid site configuration (TOML: {exc})", path=path) from exc
    try:
        return SitePolicy.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        value = "" if err["type"] == "extra_forbidden" else f" (got {err.get('input')!r})"
        raise WorkbenchError(f"invalid site configuration: {key}: {msg}{value}", path=path) from exc


def site_policy() -> SitePolicy:
    """The site policy in effect (re-read when the file changes); no file: the defaults."""
    path = site_file()
    if path is None:
        return SitePolicy()
    try:
        st = path.stat()
    except FileNotFoundError:
        return SitePolicy()
    except OSError as exc:
        raise WorkbenchError(f"cannot read the site configuration ({exc.strerror or exc})", path=path) from exc
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    policy = read_site_policy(path)
    with _LOCK:
        _CACHE.clear()
        _CACHE[key] = policy
    return policy
