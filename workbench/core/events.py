"""A tiny Qt-free signal: models of the document emit, views bind.

The GUI wraps these in Qt signals where it needs queued delivery; the core stays import-free of Qt.
"""
from __future__ import annotations

from typing import Any, Callable


class Signal:
    """A list of callbacks called in connection order by :meth:`emit`.

    >>> s = Signal(); seen = []
    >>> s.connect(seen.append); s.emit(3); seen
    [3]
    """

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []
        self._blocked = 0

    def connect(self, callback: Callable[..., Any]) -> None:
        if callback not in self._callbacks:
            self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        if self._blocked:
            return
        for callback in list(self._callbacks):
            callback(*args)

    def blocked(self) -> "_Blocker":
        """Context manager that suppresses emission (for bulk updates)."""
        return _Blocker(self)


class _Blocker:
    def __init__(self, signal: Signal) -> None:
        self._signal = signal

    def __enter__(self) -> Signal:
        self._signal._blocked += 1
        return self._signal

    def __exit__(self, *exc: object) -> None:
        self._signal._blocked -= 1
