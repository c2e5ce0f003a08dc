"""GUI entry point: ``run_gui(files, screenshot=None)`` (called by ``workbench [FILES...]``)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..core.errors import WorkbenchError
from ..core.settings import Settings, load_settings
from .qt import QtCore, QtWidgets

SCREENSHOT_TIMEOUT_S = 120


def create_app() -> QtWidgets.QApplication:
    """The QApplication (created once)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        QtWidgets.QApplication.setApplicationName("Workbench")
        QtWidgets.QApplication.setOrganizationName("workbench")
        app = QtWidgets.QApplication(sys.argv[:1])
    return app


def run_gui(files: list[str], screenshot: str | None = None, size: tuple[int, int] | None = None) -> int:
    """Open the main window with ``files``; with ``screenshot``, save a grab of the window and quit.
    ``size``: the window's (width, height) in pixels, instead of the saved or default size.

    Returns the exit status: 0, or 2 when ``screenshot`` is given and a file failed to open (the reason is
    printed as one line on stderr) or the PNG could not be written.
    """
    from .launch import prepare_platform
    from .main_window import MainWindow
    from .theme import apply_theme

    if QtWidgets.QApplication.instance() is None:
        prepare_platform(screenshot=screenshot is not None)  # Qt would abort (core dump) without a display
    app = create_app()
    settings_error = None
    try:
        settings = load_settings()
    except WorkbenchError as exc:  # a broken settings file must not keep the app from starting
        settings, settings_error = Settings(), str(exc)
    apply_theme(app, settings.theme)
    # a screenshot is reproducible: default layout, nothing written to the user's config
    window = MainWindow(settings, restore_layout=screenshot is None, persist=screenshot is None)
    if size is not None:
        window.resize(*size)
    window.show()
    if settings_error:
        window.show_error(settings_error)
    if screenshot is None and window.recovery is not None and window.recovery.offer_restore():
        files = []  # restoring the unsaved work of a crashed session wins over the files of this start
    if files:
        window.open_paths(files)
    if screenshot is None:
        return int(app.exec())
    return _screenshot(app, window, screenshot)


def _panels_busy(window) -> bool:
    """True while a dock panel has work under way (e.g. a model running on drop): the grab waits for it."""
    return any(bool(getattr(getattr(dock, "panel", None), "is_busy", False)) for dock in window.docks.values())


def _screenshot(app: QtWidgets.QApplication, window, path: str) -> int:
    deadline = QtCore.QDeadlineTimer(SCREENSHOT_TIMEOUT_S * 1000)
    # idle for a few rounds in a row: a finished load queues the run-on-drop models only on a later event,
    # so one idle check right after the load could grab the window before they start
    idle_rounds = 0
    while idle_rounds < 5 and not deadline.hasExpired():
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        busy = window.is_loading or _panels_busy(window)
        idle_rounds = 0 if busy else idle_rounds + 1
        QtCore.QThread.msleep(10)
    status = 0
    if window.is_loading:
        window.cancel_load()
        print(f"workbench: error: timed out after {SCREENSHOT_TIMEOUT_S} s opening the image", file=sys.stderr)
        status = 2
    elif window.last_error:
        print(f"workbench: error: {window.last_error}", file=sys.stderr)
        status = 2
    # let layouts settle and the canvas paint before grabbing
    for _ in range(5):
        app.processEvents()
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        saved = window.grab().save(str(target), "PNG")
    except OSError as exc:
        saved = False
        print(f"workbench: error: {target}: {exc}", file=sys.stderr)
    if not saved:
        print(f"workbench: error: {target}: could not write the screenshot", file=sys.stderr)
        status = 2
    window.close()
    return status
