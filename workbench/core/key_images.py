"""Key images of a document (issue 15 item 6): pictures of the view the user picked for the case report.

A :class:`KeyImage` is an 8-bit RGB capture of the view as shown (window/level, labels, boxes, annotations),
with its slice and a caption. The document's :class:`KeyImageStore` (:func:`key_images_of`) keeps them in the
order they were added, is emptied when another image opens, and is saved in the session. Adding and removing
one is an undo step on the document's stack, so a picked view counts as an unsaved change (quitting asks).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from psygnal import Signal

from .errors import WorkbenchError
from .undo import CallbackStep


@dataclass(frozen=True, eq=False)
class KeyImage:
    """One picked view: ``rgb`` ``(h, w, 3)`` uint8, the slice ``z`` it shows and a ``caption``."""

    rgb: np.ndarray
    z: int
    caption: str = ""

    def __post_init__(self) -> None:
        rgb = self.rgb
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 \
                or rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise WorkbenchError(f"a key image must be an (h, w, 3) uint8 picture, got "
                                 f"{getattr(rgb, 'shape', None)} {getattr(rgb, 'dtype', type(rgb).__name__)}")


class KeyImageStore:
    """The key images of one document. Events (psygnal): ``changed()``."""

    changed = Signal()

    def __init__(self, undo: Any = None) -> None:
        self.undo = undo
        self.items: list[KeyImage] = []

    def _insert(self, index: int, image: KeyImage) -> None:
        self.items.insert(index, image)
        self.changed.emit()

    def _delete(self, image: KeyImage) -> None:
        self.items = [i for i in self.items if i is not image]
        self.changed.emit()

    def _push(self, name: str, undo_fn: Callable[[], None], redo_fn: Callable[[], None], image: KeyImage) -> None:
        if self.undo is not None:
            self.undo.push(CallbackStep(name, undo_fn, redo_fn, size=int(image.rgb.nbytes)))

    def add(self, image: KeyImage) -> KeyImage:
        """Append ``image`` as one undo step."""
        index = len(self.items)
        self._insert(index, image)
        self._push(f"Add key image {index + 1}", lambda: self._delete(image),
                   lambda: self._insert(min(index, len(self.items)), image), image)
        return image

    def remove(self, index: int) -> None:
        """Remove the key image at ``index`` as one undo step."""
        if 0 <= index < len(self.items):
            image = self.items[index]
            self._delete(image)
            self._push(f"Remove key image {index + 1}", lambda: self._insert(min(index, len(self.items)), image),
                       lambda: self._delete(image), image)

    def load(self, items: list[KeyImage]) -> None:
        """Replace every key image (a session restored, a new image): not an undo step."""
        self.items = list(items)
        self.changed.emit()

    def clear(self) -> None:
        self.load([])


def key_images_of(document: Any) -> KeyImageStore:
    """The key-image store of ``document`` (created on first use; emptied when its image changes)."""
    store = getattr(document, "key_images", None)
    if store is None:
        store = KeyImageStore(document.undo)
        document.key_images = store
        document.image_changed.connect(store.clear)
    return store


__all__ = ["KeyImage", "KeyImageStore", "key_images_of"]
