"""The cancel token that long core operations take (inference, explanations): one type, one test of it."""
from __future__ import annotations

import threading
from typing import Callable

#: Set the event, or make the callable return True, to stop the operation at its next check.
Cancel = threading.Event | Callable[[], bool] | None


def is_cancelled(cancel: Cancel) -> bool:
    """Whether ``cancel`` asks to stop: a set event, a callable returning True; ``None`` never does."""
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())
