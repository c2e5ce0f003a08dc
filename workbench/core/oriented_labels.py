"""A label map seen in the view frame of a coronal or sagittal view, writing through the real one.

The tools (brush, polygon, click) and the label overlay speak ``(z, y, x)`` with ``z`` = the shown slice.
:class:`OrientedLabels` gives them that interface for any :class:`~workbench.core.mpr.Orientation`: its
``data`` is a transposed view of the label array, its boxes and masks are permuted back to ``(z, y, x)``
before they reach :meth:`LabelMap.edit`, so an edit made in a coronal view is the same tile diff-atom undo
step, the same ``data_changed`` event and the same overwrite rules as one made in the axial view.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
from psygnal import Signal, SignalInstance

from .labels import Label, LabelEdit, LabelMap
from .mpr import Orientation, box_to_view, box_to_volume, mask_to_volume, view_shape, volume_view
from .undo import UndoStack


class OrientedLabels:
    """``labels`` in the view frame ``(slice, row, col)`` of ``orientation``.

    Events (psygnal): ``data_changed(bbox)`` re-emits the label map's event with the box in the view frame;
    ``labels_changed`` *is* the label map's table event.

    Keep a reference while it is bound: the label map holds the relay by weak reference.
    """

    data_changed = Signal(object)

    def __init__(self, labels: LabelMap, orientation: Orientation) -> None:
        self.base = labels
        self.orientation = orientation
        labels.data_changed.connect(self._relay)

    def _relay(self, bbox: tuple[slice, ...]) -> None:
        self.data_changed.emit(box_to_view(self.orientation, bbox))

    def close(self) -> None:
        """Stop relaying the label map's events (the view moved on to another image)."""
        self.base.data_changed.disconnect(self._relay)

    # -- what readers of a LabelMap use -------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The label array in the view frame (a view: writes land in the label map, but use :meth:`edit`)."""
        return volume_view(self.base.data, self.orientation)

    @property
    def shape(self) -> tuple[int, int, int]:
        return view_shape(self.base.shape, self.orientation)

    @property
    def undo(self) -> UndoStack:
        return self.base.undo

    @property
    def labels(self) -> dict[int, Label]:
        return self.base.labels

    @property
    def labels_changed(self) -> SignalInstance:
        return self.base.labels_changed

    def ensure_label(self, value: int, name: str | None = None, color: str | None = None) -> Label:
        return self.base.ensure_label(value, name, color)

    # -- edits ----------------------------------------------------------------------------------------
    @contextmanager
    def edit(self, name: str) -> Iterator["OrientedEdit"]:
        """:meth:`LabelMap.edit` of the label map (one undo step) with a writer taking view-frame boxes."""
        with self.base.edit(name) as e:
            yield OrientedEdit(e, self.orientation)


class OrientedEdit:
    """A :class:`~workbench.core.labels.LabelEdit` taking ``(slice, row, col)`` boxes and masks."""

    def __init__(self, edit: LabelEdit, orientation: Orientation) -> None:
        self._edit = edit
        self._o = orientation

    def _mask(self, array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        if array.ndim < 3:
            # broadcastable lower-rank values (a scalar, a row) are aligned like numpy would, then permuted
            array = array.reshape((1,) * (3 - array.ndim) + array.shape)
        return mask_to_volume(self._o, array)

    def assign(self, bbox: tuple[slice, ...], values: np.ndarray) -> None:
        """Overwrite the view-frame box with ``values`` (broadcastable to the box)."""
        self._edit.assign(box_to_volume(self._o, bbox), self._mask(values))

    def paint(self, bbox: tuple[slice, ...], mask: np.ndarray, value: int, *,
              overwrite: str = "any", selected: int | None = None) -> None:
        """Set ``value`` where ``mask`` is true inside the view-frame box (see :meth:`LabelEdit.paint`)."""
        self._edit.paint(box_to_volume(self._o, bbox), self._mask(np.asarray(mask, dtype=bool)), value,
                         overwrite=overwrite, selected=selected)
