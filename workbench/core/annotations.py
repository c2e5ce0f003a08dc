"""Measurement annotations of a document (issue 15 item 2): one Qt-free model for every tool, undoable, saved in
the session.

Each annotation is a frozen dataclass on one slice ``z`` whose points are image coordinates (``x`` column, ``y``
row, continuous: pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``):

- :class:`Ruler` ``p0 -> p1``: a length in mm (the image's pixel spacing, anisotropic pixels honoured);
- :class:`Angle` ``p0 - p1 - p2`` with the vertex at ``p1``: degrees, in physical space;
- :class:`EllipseRoi` / :class:`RectRoi` inside the box of the corners ``p0``, ``p1``: an area in mm² (the
  intensity statistics of the pixels inside are :func:`workbench.processing.roi.roi_stats`);
- :class:`TextArrow` from the text at ``p1`` to the tip ``p0``: a note (its ``label``).

Every annotation carries a free ``label`` text. The document's :class:`AnnotationStore`
(:func:`annotations_of`) holds them; every add / edit / remove is one step on the document's undo stack (the
one of the label map), and ``changed()`` tells the views. :data:`ANNOTATION_TYPES` maps the session entry's
``type`` to its class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Union

from psygnal import Signal

from .errors import WorkbenchError
from .undo import CallbackStep

Point = tuple[float, float]


def _point(value: Any) -> Point:
    return (float(value[0]), float(value[1]))


class _Shape:
    """Behaviour shared by the annotation classes (fields: ``id``, ``z``, the points of ``POINTS``, ``label``)."""

    kind: ClassVar[str] = ""
    title: ClassVar[str] = ""
    POINTS: ClassVar[tuple[str, ...]] = ("p0", "p1")

    id: int
    z: int
    label: str

    @property
    def points(self) -> tuple[Point, ...]:
        return tuple(getattr(self, name) for name in self.POINTS)

    def handles(self) -> list[Point]:
        """The points a user drags to edit the annotation (screen handles)."""
        return list(self.points)

    def with_handle(self, index: int, point: Point) -> Any:
        """A copy with handle ``index`` moved to ``point``."""
        return replace(self, **{self.POINTS[index]: _point(point)})  # type: ignore[type-var]

    def is_valid(self) -> bool:
        """Big enough to be a measurement (a click is not one)."""
        (x0, y0), (x1, y1) = self.points[0], self.points[1]
        return math.hypot(x1 - x0, y1 - y0) >= 1.0

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": self.kind, "id": self.id, "z": self.z}
        entry.update({name: list(getattr(self, name)) for name in self.POINTS})
        if self.label:
            entry["label"] = self.label
        return entry

    @classmethod
    def from_json(cls, entry: Any) -> Any:
        """An annotation from its session entry; ``ValueError`` when the entry is malformed."""
        try:
            points = {name: _point(entry[name]) for name in cls.POINTS}
            label = entry.get("label", "")
            if not isinstance(label, str):
                raise TypeError("label is not text")
            item = cls(id=int(entry["id"]), z=int(entry["z"]), label=label, **points)  # type: ignore[call-arg]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"bad {cls.kind} entry {entry!r}") from exc
        if not all(math.isfinite(v) for p in points.values() for v in p):
            raise ValueError(f"bad {cls.kind} entry {entry!r}")
        return item


def _scaled(dx: float, dy: float, spacing: tuple[float, float, float] | None) -> tuple[float, float]:
    if spacing is None:
        return dx, dy
    return dx * spacing[2], dy * spacing[1]


@dataclass(frozen=True)
class Ruler(_Shape):
    """A straight-line distance on slice ``z`` from ``p0`` to ``p1``."""

    kind: ClassVar[str] = "ruler"
    title: ClassVar[str] = "Ruler"

    id: int
    z: int
    p0: Point
    p1: Point
    label: str = ""

    def length_px(self) -> float:
        return math.hypot(self.p1[0] - self.p0[0], self.p1[1] - self.p0[1])

    def length_mm(self, spacing: tuple[float, float, float]) -> float:
        """Length in mm for a ``(dz, dy, dx)`` spacing (anisotropic pixels are honoured)."""
        return math.hypot(*_scaled(self.p1[0] - self.p0[0], self.p1[1] - self.p0[1], spacing))


@dataclass(frozen=True)
class Angle(_Shape):
    """The angle ``p0 - p1 - p2`` at the vertex ``p1`` on slice ``z``."""

    kind: ClassVar[str] = "angle"
    title: ClassVar[str] = "Angle"
    POINTS: ClassVar[tuple[str, ...]] = ("p0", "p1", "p2")

    id: int
    z: int
    p0: Point
    p1: Point
    p2: Point
    label: str = ""

    def degrees(self, spacing: tuple[float, float, float] | None = None) -> float | None:
        """The angle in degrees (0..180) in physical space for a ``(dz, dy, dx)`` spacing (``None``: pixels);
        ``None`` when an arm has no length."""
        ux, uy = _scaled(self.p0[0] - self.p1[0], self.p0[1] - self.p1[1], spacing)
        vx, vy = _scaled(self.p2[0] - self.p1[0], self.p2[1] - self.p1[1], spacing)
        if math.hypot(ux, uy) == 0.0 or math.hypot(vx, vy) == 0.0:
            return None
        return math.degrees(math.atan2(abs(ux * vy - uy * vx), ux * vx + uy * vy))

    def is_valid(self) -> bool:
        return all(math.hypot(p[0] - self.p1[0], p[1] - self.p1[1]) >= 1.0 for p in (self.p0, self.p2))


@dataclass(frozen=True)
class _Roi(_Shape):
    """A region inside the box of the opposite corners ``p0`` and ``p1``; four corner handles."""

    id: int
    z: int
    p0: Point
    p1: Point
    label: str = ""

    def box(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` with ``x0 <= x1`` and ``y0 <= y1``."""
        (ax, ay), (bx, by) = self.p0, self.p1
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)

    def handles(self) -> list[Point]:
        (ax, ay), (bx, by) = self.p0, self.p1
        return [(ax, ay), (bx, by), (ax, by), (bx, ay)]

    def with_handle(self, index: int, point: Point) -> Any:
        x, y = _point(point)
        (ax, ay), (bx, by) = self.p0, self.p1
        if index == 0:
            return replace(self, p0=(x, y))
        if index == 1:
            return replace(self, p1=(x, y))
        if index == 2:  # corner (p0.x, p1.y)
            return replace(self, p0=(x, ay), p1=(bx, y))
        return replace(self, p0=(ax, y), p1=(x, by))  # corner (p1.x, p0.y)

    def is_valid(self) -> bool:
        x0, y0, x1, y1 = self.box()
        return x1 - x0 >= 1.0 and y1 - y0 >= 1.0

    def area_px(self) -> float:
        raise NotImplementedError

    def area_mm2(self, spacing: tuple[float, float, float]) -> float:
        """The shape's area in mm² for a ``(dz, dy, dx)`` spacing."""
        return self.area_px() * spacing[1] * spacing[2]


@dataclass(frozen=True)
class EllipseRoi(_Roi):
    """The ellipse inscribed in the box of ``p0`` and ``p1``."""

    kind: ClassVar[str] = "ellipse"
    title: ClassVar[str] = "Ellipse ROI"

    def area_px(self) -> float:
        x0, y0, x1, y1 = self.box()
        return math.pi * (x1 - x0) * (y1 - y0) / 4.0


@dataclass(frozen=True)
class RectRoi(_Roi):
    """The rectangle with the corners ``p0`` and ``p1``."""

    kind: ClassVar[str] = "rectangle"
    title: ClassVar[str] = "Rectangle ROI"

    def area_px(self) -> float:
        x0, y0, x1, y1 = self.box()
        return (x1 - x0) * (y1 - y0)


@dataclass(frozen=True)
class TextArrow(_Shape):
    """A note: an arrow from its text at ``p1`` to the tip ``p0``; the text is the ``label``."""

    kind: ClassVar[str] = "text"
    title: ClassVar[str] = "Text arrow"

    id: int
    z: int
    p0: Point
    p1: Point
    label: str = ""


Annotation = Union[Ruler, Angle, EllipseRoi, RectRoi, TextArrow]

ANNOTATION_TYPES: dict[str, type[_Shape]] = {cls.kind: cls for cls in (Ruler, Angle, EllipseRoi, RectRoi, TextArrow)}


def annotation_from_json(entry: Any) -> Annotation | None:
    """The annotation of a session entry; ``None`` for a type this version does not know (a newer writer's);
    ``ValueError`` for a malformed entry of a known type."""
    kind = entry.get("type") if isinstance(entry, dict) else None
    cls = ANNOTATION_TYPES.get(kind) if isinstance(kind, str) else None
    return cls.from_json(entry) if cls is not None else None


class AnnotationStore:
    """The annotations of one document.

    Events (psygnal): ``changed()`` — an annotation was added, edited or removed (also by undo/redo), or all
    were replaced (:meth:`load`, a new image).
    """

    changed = Signal()

    def __init__(self, undo: Any) -> None:
        self.undo = undo
        self.items: list[Annotation] = []

    @property
    def rulers(self) -> list[Ruler]:
        return [a for a in self.items if isinstance(a, Ruler)]

    def _next_id(self) -> int:
        return max((a.id for a in self.items), default=0) + 1

    def get(self, annotation_id: int) -> Annotation | None:
        return next((a for a in self.items if a.id == annotation_id), None)

    def on_slice(self, z: int) -> list[Annotation]:
        return [a for a in self.items if a.z == z]

    def _put(self, old: Annotation | None, new: Annotation | None) -> None:
        """Replace ``old`` by ``new`` (either may be ``None``: add / remove) in place."""
        index = next((i for i, a in enumerate(self.items) if old is not None and a.id == old.id), None)
        if index is None and new is not None:
            self.items.append(new)
        elif index is not None and new is None:
            del self.items[index]
        elif index is not None and new is not None:
            self.items[index] = new
        self.changed.emit()

    def _step(self, name: str, old: Annotation | None, new: Annotation | None) -> None:
        self._put(old, new)
        self.undo.push(CallbackStep(name, lambda: self._put(new, old), lambda: self._put(old, new)))

    def add(self, z: int, p0: Point, p1: Point) -> Ruler:
        """Add a ruler as one undo step; returns it."""
        return self.add_annotation(Ruler(0, int(z), _point(p0), _point(p1)))  # type: ignore[return-value]

    def add_annotation(self, annotation: Annotation) -> Annotation:
        """Add ``annotation`` (its ``id`` is replaced by a fresh one) as one undo step; returns the added one."""
        added = replace(annotation, id=self._next_id(), z=int(annotation.z))
        self._step(f"Add {added.title.lower()} {added.id}", None, added)
        return added

    def update(self, new: Annotation, name: str | None = None) -> Annotation:
        """Replace the annotation of ``new.id`` by ``new`` (a handle drag, a new label) as one undo step."""
        old = self.get(new.id)
        if old is None:
            raise WorkbenchError(f"no annotation {new.id}")
        if type(new) is not type(old):
            raise WorkbenchError(f"annotation {new.id} is a {old.kind}, not a {new.kind}")
        if new != old:
            self._step(name or f"Edit {old.title.lower()} {old.id}", old, new)
        return new

    def move(self, annotation_id: int, **points: Point | None) -> Annotation:
        """Move points of an annotation (``p0=``, ``p1=``, ``p2=``) as one undo step; returns the moved one."""
        old = self.get(annotation_id)
        if old is None:
            raise WorkbenchError(f"no annotation {annotation_id}")
        changes = {k: _point(v) for k, v in points.items() if v is not None}
        unknown = set(changes) - set(old.POINTS)
        if unknown:
            raise WorkbenchError(f"a {old.kind} has no point {', '.join(sorted(unknown))}")
        return self.update(replace(old, **changes), f"Move {old.title.lower()} {old.id}")  # type: ignore[arg-type]

    def set_label(self, annotation_id: int, text: str) -> Annotation:
        """Set the label text of an annotation as one undo step."""
        old = self.get(annotation_id)
        if old is None:
            raise WorkbenchError(f"no annotation {annotation_id}")
        return self.update(replace(old, label=str(text)), f"Label {old.title.lower()} {old.id}")

    def remove(self, annotation_id: int) -> None:
        """Remove an annotation as one undo step."""
        old = self.get(annotation_id)
        if old is not None:
            self._step(f"Remove {old.title.lower()} {annotation_id}", old, None)

    def load(self, items: list[Annotation]) -> None:
        """Replace every annotation (a session restored, a new image): not an undo step."""
        self.items = list(items)
        self.changed.emit()

    def clear(self) -> None:
        self.load([])

    def to_json(self) -> list[dict[str, Any]]:
        return [a.to_json() for a in self.items]


def annotations_of(document: Any) -> AnnotationStore:
    """The annotation store of ``document`` (created on first use; emptied when its image changes)."""
    store = getattr(document, "annotations", None)
    if store is None:
        store = AnnotationStore(document.undo)
        document.annotations = store
        document.image_changed.connect(store.clear)
    return store


__all__ = ["Point", "Annotation", "Ruler", "Angle", "EllipseRoi", "RectRoi", "TextArrow", "ANNOTATION_TYPES",
           "annotation_from_json", "AnnotationStore", "annotations_of"]
