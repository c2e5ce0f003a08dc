"""Orthogonal views (MPR) of a ``(z, y, x)`` volume: orientations, planes as views, coordinates, the crosshair.

Qt-free: the GUI's three canvases, the tools painting in them and the benchmarks share these functions.

Every orientation is a permutation of the volume's axes into a *view frame* ``(slice, row, column)``:

============  =========  =======  ==========
orientation   slice      rows     columns
============  =========  =======  ==========
axial         z          y        x
coronal       y          z        x
sagittal      x          z        y
============  =========  =======  ==========

A plane is plain numpy basic indexing (``data[i]``, ``data[:, i]``, ``data[:, :, i]``), so it is a view of
the volume, never a copy; :func:`volume_view` is the whole volume in the view frame (``np.transpose``, also
a view). Coordinates in a view frame are voxel indices, so mapping a view pixel to a voxel is the inverse
permutation and nothing is resampled: the physical aspect (one view pixel is ``row_mm`` by ``col_mm``) is
left to the display (:func:`pixel_aspect`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from psygnal import Signal

from .image import ImageVolume


@dataclass(frozen=True)
class Orientation:
    """One orthogonal view: its name and the volume axes shown as ``(slice, rows, columns)``.

    Attributes
    ----------
    name : str
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    perm : tuple of int
        Volume axes (0 = z, 1 = y, 2 = x) of the view frame's slice, row and column axes.
    """

    name: str
    perm: tuple[int, int, int]

    @property
    def axis(self) -> int:
        """The volume axis the slice index runs along."""
        return self.perm[0]

    @property
    def inverse(self) -> tuple[int, int, int]:
        """The permutation taking a view-frame array back to ``(z, y, x)``."""
        return tuple(int(i) for i in np.argsort(self.perm))  # type: ignore[return-value]

    @property
    def title(self) -> str:
        return self.name.capitalize()


AXIAL = Orientation("axial", (0, 1, 2))
CORONAL = Orientation("coronal", (1, 0, 2))
SAGITTAL = Orientation("sagittal", (2, 0, 1))
ORIENTATIONS: tuple[Orientation, ...] = (AXIAL, CORONAL, SAGITTAL)


def orientation(name: str) -> Orientation:
    """The orientation called ``name`` (``axial|coronal|sagittal``)."""
    for o in ORIENTATIONS:
        if o.name == name:
            return o
    raise ValueError(f"orientation must be one of axial|coronal|sagittal, got {name!r}")


# -- arrays -------------------------------------------------------------------------------------------
def volume_view(data: np.ndarray, o: Orientation) -> np.ndarray:
    """``data`` (``(z, y, x)`` or ``(z, y, x, c)``) in the view frame ``(slice, row, col[, c])``; a view."""
    return np.transpose(data, o.perm + tuple(range(3, data.ndim)))


def plane(data: np.ndarray, o: Orientation, index: int) -> np.ndarray:
    """Slice ``index`` of ``data`` in orientation ``o`` as ``(rows, cols[, c])``; a view, never a copy.

    Raises
    ------
    IndexError
        When ``index`` is outside ``0 .. n - 1`` along the orientation's axis.
    """
    n = data.shape[o.axis]
    if not 0 <= index < n:
        raise IndexError(f"{o.name} slice {index} out of range 0..{n - 1}")
    if o.axis == 0:
        return data[index]
    if o.axis == 1:
        return data[:, index]
    return data[:, :, index]


class PlaneReader:
    """Planes of one volume in one orientation, as the views ask for them while scrolling.

    Axial and coronal planes are contiguous rows (``plane`` is already fast). A sagittal plane takes one
    value from every row of the volume: a strided gather touching one cache line per voxel, ~60x the cost
    of an axial plane (tests/bench/test_bench_mpr.py). Consecutive sagittal planes share those cache lines,
    so when a request is one slice away from the previous one the reader copies a slab of ``slab``
    consecutive planes in one pass (a few MB, never the volume) and serves the next planes from it; a jump
    reads its plane directly and keeps it, so a redraw of the same plane (a window/level drag) is free.

    The volume must not change while the reader is used (images are not edited in place; labels are read
    with :func:`plane`, never through a reader).
    """

    def __init__(self, data: np.ndarray, o: Orientation, *, slab: int = 16) -> None:
        self.data = data
        self.orientation = o
        self.slab_size = max(int(slab), 1)
        self._slab: np.ndarray | None = None
        self._slab_start = 0
        self._last: int | None = None
        self._kept: tuple[int, np.ndarray] | None = None  # the last plane read directly (contiguous)

    def plane(self, index: int) -> np.ndarray:
        """Plane ``index`` as :func:`plane` returns it (same values; a view of the volume or of the slab)."""
        o, data = self.orientation, self.data
        last, self._last = self._last, int(index)
        if o.axis != 2:
            return plane(data, o, index)
        n = data.shape[2]
        if not 0 <= index < n:
            raise IndexError(f"{o.name} slice {index} out of range 0..{n - 1}")
        start = self._slab_start
        if self._slab is not None and start <= index < start + self._slab.shape[2]:
            return self._slab[:, :, index - start]
        if self._kept is not None and self._kept[0] == index:
            return self._kept[1]
        if last is None or abs(index - last) != 1:
            self._kept = (int(index), np.ascontiguousarray(data[:, :, index]))
            return self._kept[1]
        # scrolling: the slab runs ahead in the direction of travel
        start = index if index > last else index - self.slab_size + 1
        start = min(max(start, 0), max(n - self.slab_size, 0))
        self._slab = np.ascontiguousarray(data[:, :, start:start + self.slab_size])
        self._slab_start = start
        return self._slab[:, :, index - start]


def view_shape(shape: Sequence[int], o: Orientation) -> tuple[int, int, int]:
    """``(n_slices, rows, cols)`` of a ``(z, y, x)`` shape in orientation ``o``."""
    return tuple(int(shape[a]) for a in o.perm)  # type: ignore[return-value]


def view_spacing(spacing: Sequence[float], o: Orientation) -> tuple[float, float, float]:
    """``(slice, row, col)`` voxel size in mm of a ``(z, y, x)`` spacing in orientation ``o``."""
    return tuple(float(spacing[a]) for a in o.perm)  # type: ignore[return-value]


def pixel_aspect(spacing: Sequence[float], o: Orientation) -> float:
    """Height over width of one view pixel in mm (``row_mm / col_mm``): 1.0 for square pixels."""
    _, row_mm, col_mm = view_spacing(spacing, o)
    if row_mm <= 0 or col_mm <= 0:
        return 1.0
    return row_mm / col_mm


# -- coordinates ----------------------------------------------------------------------------------------
def to_voxel(o: Orientation, s: Any, r: Any, c: Any) -> tuple:
    """View-frame ``(slice, row, col)`` -> voxel ``(z, y, x)``; floats and arrays pass through unchanged."""
    view = (s, r, c)
    return tuple(view[o.inverse[a]] for a in range(3))


def to_view(o: Orientation, z: Any, y: Any, x: Any) -> tuple:
    """Voxel ``(z, y, x)`` -> view-frame ``(slice, row, col)`` of orientation ``o``."""
    voxel = (z, y, x)
    return tuple(voxel[a] for a in o.perm)


def box_to_volume(o: Orientation, box: Sequence[slice]) -> tuple[slice, slice, slice]:
    """A view-frame ``(slice, row, col)`` box of slices -> the same voxels as a ``(z, y, x)`` box."""
    return tuple(box[o.inverse[a]] for a in range(3))  # type: ignore[return-value]


def box_to_view(o: Orientation, box: Sequence[slice]) -> tuple[slice, slice, slice]:
    """A ``(z, y, x)`` box of slices -> the view frame of ``o`` (extra trailing entries are dropped)."""
    return tuple(box[a] for a in o.perm)  # type: ignore[return-value]


def mask_to_volume(o: Orientation, mask: np.ndarray) -> np.ndarray:
    """A view-frame ``(slice, row, col)`` array -> ``(z, y, x)`` axis order (a transposed view, no copy)."""
    return np.transpose(mask, o.inverse + tuple(range(3, mask.ndim)))


def oriented_image(image: ImageVolume, o: Orientation) -> ImageVolume:
    """``image`` seen in the view frame of ``o``: data is a transposed *view* (no copy), spacing and origin
    are permuted, modality/window/metadata are shared. Axial returns ``image`` itself.

    Tools that work on ``(z, y, x)`` arrays (brush strokes, polygons, gates) run unchanged on it; their
    boxes map back with :func:`box_to_volume` / :func:`mask_to_volume`.
    """
    if o.axis == 0:
        return image
    return ImageVolume(
        data=volume_view(image.data, o), spacing=view_spacing(image.spacing, o),
        origin=tuple(float(image.origin[a]) for a in o.perm),  # type: ignore[arg-type]
        window=image.window, modality=image.modality, invert_display=image.invert_display,
        spacing_known=image.spacing_known, path=image.path, metadata=image.metadata)


def superior_up(image: ImageVolume | None) -> bool:
    """Whether coronal/sagittal views show the last slice at the top.

    The DICOM reader sorts slices along the slice normal (+z of LPS: feet to head for axial series) and the
    NIfTI reader keeps RAS's +z, so with known geometry the highest index is the most superior and goes up,
    as radiologists read these views. A plain image stack (no spacing) keeps slice 0 at the top.
    """
    return bool(image is not None and image.spacing_known)


# -- the crosshair ------------------------------------------------------------------------------------------
class Crosshair:
    """The shared cursor of the orthogonal views: one voxel ``(z, y, x)`` of the open volume.

    Each view shows the plane through it along its own axis and draws the other two planes as lines; moving
    it in one view (a click, Ctrl + wheel) moves the slices of the others.

    Events (psygnal): ``moved(position)`` with the new ``(z, y, x)``, only when the position changed.
    """

    moved = Signal(tuple)

    def __init__(self, shape: Sequence[int] = (1, 1, 1)) -> None:
        self.shape: tuple[int, int, int] = (1, 1, 1)
        self.position: tuple[int, int, int] = (0, 0, 0)
        self.reset(shape)

    def reset(self, shape: Sequence[int], position: Sequence[int] | None = None) -> None:
        """A new volume of ``shape`` (``(z, y, x)``, extra axes ignored): centre it (or at ``position``)."""
        self.shape = tuple(max(int(n), 1) for n in shape[:3])  # type: ignore[assignment]
        if position is None:
            position = tuple(n // 2 for n in self.shape)
        self.set_position(*position)

    def _clamp(self, axis: int, value: float) -> int:
        return int(min(max(int(np.floor(value)), 0), self.shape[axis] - 1))

    def set_position(self, z: float, y: float, x: float) -> None:
        """Move to voxel ``(z, y, x)`` (floats are floored, values clamped into the volume)."""
        new = (self._clamp(0, z), self._clamp(1, y), self._clamp(2, x))
        if new != self.position:
            self.position = new
            self.moved.emit(new)

    def set_axis(self, axis: int, index: float) -> None:
        """Change one coordinate (0 = z, 1 = y, 2 = x), e.g. the slice of one view."""
        pos = list(self.position)
        pos[axis] = index  # type: ignore[call-overload]
        self.set_position(*pos)

    def slice_index(self, o: Orientation) -> int:
        """The slice orientation ``o`` shows."""
        return self.position[o.axis]

    def view_point(self, o: Orientation) -> tuple[int, int]:
        """``(row, col)`` of the crosshair in orientation ``o``'s plane."""
        _, r, c = to_view(o, *self.position)
        return int(r), int(c)

    def set_from_view(self, o: Orientation, s: float, r: float, c: float) -> None:
        """Move to the voxel under view-frame ``(slice, row, col)`` of orientation ``o``."""
        self.set_position(*to_voxel(o, s, r, c))
