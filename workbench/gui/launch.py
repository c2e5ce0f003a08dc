"""Before the QApplication exists: is there a display, and can Qt's platform plugin load on it?

Qt aborts the process (SIGABRT, a core dump, exit 134) when the platform plugin cannot load -- "could not
load the Qt platform plugin xcb" on a desktop lacking libxcb-icccm4 & co., or "could not connect to
display" without a display. Neither is catchable once ``QApplication()`` runs, so :func:`prepare_platform`
checks first, without Qt: the plugin library is loaded with :mod:`ctypes` (the loader names the first
missing library) and the X server is asked for a connection through libxcb. A screenshot
(``--screenshot``) needs no screen and falls back to the offscreen platform by itself; an interactive start
without a usable display ends with one line naming the fix, exit status 2.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import sys
from pathlib import Path

from ..core.errors import WorkbenchError

#: shared library -> the Debian/Ubuntu package that provides it (what Qt's xcb plugin links against)
DEBIAN_PACKAGES = {
    "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-shape.so.0": "libxcb-shape0", "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-xkb.so.1": "libxcb-xkb1", "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-shm.so.0": "libxcb-shm0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-util.so.1": "libxcb-util1", "libxcb-xinput.so.0": "libxcb-xinput0", "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb.so.1": "libxcb1", "libxkbcommon.so.0": "libxkbcommon0", "libX11.so.6": "libx11-6",
    "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1", "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6", "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0", "libSM.so.6": "libsm6", "libICE.so.6": "libice6",
}

HEADLESS_HINT = ("the headless commands work without one (workbench --help: info, segment, measure, predict, "
                 "batch, export), and --screenshot renders offscreen")


def plugin_path(name: str = "xcb") -> Path | None:
    """The file of Qt's platform plugin ``name`` inside the installed PySide6, if any."""
    try:
        import PySide6
    except ImportError:
        return None
    path = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / f"libq{name}.so"
    return path if path.is_file() else None


def missing_library(path: Path) -> str | None:
    """The shared library the loader cannot find when loading ``path`` (None: it loads)."""
    try:
        ctypes.CDLL(str(path), mode=getattr(os, "RTLD_LAZY", 1) | getattr(os, "RTLD_LOCAL", 0))
    except OSError as exc:
        found = re.search(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", str(exc))
        return found.group(1) if found else str(exc)
    return None


def apt_command(library: str) -> str:
    """The one command that installs what the xcb plugin needs (the whole known set: one run, not N)."""
    packages = sorted(set(DEBIAN_PACKAGES.values()) - {"libgl1", "libopengl0", "libfreetype6", "libsm6", "libice6"})
    first = DEBIAN_PACKAGES.get(library)
    if first and first not in packages:
        packages.append(first)
    return "sudo apt-get install " + " ".join(packages)


def x_display_reachable(display: str) -> bool | None:
    """True/False when libxcb can tell whether the X server ``display`` accepts a connection; None when
    libxcb itself is not available (then Qt could not use xcb anyway)."""
    name = ctypes.util.find_library("xcb")
    if not name:
        return None
    try:
        xcb = ctypes.CDLL(name)
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    try:
        return conn is not None and xcb.xcb_connection_has_error(conn) == 0
    finally:
        if conn:
            xcb.xcb_disconnect(conn)


def prepare_platform(*, screenshot: bool, environ: dict[str, str] | None = None) -> str | None:
    """Pick or check the Qt platform before ``QApplication()``; returns the platform forced (or None).

    Raises
    ------
    WorkbenchError
        No usable display for an interactive start (one line: why, and what to do).
    """
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen and not chosen.startswith("xcb"):
        return None  # offscreen, wayland, vnc...: the user's choice, Qt reports its own errors
    display = env.get("DISPLAY", "")
    wayland = env.get("WAYLAND_DISPLAY", "")

    def offscreen() -> str:
        if chosen:  # QT_QPA_PLATFORM=xcb asked for a real window: say why it cannot be, do not hide it
            raise WorkbenchError(f"QT_QPA_PLATFORM={chosen}: {reason}")
        env["QT_QPA_PLATFORM"] = "offscreen"
        return "offscreen"

    reason = ""

    if not display:
        reason = "DISPLAY is not set"
        if screenshot:
            return offscreen()
        if wayland and not chosen:
            return None  # Qt picks its wayland plugin
        raise WorkbenchError(f"no display (DISPLAY is not set): the window cannot open; {HEADLESS_HINT}")
    plugin = plugin_path("xcb")
    missing = missing_library(plugin) if plugin is not None else None
    if missing is not None:
        reason = f"Qt's xcb platform plugin cannot load: {missing} is missing ({apt_command(missing)})"
        if screenshot:
            return offscreen()
        raise WorkbenchError(f"Qt's xcb platform plugin cannot load: {missing} is missing; install it with: "
                             f"{apt_command(missing)} (./scripts/run does this when run as root)")
    if x_display_reachable(display) is False:
        reason = f"cannot connect to the X display {display!r}"
        if screenshot:
            return offscreen()
        raise WorkbenchError(f"cannot connect to the X display {display!r}; {HEADLESS_HINT}")
    return None
