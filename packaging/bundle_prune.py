"""Drop what a clinic workstation build of Workbench never uses from PyInstaller's Analysis (used by the spec).

PyInstaller's Qt hooks collect every plugin of the Qt modules the app imports, and with each plugin the
system libraries it links. On Linux that means the GTK3 platform theme plugin drags in GTK, GDK, cairo,
pango, ATK and friends from the build machine: ~20 MB, and a GTK stack that can clash with the workstation's
own GTK themes and engines. Workbench sets its own Fusion style and palette (workbench/gui/theme.py), so the
platform theme is never wanted; neither are the embedded / remote display backends (eglfs, linuxfb, vnc,
Vulkan KMS, evdev input) nor Qt's translations (the app installs no QTranslator).

A library is dropped only when a dropped plugin needed it and no kept binary does: libraries that nothing
links (dlopen'ed ones, e.g. ONNX Runtime's providers) are never candidates, so they are always kept.
"""
from __future__ import annotations

import fnmatch
import os

# Qt plugins (destination paths inside the bundle) a desktop clinic build does not need, on Linux.
LINUX_QT_PLUGIN_DROPS = (
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    "PySide6/Qt/plugins/platforms/libqeglfs.so",
    "PySide6/Qt/plugins/platforms/libqlinuxfb.so",
    "PySide6/Qt/plugins/platforms/libqminimalegl.so",
    "PySide6/Qt/plugins/platforms/libqvkkhrdisplay.so",
    "PySide6/Qt/plugins/platforms/libqvnc.so",
    "PySide6/Qt/plugins/egldeviceintegrations/*",
    "PySide6/Qt/plugins/generic/*",
    # issue 20: image-format plugins. The app decodes images with its own readers (OpenCV, Pillow,
    # tifffile, pydicom) and hands Qt raw pixels; Qt itself only reads the SVG icon (qsvg, kept) and
    # writes PNG screenshots (built into QtGui).
    "PySide6/Qt/plugins/imageformats/libqgif.so",
    "PySide6/Qt/plugins/imageformats/libqicns.so",
    "PySide6/Qt/plugins/imageformats/libqico.so",
    "PySide6/Qt/plugins/imageformats/libqjpeg.so",
    "PySide6/Qt/plugins/imageformats/libqpdf.so",
    "PySide6/Qt/plugins/imageformats/libqtga.so",
    "PySide6/Qt/plugins/imageformats/libqtiff.so",
    "PySide6/Qt/plugins/imageformats/libqwbmp.so",
    "PySide6/Qt/plugins/imageformats/libqwebp.so",
    # issue 20: the native Wayland platform (2.5 MiB with libQt6WaylandClient and its shell/decoration
    # plugins). On a Wayland desktop Qt then uses xcb through XWayland, which GNOME and KDE provide.
    "PySide6/Qt/plugins/platforms/libqwayland*.so",
    "PySide6/Qt/plugins/wayland-*/*",
)
DATA_DROPS = ("PySide6/Qt/translations/*",)


def _matches(dest: str, patterns) -> bool:
    dest = dest.replace(os.sep, "/")
    return any(fnmatch.fnmatch(dest, p) for p in patterns)


def prune_binaries(binaries, patterns, get_imports):
    """Return ``(kept, dropped)`` TOC lists: the entries matching ``patterns`` and the libraries only they need.

    Parameters
    ----------
    binaries : list of (dest, src, typecode)
        ``Analysis.binaries``.
    patterns : sequence of str
        fnmatch patterns of destination paths to drop.
    get_imports : callable
        ``src path -> iterable of (name, fullpath)``, the libraries a binary links
        (``PyInstaller.depend.bindepend.get_imports``).
    """
    by_name: dict[str, tuple] = {}
    for entry in binaries:
        by_name.setdefault(os.path.basename(entry[0]), entry)

    needs_cache: dict[str, set[str]] = {}

    def needs(entry) -> set[str]:
        """Basenames of bundled libraries ``entry`` links directly."""
        src = entry[1]
        if entry[2] == "SYMLINK":  # (link, target dest, "SYMLINK"): nothing to analyse
            return set()
        if src not in needs_cache:
            try:
                names = {os.path.basename(name) for name, _ in get_imports(src)}
            except Exception:  # noqa: BLE001  (an unreadable binary keeps everything it might need)
                names = set(by_name)
            needs_cache[src] = {n for n in names if n in by_name}
        return needs_cache[src]

    def closure(roots) -> set[str]:
        seen: set[str] = set()
        stack = [os.path.basename(e[0]) for e in roots]
        while stack:
            name = stack.pop()
            if name in seen or name not in by_name:
                continue
            seen.add(name)
            stack.extend(needs(by_name[name]) - seen)
        return seen

    removed = [e for e in binaries if _matches(e[0], patterns)]
    removed_names = {os.path.basename(e[0]) for e in removed}
    candidates = closure(removed) - removed_names
    others = [e for e in binaries
              if os.path.basename(e[0]) not in candidates and os.path.basename(e[0]) not in removed_names]
    still_needed = closure(others)
    drop_names = removed_names | (candidates - still_needed)
    kept, dropped = [], []
    for e in binaries:
        (dropped if _matches(e[0], patterns) or os.path.basename(e[0]) in drop_names else kept).append(e)
    return kept, dropped


def prune_datas(datas, dropped_binaries=(), patterns=DATA_DROPS):
    """``datas`` without the entries matching ``patterns`` and the symlinks to ``dropped_binaries``.

    PyInstaller >= 6 lists, among the data, top-level symlinks to libraries it placed in sub-folders
    (``('libQt6Network.so.6', 'PySide6/Qt/lib/libQt6Network.so.6', 'SYMLINK')``): one whose target was dropped
    would dangle.
    """
    gone = {e[0].replace(os.sep, "/") for e in dropped_binaries}
    return [e for e in datas if not _matches(e[0], patterns)
            and not (e[2] == "SYMLINK" and e[1].replace(os.sep, "/") in gone)]
