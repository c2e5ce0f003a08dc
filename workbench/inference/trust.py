"""Trust of plugin code, keyed by the plugin's content, not by the id it declares.

A plugin with ``output.decoder`` ships Python code that runs with the user's rights. It runs only when the
SHA-256 of the plugin's content -- every ``.py`` file of the folder, ``plugin.yaml``, the model file (and
the labels file) -- is recorded in ``Settings.trusted_code`` (``workbench models trust PLUGIN`` or the
"Trust code" box of the Models dock). Editing any of those files changes the hash: the plugin is untrusted
again until the user trusts the new content. Keying by the declared id would let any folder that claims a
trusted id run its code (issue 11).

The hash covers the relative path and the bytes of each file, so renaming a file changes it too. The
decoder module is executed from the very bytes that were hashed, never from a ``__pycache__`` file (a
tampered .pyc with the source's timestamp would otherwise run unnoticed). Model and weight files are
hashed through :func:`~workbench.inference.checksum.file_sha256` (the same cache the checksum check uses), the
small text files are read every time.
"""
from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import PluginError
from ..core.settings import Settings, TrustedPlugin, load_settings, settings_path
from ..core.site import site_policy
from ..io.settings_file import save_settings
from .checksum import file_sha256
from .spec import MANIFEST_NAME, PluginSpec, _display


@dataclass(frozen=True)
class ContentHash:
    """The content hash of a plugin and the files it covers (relative to the plugin folder)."""

    sha256: str
    files: tuple[str, ...]


def _code_files(folder: Path) -> list[Path]:
    """Every .py file of the plugin folder and its sub-folders (caches skipped): any of them may be imported."""
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts and p.is_file())


# weights next to the graph (ONNX external data has no fixed name): any of these is part of "the model"
WEIGHT_SUFFIXES = (".onnx", ".data", ".bin", ".onnx_data", ".weights", ".pb")


def _weight_files(spec: PluginSpec) -> list[Path]:
    folder = spec.folder
    found = {spec.model_path}
    found.update(p for p in folder.rglob("*") if p.suffix.lower() in WEIGHT_SUFFIXES and p.is_file()
                 and "__pycache__" not in p.parts)
    # files the manifest lists as the graph's external data (model.external_data), whatever their names
    found.update(p for p in (folder / name for name in spec.model.external_data) if p.is_file())
    return sorted(found)


def content_hash(spec: PluginSpec, *, sources: dict[str, bytes] | None = None) -> ContentHash:
    """SHA-256 over (relative path, bytes) of the plugin's .py files, plugin.yaml, model file(s) (the
    graph and weight files next to it: ONNX external data) and labels file.

    ``sources`` gives the bytes of files already read (by relative path): the decoder module is hashed
    from exactly the bytes that will be executed, so nothing can swap the file in between.

    Raises
    ------
    PluginError
        A file cannot be read.
    """
    folder = spec.folder
    sources = sources or {}

    def rel_of(path: Path) -> str:
        try:
            return path.relative_to(folder).as_posix()
        except ValueError:  # a model symlinked from elsewhere: named as the manifest names it
            return Path(spec.model.file).as_posix()

    files: dict[str, Path] = {rel_of(p): p for p in _code_files(folder)}
    files[MANIFEST_NAME] = folder / MANIFEST_NAME
    weights = _weight_files(spec)
    files.update({rel_of(p): p for p in weights})
    if spec.output.labels_file:
        files[Path(spec.output.labels_file).as_posix()] = folder / spec.output.labels_file
    digest = hashlib.sha256()
    for rel in sorted(files):
        path = files[rel]
        try:
            if rel in sources:
                part = hashlib.sha256(sources[rel]).hexdigest()
            elif path in weights:  # possibly large: hashed through the checksum's cache
                part = file_sha256(path)
            else:
                part = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise PluginError(f"cannot read {rel} to compute the plugin's content hash: {exc}",
                              path=_display(spec.manifest_path)) from exc
        digest.update(rel.encode("utf-8") + b"\0" + part.encode("ascii") + b"\n")
    return ContentHash(digest.hexdigest(), tuple(sorted(files)))


def is_trusted(spec: PluginSpec, settings: Settings, *, sources: dict[str, bytes] | None = None) -> bool:
    """Whether the plugin's current content was trusted (False when it has no trust records at all).

    In the site file's clinic mode only the site's ``trusted_code`` hashes count, not the user's records.
    """
    site = site_policy()
    hashes = set(site.trusted_code) if site.clinic_mode else {t.sha256 for t in settings.trusted_code}
    if not hashes:
        return False  # nothing trusted: no need to hash anything
    return content_hash(spec, sources=sources).sha256 in hashes


def trust_state(spec: PluginSpec, settings: Settings) -> str:
    """``trusted``, ``changed`` (a record for this folder or id exists, the content differs) or ``untrusted``."""
    if is_trusted(spec, settings):
        return "trusted"
    folder = str(spec.folder)
    if any(t.folder == folder for t in settings.trusted_code):
        return "changed"
    return "untrusted"


def trust_command(spec: PluginSpec, action: str = "trust") -> str:
    """The exact command that trusts (or untrusts) this plugin: by id when installed, else by folder."""
    target = spec.id if spec.source != "path" else str(spec.folder)
    return f"workbench models {action} {shlex.quote(target)}"


def untrusted_message(spec: PluginSpec, settings: Settings) -> str:
    """Why the plugin's decoder does not run, and the command plus settings file that change it."""
    state = trust_state(spec, settings)
    why = ("its files changed since you trusted it" if state == "changed"
           else "it runs only after you trust the plugin")
    legacy = (" (trust by id in trusted_plugins is no longer honoured)" if spec.id in settings.trusted_plugins
              else "")
    return (f"{spec.output.decoder} is code shipped with the plugin; {why}{legacy}: run "
            f"`{trust_command(spec)}` (trust is recorded in {settings_path()})")


def trust_plugin(spec: PluginSpec, settings: Settings | None = None, *,
                 save: bool = True) -> tuple[TrustedPlugin, bool]:
    """Record the plugin's current content as trusted and save the settings atomically (``save=False``:
    only in memory, for a window that does not persist its settings).

    Older records of the same folder are replaced (the folder's earlier content is no longer trusted).

    Returns
    -------
    (record, added)
        ``added`` is False when this content was already trusted.
    """
    site_policy().refuse_in_clinic_mode("trusting plugin code")
    settings = settings if settings is not None else load_settings()
    h = content_hash(spec)
    folder = str(spec.folder)
    if any(t.sha256 == h.sha256 for t in settings.trusted_code):
        return next(t for t in settings.trusted_code if t.sha256 == h.sha256), False
    record = TrustedPlugin(sha256=h.sha256, id=spec.id, folder=folder, files=list(h.files))
    settings.trusted_code = [t for t in settings.trusted_code if t.folder != folder] + [record]
    if save:
        save_settings(settings)
    return record, True


def untrust_plugin(spec: PluginSpec, settings: Settings | None = None, *, save: bool = True) -> int:
    """Remove every record of this plugin (its current content, its folder, its id); returns how many.

    Saves the settings atomically when something was removed.
    """
    site_policy().refuse_in_clinic_mode("changing plugin trust")
    settings = settings if settings is not None else load_settings()
    folder = str(spec.folder)
    try:
        current = content_hash(spec).sha256
    except PluginError:
        current = None  # unreadable files: the folder and id records still go
    keep = [t for t in settings.trusted_code
            if t.sha256 != current and t.folder != folder and t.id != spec.id]
    removed = len(settings.trusted_code) - len(keep)
    legacy = spec.id in settings.trusted_plugins
    if removed or legacy:
        settings.trusted_code = keep
        settings.trusted_plugins = [i for i in settings.trusted_plugins if i != spec.id]
        if save:
            save_settings(settings)
    return removed
