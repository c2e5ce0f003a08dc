"""LabelMap: the editable segmentation of a document, with its label table."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from psygnal import Signal

from .undo import ArrayDiffStep, CallbackStep, TileRecorder, UndoStack

# A qualitative palette (tab10 without grey) for labels that come without a colour.
DEFAULT_COLORS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#aec7e8",
]


def default_color(value: int) -> str:
    """The palette colour of label ``value`` (value 1 gets the first colour)."""
    return DEFAULT_COLORS[(int(value) - 1) % len(DEFAULT_COLORS)]


def color_to_rgb(color: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` -> ``(r, g, b)``."""
    c = color.lstrip("#")
    if len(c) != 6:
        raise ValueError(f"colour {color!r} is not #rrggbb")
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16))


@dataclass
class Label:
    """One entry of the label table."""

    value: int
    name: str
    color: str
    visible: bool = True


class LabelMap:
    """A ``(z, y, x)`` uint16 label array (0 = no label) plus its label table.

    All edits go through :meth:`edit`, which records one undo step per operation on the attached
    :class:`UndoStack` and emits ``data_changed(bbox)`` for every region written, so overlays can repaint
    only the dirty rectangle.

    Events (psygnal): ``data_changed(bbox)`` (a ``(z, y, x)`` slice box was written), ``labels_changed()``
    (the label table changed).
    """

    data_changed = Signal(object)
    labels_changed = Signal()

    def __init__(self, shape: tuple[int, int, int], undo: UndoStack | None = None) -> None:
        if len(shape) != 3:
            raise ValueError(f"LabelMap needs a (z, y, x) shape, got {shape}")
        self.data = np.zeros(shape, dtype=np.uint16)
        self.undo = undo if undo is not None else UndoStack()
        self.labels: dict[int, Label] = {}

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)  # type: ignore[return-value]

    # -- label table ------------------------------------------------------------------------------
    def ensure_label(self, value: int, name: str | None = None, color: str | None = None) -> Label:
        """Return label ``value``, creating it (with a default name/colour) if it does not exist."""
        value = int(value)
        if not 1 <= value <= 65535:
            raise ValueError(f"label value {value} outside 1..65535")
        if value not in self.labels:
            self.labels[value] = Label(value, name or f"label {value}", color or default_color(value))
            self.labels_changed.emit()
        return self.labels[value]

    def set_label(self, value: int, *, name: str | None = None, color: str | None = None,
                  visible: bool | None = None) -> None:
        """Change a label's name, colour or visibility.

        A new name or colour is one undo step ("Rename label 2", "Recolour label 2"), so it counts as an
        unsaved change; visibility is a display toggle and is not recorded.
        """
        label = self.ensure_label(value)
        if color is not None:
            color_to_rgb(color)  # validate
        before = Label(label.value, label.name, label.color, label.visible)
        after = Label(label.value, name if name is not None else label.name,
                      color if color is not None else label.color,
                      bool(visible) if visible is not None else label.visible)
        if (after.name, after.color) != (before.name, before.color):
            what = "Rename" if after.name != before.name else "Recolour"
            self._table_step(f"{what} label {label.value}", {label.value: before}, {label.value: after})
        elif after.visible != before.visible:
            label.visible = after.visible
            self.labels_changed.emit()

    def add_label(self, name: str | None = None, color: str | None = None) -> Label:
        """Add a label with the next free value as one undo step; returns it."""
        value = self.next_free_value()
        label = Label(value, name or f"label {value}", color or default_color(value))
        self._table_step(f"Add label {value}", {value: None}, {value: label})
        return self.labels[value]

    def put_labels(self, entries: list[Label], name: str) -> None:
        """Add (or replace) label table entries as one undo step, e.g. the labels of an imported mask."""
        if not entries:
            return
        before = {lab.value: self.labels.get(lab.value) for lab in entries}
        self._table_step(name, before, {lab.value: lab for lab in entries})

    def remove_label(self, value: int) -> None:
        """Remove label ``value`` from the table and clear its pixels, as one undo step."""
        value = int(value)
        if value not in self.labels:
            return
        with self.undo.group(f"Remove label {value}"):
            with self.edit(f"Clear label {value}") as e:
                for z in range(self.shape[0]):
                    plane = self.data[z] == value
                    if plane.any():
                        e.paint((slice(z, z + 1), slice(0, self.shape[1]), slice(0, self.shape[2])),
                                plane[np.newaxis], 0)
            self._table_step(f"Remove label {value}", {value: self.labels[value]}, {value: None})

    def _table_step(self, name: str, before: dict[int, Label | None], after: dict[int, Label | None]) -> None:
        """Apply a change of table entries (``None``: absent) and record it as one undo step."""
        def put(entries: dict[int, Label | None]) -> None:
            for v, lab in entries.items():
                if lab is None:
                    self.labels.pop(v, None)
                else:
                    self.labels[v] = Label(lab.value, lab.name, lab.color, lab.visible)
            self.labels_changed.emit()

        put(after)
        self.undo.push(CallbackStep(name, lambda: put(before), lambda: put(after)))

    def load(self, data: np.ndarray | None, table: list[Label]) -> None:
        """Replace the label table and (unless ``None``) the label array, e.g. from a saved session.

        Not an undo step: a reopened session starts with an empty history, as after opening an image.
        Values in ``data`` missing from ``table`` get default entries.
        """
        self.labels = {lab.value: Label(lab.value, lab.name, lab.color, lab.visible) for lab in table}
        if data is not None:
            self.data[...] = data
            for value in np.unique(data).tolist():
                if value and value not in self.labels:
                    self.labels[int(value)] = Label(int(value), f"label {value}", default_color(int(value)))
        self.labels_changed.emit()
        self.data_changed.emit(tuple(slice(0, n) for n in self.shape))

    def next_free_value(self) -> int:
        used = set(self.labels) | set(np.unique(self.data).tolist())
        value = 1
        while value in used:
            value += 1
        return value

    # -- edits ------------------------------------------------------------------------------------
    @contextmanager
    def edit(self, name: str) -> Iterator["LabelEdit"]:
        """One undoable operation: ``with labels.edit("Brush") as e: e.paint(...)``.

        Everything written inside the block becomes one undo step (nothing is pushed if nothing changed).
        If the block raises, the writes made so far are rolled back.
        """
        recorder = TileRecorder(self.data)
        edit = LabelEdit(self, recorder)
        try:
            yield edit
        except BaseException:
            step = ArrayDiffStep(name, self.data, recorder.atoms(), self.data_changed.emit)
            step.undo()
            raise
        atoms = recorder.atoms()
        if atoms:
            self.undo.push(ArrayDiffStep(name, self.data, atoms, self.data_changed.emit))

    def replace(self, mask: np.ndarray, name: str) -> None:
        """Replace the whole label map by ``mask`` (same shape) as one undo step."""
        with self.edit(name) as e:
            e.assign((slice(0, self.shape[0]), slice(0, self.shape[1]), slice(0, self.shape[2])), mask)


class LabelEdit:
    """The writer handed out by :meth:`LabelMap.edit`. Boxes are ``(z, y, x)`` slices with bounds."""

    def __init__(self, labels: LabelMap, recorder: TileRecorder) -> None:
        self._labels = labels
        self._recorder = recorder

    def _box(self, bbox: tuple[slice, ...]) -> tuple[slice, slice, slice]:
        shape = self._labels.shape
        out = []
        for s, n in zip(bbox, shape):
            start, stop, _ = s.indices(n)
            out.append(slice(start, max(start, stop)))
        return tuple(out)  # type: ignore[return-value]

    def assign(self, bbox: tuple[slice, ...], values: np.ndarray) -> None:
        """Overwrite the box with ``values`` (broadcastable to the box)."""
        box = self._box(bbox)
        if any(s.stop <= s.start for s in box):
            return
        self._recorder.touch(box)
        self._labels.data[box] = values
        self._labels.data_changed.emit(box)

    def paint(self, bbox: tuple[slice, ...], mask: np.ndarray, value: int, *,
              overwrite: str = "any", selected: int | None = None) -> None:
        """Set ``value`` where ``mask`` is true inside the box.

        ``overwrite``: ``"any"`` paints over every label, ``"background"`` only over 0, ``"selected"``
        only over label ``selected`` (and background). ``value`` 0 erases.
        """
        box = self._box(bbox)
        if any(s.stop <= s.start for s in box):
            return
        mask = np.asarray(mask, dtype=bool)
        current = self._labels.data[box]
        if mask.shape != current.shape:
            mask = np.broadcast_to(mask, current.shape)
        if overwrite == "background":
            mask = mask & (current == 0)
        elif overwrite == "selected":
            mask = mask & ((current == 0) | (current == (selected if selected is not None else value)))
        elif overwrite != "any":
            raise ValueError(f"overwrite must be any|background|selected, got {overwrite!r}")
        if not mask.any():
            return
        if value:
            self._labels.ensure_label(value)
        self._recorder.touch(box)
        current[mask] = value
        self._labels.data_changed.emit(box)
