"""Plugin discovery: finds ``plugin.yaml`` folders; reads only YAML (sessions are created on first use).

Search order (the first plugin with a given id wins; later duplicates are reported):

1. bundled: ``$WORKBENCH_PLUGINS_DIR`` (the frozen app sets it) or ``<repo>/plugins`` beside the package;
2. user: ``config_dir()/plugins``;
3. site: every folder of the site file's ``plugin_dirs`` (core/site.py, clinic IT);
4. settings: every folder of ``Settings.plugin_dirs``;
5. entry points of the group ``workbench.plugins`` (installed Python packages). An entry point may name a
   folder (str/Path), a module or package (its folder is searched), or a callable returning folder(s).

In the site file's clinic mode only 1 and 3 are searched, and a plugin given by path must lie in one of them.

A broken plugin never stops discovery: it is reported in :attr:`Discovery.errors`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Iterable

from ..core.errors import PluginError
from ..core.settings import Settings, config_dir, load_settings
from ..core.site import site_policy
from .spec import MANIFEST_NAME, PluginSpec, load_plugin

ENTRY_POINT_GROUP = "workbench.plugins"
ENV_PLUGINS_DIR = "WORKBENCH_PLUGINS_DIR"


@dataclass
class Discovery:
    """What discovery found: valid plugins in search order and one error per broken plugin."""

    plugins: list[PluginSpec] = field(default_factory=list)
    errors: list[PluginError] = field(default_factory=list)

    def by_id(self) -> dict[str, PluginSpec]:
        return {p.id: p for p in self.plugins}


def bundled_plugins_dir() -> Path:
    """The bundled plugins: ``$WORKBENCH_PLUGINS_DIR`` or ``plugins/`` next to the ``workbench`` package."""
    env = os.environ.get(ENV_PLUGINS_DIR)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "plugins"


def user_plugins_dir() -> Path:
    return config_dir() / "plugins"


def search_dirs(settings: Settings | None = None) -> list[tuple[str, Path]]:
    """The plugin roots in search order as ``(source, folder)`` (entry points not included)."""
    settings = settings if settings is not None else load_settings()
    site = site_policy()
    roots = [("bundled", bundled_plugins_dir())]
    if not site.clinic_mode:
        roots.append(("user", user_plugins_dir()))
    roots += [("site", Path(d).expanduser()) for d in site.plugin_dirs]
    if not site.clinic_mode:  # clinic mode: the user's own folders are not searched
        roots += [("settings", Path(d).expanduser()) for d in settings.plugin_dirs]
    return roots


def _plugin_folders(root: Path) -> list[Path]:
    """``root`` itself when it is a plugin folder, else its sub-folders holding a plugin.yaml."""
    if (root / MANIFEST_NAME).is_file():
        return [root]
    if not root.is_dir():
        return []
    from .bioimageio import is_package  # wave 2: bioimage.io packages (folders or .zip) as they are

    return sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST_NAME).is_file() or is_package(p))


def _entry_point_roots() -> tuple[list[Path], list[PluginError]]:
    roots: list[Path] = []
    errors: list[PluginError] = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = ep.load()
            if callable(target) and not isinstance(target, ModuleType):
                target = target()
            items: Iterable = target if isinstance(target, (list, tuple)) else [target]
            for item in items:
                if isinstance(item, ModuleType):
                    # a package's folders; a plain module's own folder (a namespace package has no __file__)
                    paths = getattr(item, "__path__", None)
                    if paths is None:
                        paths = [Path(item.__file__).parent] if item.__file__ else []
                    roots.extend(Path(p) for p in paths)
                else:
                    roots.append(Path(item))
        # An installed package can fail in any way while importing; report it and carry on.
        except Exception as exc:  # noqa: BLE001
            errors.append(PluginError(f"entry point {ep.name!r} ({ep.value}) failed: "
                                      f"{type(exc).__name__}: {exc}"))
    return roots, errors


def discover_plugins(settings: Settings | None = None, *, entry_points: bool = True) -> Discovery:
    """Find every plugin, in search order; broken ones are reported, never raised.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to the user's saved settings.
    entry_points : bool
        Also search installed packages (group ``workbench.plugins``).

    Returns
    -------
    Discovery
    """
    settings = settings if settings is not None else load_settings()
    found = Discovery()
    seen: dict[str, PluginSpec] = {}
    roots = list(search_dirs(settings))
    if entry_points and not site_policy().clinic_mode:
        ep_roots, ep_errors = _entry_point_roots()
        roots += [("entry-point", r) for r in ep_roots]
        found.errors.extend(ep_errors)
    visited: set[Path] = set()
    for source, root in roots:
        for folder in _plugin_folders(root):
            key = folder.resolve()
            if key in visited:
                continue
            visited.add(key)
            try:
                spec = load_plugin(folder, source=source)
            except PluginError as exc:
                found.errors.append(exc)
                continue
            if spec.id in seen:
                found.errors.append(spec.error("id", f"{spec.id!r} already provided by "
                                                     f"{seen[spec.id].manifest_path}; this one is ignored"))
                continue
            seen[spec.id] = spec
            found.plugins.append(spec)
    return found


def find_plugin(ref: str | Path | PluginSpec, settings: Settings | None = None) -> PluginSpec:
    """Resolve a CLI/GUI plugin reference: a :class:`PluginSpec`, a path to a plugin folder (or its
    plugin.yaml), or the id of an installed plugin.

    Raises
    ------
    PluginError
        Unknown id (the message lists the installed ids) or an invalid plugin.
    """
    if isinstance(ref, PluginSpec):
        return ref
    text = str(ref)
    path = Path(text).expanduser()
    if path.exists() or os.sep in text or "/" in text or text.endswith((".yaml", ".yml")):
        if site_policy().clinic_mode:
            folder = (path.parent if path.suffix in (".yaml", ".yml") else path).resolve()
            roots = [r.resolve() for _, r in search_dirs(settings)]
            if not any(folder == r or r in folder.parents for r in roots):
                site_policy().refuse_in_clinic_mode(f"running a plugin from a folder of your own ({path})")
        return load_plugin(path)
    found = discover_plugins(settings)
    plugins = found.by_id()
    if text in plugins:
        return plugins[text]
    for err in found.errors:  # the wanted plugin may be the broken one: say why
        if f"id: {text!r}" not in str(err) and f"/{text}/" in str(err).replace(os.sep, "/"):
            raise err
    known = ", ".join(sorted(plugins)) or "none installed"
    raise PluginError(f"unknown plugin {text!r} (installed: {known})", path=None)
