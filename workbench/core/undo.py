"""Undo/redo as steps made of diff atoms.

A diff atom stores a bounding box, the positions that changed inside it (a packed bit mask) and the old
and new values of those positions only. Memory therefore grows with the number of pixels an operation
changed, never with the image size times the number of steps. One user operation (a brush drag, a
threshold, a region grow, a model run) is one :class:`UndoStep`.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

import numpy as np
from psygnal import Signal


class UndoStep(Protocol):
    """Anything that can be undone and redone.

    ``automatic``: the step records what a program did for the user (a model run and the merge of its
    mask), not an edit by hand -- the GUI asks before replacing unsaved hand edits only.
    """

    name: str
    automatic: bool

    def undo(self) -> None: ...

    def redo(self) -> None: ...

    @property
    def nbytes(self) -> int: ...


@dataclass(eq=False)
class DiffAtom:
    """The changed pixels of one box of an array: positions (packed bits), old and new values."""

    bbox: tuple[slice, ...]
    box_shape: tuple[int, ...]
    changed_bits: np.ndarray  # np.packbits of the boolean "changed" mask of the box
    old: np.ndarray  # values at the changed positions, before
    new: np.ndarray  # values at the changed positions, after

    @classmethod
    def from_arrays(cls, bbox: tuple[slice, ...], before: np.ndarray, after: np.ndarray) -> "DiffAtom | None":
        """Diff two same-shaped boxes; ``None`` when nothing changed."""
        changed = before != after
        if not changed.any():
            return None
        return cls(
            bbox=bbox,
            box_shape=before.shape,
            changed_bits=np.packbits(changed.reshape(-1)),
            old=before[changed],
            new=after[changed],
        )

    def _mask(self) -> np.ndarray:
        n = int(np.prod(self.box_shape))
        return np.unpackbits(self.changed_bits, count=n).astype(bool).reshape(self.box_shape)

    def write(self, array: np.ndarray, which: str) -> None:
        """Write the ``"old"`` or ``"new"`` values back into ``array``."""
        box = array[self.bbox]
        box[self._mask()] = self.old if which == "old" else self.new

    @property
    def nbytes(self) -> int:
        return self.changed_bits.nbytes + self.old.nbytes + self.new.nbytes


@dataclass(eq=False)
class ArrayDiffStep:
    """An undo step over one array made of diff atoms; ``on_change(bbox)`` is called after each write."""

    name: str
    array: np.ndarray
    atoms: list[DiffAtom]
    on_change: Callable[[tuple[slice, ...]], None] | None = None
    automatic: bool = False

    def _apply(self, which: str) -> None:
        for atom in self.atoms if which == "new" else reversed(self.atoms):
            atom.write(self.array, which)
            if self.on_change is not None:
                self.on_change(atom.bbox)

    def undo(self) -> None:
        self._apply("old")

    def redo(self) -> None:
        self._apply("new")

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.atoms)

    @property
    def changed_pixels(self) -> int:
        return sum(int(a.old.size) for a in self.atoms)


@dataclass(eq=False)
class CallbackStep:
    """An undo step of two callables (adding/removing a result, renaming a label...)."""

    name: str
    undo_fn: Callable[[], None]
    redo_fn: Callable[[], None]
    size: int = 0
    automatic: bool = False

    def undo(self) -> None:
        self.undo_fn()

    def redo(self) -> None:
        self.redo_fn()

    @property
    def nbytes(self) -> int:
        return self.size


@dataclass(eq=False)
class CompoundStep:
    """Several steps undone and redone as one (see :meth:`UndoStack.group`)."""

    name: str
    steps: list
    automatic: bool = False

    def undo(self) -> None:
        for step in reversed(self.steps):
            step.undo()

    def redo(self) -> None:
        for step in self.steps:
            step.redo()

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.steps)


class UndoStack:
    """Linear undo history with a memory budget and a clean point.

    ``max_bytes`` bounds the memory of the history: the oldest steps are dropped first (never the
    newest one). ``changed`` is emitted after every push/undo/redo/clear.

    The *clean point* is the position of the saved state (:meth:`mark_clean`; an empty history is clean):
    :attr:`is_clean` is "no unsaved changes" - undoing back to the saved state is clean again - and
    :attr:`has_hand_edits` tells whether the steps between the saved and the current state include an edit
    by hand (not ``automatic``). When the saved state can no longer be reached (undo below it, then a new
    edit), the steps that separate it are remembered, so both answers stay right.
    """

    changed = Signal()

    def __init__(self, max_bytes: int = 512 * 1024 * 1024) -> None:
        self._done: list[UndoStep] = []
        self._undone: list[UndoStep] = []
        self._group: list[UndoStep] | None = None
        self.last_step: UndoStep | None = None  # the step of the latest push/undo/redo (None after clear)
        self.max_bytes = max_bytes
        self._clean: int | None = 0  # len(_done) of the saved state; None: no longer reachable
        self._diverge = 0  # when unreachable: the position where the history left the saved state ...
        self._lost: list[UndoStep] = []  # ... and the saved state's steps beyond it, dropped since
        self._holds = 0

    @contextmanager
    def group(self, name: str, *, automatic: bool = False) -> Iterator[None]:
        """Make every step pushed inside the block one undo step named ``name``.

        ``automatic`` marks the step as done by a program (a model run), not by hand.

        Used where one user action causes several recorded changes, e.g. a model run that adds a result
        and writes its mask into the label map. Nested groups join the outermost one. Steps pushed before an
        exception are still recorded (they were applied), as one step.
        """
        if self._group is not None:
            yield
            return
        self._group = []
        try:
            yield
        finally:
            steps, self._group = self._group, None
            if len(steps) == 1:
                steps[0].name = name
                steps[0].automatic = automatic
                self.push(steps[0])
            elif steps:
                self.push(CompoundStep(name, steps, automatic=automatic))

    def push(self, step: UndoStep) -> None:
        """Record an already-applied step; clears the redo history."""
        if self._group is not None:
            self._group.append(step)
            return
        n = len(self._done)
        ahead = self._clean - n if self._clean is not None else self._diverge - n
        if ahead > 0:  # the saved state was on the redo branch this push drops
            self._lost += self._undone[len(self._undone) - ahead:]
            self._clean, self._diverge = None, n
        self._done.append(step)
        self._undone.clear()
        self.last_step = step
        while len(self._done) > 1 and self.nbytes > self.max_bytes:
            dropped = self._done.pop(0)
            if self._clean is not None and self._clean > 0:
                self._clean -= 1
            elif self._clean is not None:  # the saved state was before the dropped step
                self._clean, self._diverge, self._lost = None, 0, [dropped]
            elif self._diverge > 0:
                self._diverge -= 1
            else:
                self._lost.append(dropped)
        self.changed.emit()

    @contextmanager
    def held(self) -> Iterator[None]:
        """No undo/redo inside the block (``can_undo``/``can_redo`` are False, ``changed`` tells the views).

        An edit held open across several events (a brush drag) needs it: an undo in the middle would be
        absorbed into the drag's diff.
        """
        self._holds += 1
        self.changed.emit()
        try:
            yield
        finally:
            self._holds -= 1
            self.changed.emit()

    def undo(self) -> str | None:
        """Undo the newest step; returns its name, or ``None`` when there is nothing to undo (or held)."""
        if not self._done or self._holds:
            return None
        step = self._done.pop()
        step.undo()
        self._undone.append(step)
        self.last_step = step
        self.changed.emit()
        return step.name

    def redo(self) -> str | None:
        """Redo the newest undone step; returns its name, or ``None``."""
        if not self._undone or self._holds:
            return None
        step = self._undone.pop()
        step.redo()
        self._done.append(step)
        self.last_step = step
        self.changed.emit()
        return step.name

    def clear(self) -> None:
        """Forget the history; the empty history is the clean (saved or just opened) state."""
        self._done.clear()
        self._undone.clear()
        self.last_step = None
        self._clean, self._diverge, self._lost = 0, 0, []
        self.changed.emit()

    # -- clean point ----------------------------------------------------------------------------------
    def savepoint(self) -> tuple[int, UndoStep | None]:
        """A token of the current state, for :meth:`mark_clean` once a save of this state has finished."""
        return len(self._done), (self._done[-1] if self._done else None)

    def mark_clean(self, savepoint: tuple[int, UndoStep | None] | None = None) -> None:
        """Make the current state (or the state of ``savepoint``) the saved one.

        A savepoint whose state was left by new edits in the meantime (undo, then edit) leaves the history
        unsaved, as it is.
        """
        if savepoint is None:
            savepoint = self.savepoint()
        position, top = savepoint
        line = self._done + self._undone[::-1]  # the history as a line: done, then what redo would do
        if position == 0 or (position <= len(line) and line[position - 1] is top):
            self._clean, self._diverge, self._lost = position, 0, []
        else:
            self._clean, self._diverge, self._lost = None, 0, []

    @property
    def is_clean(self) -> bool:
        """True when the current state is the saved one (no unsaved changes)."""
        return self._clean == len(self._done)

    def unsaved_steps(self) -> list[UndoStep]:
        """The steps that separate the current state from the saved one."""
        n = len(self._done)
        if self._clean is not None:
            c = self._clean
            return self._done[c:] if n >= c else self._undone[len(self._undone) - (c - n):]
        d = self._diverge
        shared = self._done[d:] if n >= d else self._undone[len(self._undone) - (d - n):]
        return self._lost + shared if self._lost or shared else list(self._done)

    @property
    def has_hand_edits(self) -> bool:
        """True when an unsaved step is an edit by hand (not a model's ``automatic`` work)."""
        return any(not getattr(step, "automatic", False) for step in self.unsaved_steps())

    @property
    def can_undo(self) -> bool:
        return bool(self._done) and not self._holds

    @property
    def can_redo(self) -> bool:
        return bool(self._undone) and not self._holds

    @property
    def undo_name(self) -> str | None:
        return self._done[-1].name if self._done else None

    @property
    def redo_name(self) -> str | None:
        return self._undone[-1].name if self._undone else None

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._done) + sum(s.nbytes for s in self._undone)

    def __len__(self) -> int:
        return len(self._done)


@dataclass(eq=False)
class TileRecorder:
    """Remembers the original content of every tile an operation touches, then diffs at the end.

    A brush drag writes hundreds of overlapping dabs; saving each dab's box would store the same pixels
    many times. Saving each touched tile once and diffing at commit stores every changed pixel once.
    """

    array: np.ndarray
    tile: int = 128
    originals: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict)

    def _tile_box(self, key: tuple[int, ...]) -> tuple[slice, ...]:
        z, ty, tx = key
        h, w = self.array.shape[1], self.array.shape[2]
        return (
            slice(z, z + 1),
            slice(ty * self.tile, min((ty + 1) * self.tile, h)),
            slice(tx * self.tile, min((tx + 1) * self.tile, w)),
        )

    def touch(self, bbox: tuple[slice, ...]) -> None:
        """Save the originals of the tiles ``bbox`` (z, y, x slices with explicit bounds) overlaps."""
        zs, ys, xs = bbox
        t = self.tile
        for z in range(zs.start, zs.stop):
            for ty in range(ys.start // t, (ys.stop - 1) // t + 1):
                for tx in range(xs.start // t, (xs.stop - 1) // t + 1):
                    key = (z, ty, tx)
                    if key not in self.originals:
                        self.originals[key] = self.array[self._tile_box(key)].copy()

    def atoms(self) -> list[DiffAtom]:
        """Diff atoms of every touched tile that actually changed."""
        out = []
        for key, before in self.originals.items():
            box = self._tile_box(key)
            atom = DiffAtom.from_arrays(box, before, self.array[box])
            if atom is not None:
                out.append(atom)
        return out
