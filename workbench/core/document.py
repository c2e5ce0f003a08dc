"""Document: what is open — one image, its label map, the model results, and the undo history."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from psygnal import Signal

from .edits import merge_segmentation
from .errors import ProcessingError
from .image import ImageVolume
from .labels import Label, LabelMap
from .results import Result, SegmentationResult
from .undo import CallbackStep, UndoStack


class Document:
    """The open image with everything derived from it.

    Events (psygnal signals: Qt-free, listeners' bound methods held by weak reference):

    - ``image_changed()`` — a new image was set (label map and results were reset);
    - ``labels.data_changed(bbox)`` / ``labels.labels_changed()`` — forwarded from the label map;
    - ``results_changed()`` — a model result was added or removed (undoably), or results were restored;
    - ``result_added(result)`` — :meth:`add_result` added a new result (not emitted by its redo);
    - ``undo.changed()`` — the history changed.

    ``segmentation_policy`` (``None``, ``"merge"`` or ``"replace"``): when set, :meth:`add_result` writes a
    segmentation result into the label map with that policy, in the same undo step (the GUI sets
    ``"merge"``: model results never overwrite manual edits; ``None`` keeps results apart from the labels).
    """

    image_changed = Signal()
    results_changed = Signal()
    result_added = Signal(object)

    def __init__(self, image: ImageVolume | None = None, *, undo_max_bytes: int = 512 * 1024 * 1024) -> None:
        self.undo = UndoStack(max_bytes=undo_max_bytes)
        self.image: ImageVolume | None = None
        self.labels: LabelMap | None = None
        self.results: list[Result] = []
        self.segmentation_policy: str | None = None
        if image is not None:
            self.set_image(image)

    def set_image(self, image: ImageVolume) -> None:
        """Make ``image`` the open image: a fresh, empty label map, no results, empty history.

        Views bound to the old label map re-bind on ``image_changed`` (and disconnect from the old one).
        """
        self.image = image
        self.labels = LabelMap((image.n_slices, image.height, image.width), undo=self.undo)
        self.results = []
        self.undo.clear()
        self.image_changed.emit()

    def restore(self, image: ImageVolume, *, label_data: np.ndarray | None, label_table: Sequence[Label],
                results: Sequence[Result]) -> None:
        """Show a saved state (a session): image, label map, label table and results; empty history.

        The results are not merged into the labels again (the saved label map holds what was merged).
        """
        self.set_image(image)
        assert self.labels is not None
        self.labels.load(label_data, list(label_table))
        self.results = list(results)
        self.results_changed.emit()

    @property
    def is_empty(self) -> bool:
        return self.image is None

    def add_result(self, result: Result, name: str | None = None) -> None:
        """Append a model result as one undoable step.

        Raises :class:`~workbench.core.errors.ProcessingError` (after adding the result) when a segmentation
        could not be written into the label map.

        A segmentation is written into the label map with :attr:`segmentation_policy` (if set) in the same
        step, and so are edits that handlers of ``results_changed`` / ``result_added`` record: one model run
        is one undo step.
        """
        def add() -> None:
            self.results.append(result)
            self.results_changed.emit()

        def remove() -> None:
            if result in self.results:
                self.results.remove(result)
            self.results_changed.emit()

        name = name or f"Add {type(result).__name__}"
        error: ProcessingError | None = None
        with self.undo.group(name, automatic=True):  # a model's work, not a hand edit
            add()
            self.undo.push(CallbackStep(name, remove, add, size=int(getattr(result, "nbytes", 0))))
            if isinstance(result, SegmentationResult) and self.segmentation_policy is not None:
                try:
                    self.apply_segmentation(result, self.segmentation_policy)
                except ProcessingError as exc:
                    error = exc  # the result is kept (and undoable); its mask could not be written
            self.result_added.emit(result)
        if error is not None:
            raise error

    def apply_segmentation(self, result: SegmentationResult, policy: str) -> None:
        """Write a segmentation result into the label map as one undo step (see
        :func:`~workbench.core.edits.merge_segmentation` for the policies).

        Raises
        ------
        ProcessingError
            The result's mask does not have the image's shape (the message names the plugin).
        """
        if self.labels is None:
            return
        try:
            merge_segmentation(self.labels, result.mask, result.classes, policy=policy,
                               name=f"{result.info.plugin_name} segmentation ({policy})")
        except ProcessingError as exc:
            raise ProcessingError(f"segmentation of {result.info.plugin_id}: {exc}") from None

    def remove_result(self, result: Result) -> None:
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
