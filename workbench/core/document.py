"""Document: what is open — one image, its label map, the model results, and the undo history."""
from __future__ import annotations

from typing import Any

from .events import Signal
from .image import ImageVolume
from .labels import LabelMap
from .undo import CallbackStep, UndoStack


class Document:
    """The open image with everything derived from it.

    Events (Qt-free :class:`~workbench.core.events.Signal`):

    - ``image_changed()`` — a new image was set (label map and results were reset);
    - ``labels.data_changed(bbox)`` / ``labels.labels_changed()`` — forwarded from the label map;
    - ``results_changed()`` — a model result was added or removed (undoably);
    - ``undo.changed()`` — the history changed.
    """

    def __init__(self, image: ImageVolume | None = None, *, undo_max_bytes: int = 512 * 1024 * 1024) -> None:
        self.undo = UndoStack(max_bytes=undo_max_bytes)
        self.image_changed = Signal()
        self.results_changed = Signal()
        self.image: ImageVolume | None = None
        self.labels: LabelMap | None = None
        self.results: list[Any] = []
        if image is not None:
            self.set_image(image)

    def set_image(self, image: ImageVolume) -> None:
        """Make ``image`` the open image: a fresh, empty label map, no results, empty history."""
        old_labels = self.labels
        self.image = image
        self.labels = LabelMap((image.n_slices, image.height, image.width), undo=self.undo)
        if old_labels is not None:
            # views bound to the old label map re-bind on image_changed
            old_labels.data_changed._callbacks.clear()
            old_labels.labels_changed._callbacks.clear()
        self.results = []
        self.undo.clear()
        self.image_changed.emit()

    @property
    def is_empty(self) -> bool:
        return self.image is None

    def add_result(self, result: Any, name: str | None = None) -> None:
        """Append a model result as one undoable step.

        Handlers of ``results_changed`` may record edits of their own (the GUI merges a segmentation into
        the label map): those join this step, so one model run is one undo step.
        """
        def add() -> None:
            self.results.append(result)
            self.results_changed.emit()

        def remove() -> None:
            if result in self.results:
                self.results.remove(result)
            self.results_changed.emit()

        name = name or f"Add {type(result).__name__}"
        with self.undo.group(name, automatic=True):  # a model's work, not a hand edit
            add()
            self.undo.push(CallbackStep(name, remove, add, size=int(getattr(result, "nbytes", 0))))

    def remove_result(self, result: Any) -> None:
        """Remove a result as one undoable step."""
        if result not in self.results:
            return
        index = self.results.index(result)

        def remove() -> None:
            self.results.remove(result)
            self.results_changed.emit()

        def restore() -> None:
            self.results.insert(min(index, len(self.results)), result)
            self.results_changed.emit()

        remove()
        self.undo.push(CallbackStep(f"Remove {type(result).__name__}", restore, remove))
