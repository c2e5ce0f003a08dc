"""Measurement annotations of a document: rulers (issue 15 item 2), Qt-free, undoable, saved in the session.

A :class:`Ruler` is two end points on one slice in image coordinates (``x`` column, ``y`` row, continuous:
pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``); its length in mm uses the image's pixel spacing. The
document's :class:`AnnotationStore` (:func:`annotations_of`) holds them; every add / move / remove is one step on
the document's undo stack, and ``changed()`` tells the views.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from psygnal import Signal

from .errors import WorkbenchError
from .undo import CallbackStep


@dataclass(frozen=True)
class Ruler:
    """A straight-line distance on slice ``z`` from ``p0`` to ``p1`` (image ``(x, y)``)."""

    id: int
    z: int
    p0: tuple[float, float]
    p1: tuple[float, float]

    def length_px(self) -> float:
        return math.hypot(self.p1[0] - self.p0[0], self.p1[1] - self.p0[1])

    def length_mm(self, spacing: tuple[float, float, float]) -> float:
        """Length in mm for a ``(dz, dy, dx)`` spacing (anisotropic pixels are honoured)."""
        _dz, dy, dx = spacing
        return math.hypot((self.p1[0] - self.p0[0]) * dx, (self.p1[1] - self.p0[1]) * dy)

    def to_json(self) -> dict[str, Any]:
        return {"type": "ruler", "id": self.id, "z": self.z, "p0": list(self.p0), "p1": list(self.p1)}

    @classmethod
    def from_json(cls, entry: Any) -> "Ruler":
        """A ruler from its session entry; ``ValueError`` when the entry is malformed."""
        try:
            p0 = (float(entry["p0"][0]), float(entry["p0"][1]))
            p1 = (float(entry["p1"][0]), float(entry["p1"][1]))
            ruler = cls(int(entry["id"]), int(entry["z"]), p0, p1)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ValueError(f"bad ruler entry {entry!r}") from exc
        if not all(math.isfinite(v) for v in p0 + p1):
            raise ValueError(f"bad ruler entry {entry!r}")
        return ruler


class AnnotationStore:
    """The rulers of one document.

    Events (psygnal): ``changed()`` — a ruler was added, moved or removed (also by undo/redo), or all were
    replaced (:meth:`load`, a new image).
    """

    changed = Signal()

    def __init__(self, undo: Any) -> None:
        self.undo = undo
        self.rulers: list[Ruler] = []

    def _next_id(self) -> int:
        return max((r.id for r in self.rulers), default=0) + 1

    def get(self, ruler_id: int) -> Ruler | None:
        return next((r for r in self.rulers if r.id == ruler_id), None)

    def on_slice(self, z: int) -> list[Ruler]:
        return [r for r in self.rulers if r.z == z]

    def _put(self, old: Ruler | None, new: Ruler | None) -> None:
        """Replace ``old`` by ``new`` (either may be ``None``: add / remove) in place."""
        index = next((i for i, r in enumerate(self.rulers) if old is not None and r.id == old.id), None)
        if index is None and new is not None:
            self.rulers.append(new)
        elif index is not None and new is None:
            del self.rulers[index]
        elif index is not None and new is not None:
            self.rulers[index] = new
        self.changed.emit()

    def _step(self, name: str, old: Ruler | None, new: Ruler | None) -> None:
        self._put(old, new)
        self.undo.push(CallbackStep(name, lambda: self._put(new, old), lambda: self._put(old, new)))

    def add(self, z: int, p0: tuple[float, float], p1: tuple[float, float]) -> Ruler:
        """Add a ruler as one undo step; returns it."""
        ruler = Ruler(self._next_id(), int(z), (float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1])))
        self._step(f"Add ruler {ruler.id}", None, ruler)
        return ruler

    def move(self, ruler_id: int, *, p0: tuple[float, float] | None = None,
             p1: tuple[float, float] | None = None) -> Ruler:
        """Move one or both end points (a handle drag) as one undo step; returns the moved ruler."""
        old = self.get(ruler_id)
        if old is None:
            raise WorkbenchError(f"no ruler {ruler_id}")
        new = replace(old, p0=tuple(map(float, p0)) if p0 is not None else old.p0,  # type: ignore[arg-type]
                      p1=tuple(map(float, p1)) if p1 is not None else old.p1)  # type: ignore[arg-type]
        if new != old:
            self._step(f"Move ruler {ruler_id}", old, new)
        return new

    def remove(self, ruler_id: int) -> None:
        """Remove a ruler as one undo step."""
        old = self.get(ruler_id)
        if old is not None:
            self._step(f"Remove ruler {ruler_id}", old, None)

    def load(self, rulers: list[Ruler]) -> None:
        """Replace every ruler (a session restored, a new image): not an undo step."""
        self.rulers = list(rulers)
        self.changed.emit()

    def clear(self) -> None:
        self.load([])

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.rulers]


def annotations_of(document: Any) -> AnnotationStore:
    """The annotation store of ``document`` (created on first use; emptied when its image changes)."""
    store = getattr(document, "annotations", None)
    if store is None:
        store = AnnotationStore(document.undo)
        document.annotations = store
        document.image_changed.connect(store.clear)
    return store


__all__ = ["Ruler", "AnnotationStore", "annotations_of"]
