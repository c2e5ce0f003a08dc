"""Blending 3-D tiles into class ids: scores, the per-axis weight plan, and the z slab accumulator.

The blending weights of a tile are the outer product of three 1-D partition-of-unity ramps
(:func:`~workbench.inference.preprocess.blend_weights`). Along each axis a tile's weight is exactly 1 over
its *core* (where no other tile reaches with a non-zero weight), a ramp where it shares voxels with its
neighbour, and 0 past the neighbour's ramp. A voxel inside the core box of a tile (core along all three
axes) gets ``0 + 1.0 * p`` from that tile and ``0 * p`` from every other one: its blended score *is* that
tile's output, bit for bit. So the engine turns core voxels into class ids straight from the tile
(:meth:`Scoring.direct_ids`) and sends only the shell -- the ramps -- through the float accumulator,
weighted by ``(w_z x w_y) x w_x`` as before; zero-weight voxels are skipped. For 64^3 tiles with an
overlap of 8 about a third of the voxels are core and a fifth have weight 0, so the accumulator sees
less than half of each tile; the label map equals the one of the full accumulation exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .decoders import activate, argmax_max
from .preprocess import blend_weights

Range = tuple[int, int]


def _ids_of_mask(mask: np.ndarray, v0: int, v1: int) -> np.ndarray:
    """``v1`` where ``mask`` else ``v0`` as uint16, without ``np.where`` (3x slower on a bool mask)."""
    ids = mask.astype(np.uint16)
    if v1 - v0 != 1:
        ids *= np.uint16((v1 - v0) % 65536)  # uint16 arithmetic wraps: v0 + m (v1 - v0) is exact mod 2^16
    if v0:
        ids += np.uint16(v0)
    return ids


@dataclass
class Scoring:
    """What is blended and how the blended map becomes class ids.

    3-D tiles blend the model's raw outputs (logits), as nnU-Net v2 and MONAI's sliding-window
    inference do; the activation and thresholds apply to the blended map. Argmax and thresholds need no
    activation at all (softmax keeps the order, sigmoid(x) > t <=> x > logit(t)), so no ``exp`` runs
    per voxel, and a two-class softmax blends one channel, ``l1 - l0`` (class 1 <=> ``l1 - l0 > 0``).
    """

    mode: str  # "diff" (2-class softmax), "argmax", "threshold" (1 channel / multi_label), "votes" (NDHW ids)
    values: np.ndarray  # uint16 label value per channel
    threshold: float = 0.0
    softmax_first: bool = False  # multi_label with softmax: probabilities needed before the threshold

    @property
    def identity(self) -> bool:
        return bool(np.array_equal(self.values, np.arange(len(self.values))))

    def channels(self, chw: np.ndarray) -> int:
        """Channels of the accumulator for a tile output ``chw``."""
        return len(self.values) if self.mode == "votes" else 1 if self.mode == "diff" else chw.shape[0]

    def scores(self, chw: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``(K, d, h, w)`` float32 scores to blend, written into ``out``."""
        if self.mode == "votes":
            n = len(self.values)
            np.copyto(out, np.eye(n, dtype=np.float32)[np.clip(chw.astype(np.int64), 0, n - 1)]
                      .transpose(3, 0, 1, 2))
        elif self.mode == "diff":
            np.subtract(chw[1], chw[0], out=out[0], casting="unsafe")
        else:
            np.copyto(out, chw, casting="unsafe")
        return out

    def ids(self, acc: np.ndarray) -> np.ndarray:
        """Blended ``(K, ...)`` scores -> uint16 class ids."""
        if self.mode == "diff":
            return _ids_of_mask(acc[0] > 0, int(self.values[0]), int(self.values[1]))
        if self.mode == "threshold":
            if self.softmax_first:
                acc = activate(acc, "softmax", axis=0)
            best, top = argmax_max(acc)
            ids = self.values[best]
            ids[~(top > self.threshold)] = 0
            return ids
        best, _ = argmax_max(acc)
        return best if self.identity else self.values[best]

    def direct_ids(self, chw: np.ndarray) -> np.ndarray:
        """Class ids of voxels only one tile covers, from its output: equal to :meth:`ids` of its scores.

        ``l1 - l0 > 0`` <=> ``l1 > l0`` for IEEE floats (no underflow to 0, NaN and inf alike), and a
        blended score with weight 1 is the score itself.
        """
        if self.mode == "votes":
            n = len(self.values)
            best = np.clip(chw, 0, n - 1).astype(np.uint16)
            return best if self.identity else self.values[best]
        if self.mode == "diff":
            return _ids_of_mask(np.greater(chw[1], chw[0]), int(self.values[0]), int(self.values[1]))
        if chw.dtype != np.float32:
            chw = chw.astype(np.float32)
        return self.ids(chw)

    def direct_ids_into(self, chw: np.ndarray, out: np.ndarray) -> None:
        """:meth:`direct_ids` written into ``out`` (a view of the label map; no temporary for two classes)."""
        if self.mode != "diff":
            out[...] = self.direct_ids(chw)
            return
        np.greater(chw[1], chw[0], out=out, casting="unsafe")
        v0, v1 = int(self.values[0]), int(self.values[1])
        if v1 - v0 != 1:
            out *= np.uint16((v1 - v0) % 65536)
        if v0:
            out += np.uint16(v0)


# -- the weight plan ------------------------------------------------------------------------------
@dataclass
class AxisTile:
    """One tile along one axis: its weights, the range where they are non-zero, and its core."""

    weight: np.ndarray  # float32, tile length
    nonzero: Range  # [lo, hi) in tile coordinates
    core: Range  # [lo, hi): weight 1 and every other tile's weight 0 (empty: lo == hi)


@dataclass
class AxisPlan:
    """The tiles of one axis, keyed by start, and the global ranges no tile's core covers."""

    tiles: dict[int, AxisTile]
    shared: list[Range]  # global [lo, hi) stretches outside every core: blended through the accumulator
    is_core: np.ndarray  # bool per global position


def _runs(flags: np.ndarray) -> list[Range]:
    """Contiguous ``[lo, hi)`` runs of True in a 1-D bool array."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def axis_plan(starts: list[int], tile: int, overlap: int) -> AxisPlan:
    """Weights, non-zero ranges and cores of the tiles along one axis (see the module notes)."""
    weights = blend_weights(starts, tile, overlap) if len(starts) > 1 else [np.ones(tile, np.float32)]
    length = starts[-1] + tile
    reach = np.zeros(length, np.int32)  # how many tiles have a non-zero weight at each position
    for s, w in zip(starts, weights):
        reach[s:s + tile] += w != 0
    tiles: dict[int, AxisTile] = {}
    is_core = np.zeros(length, bool)
    for s, w in zip(starts, weights):
        nz = np.flatnonzero(w != 0)
        nonzero = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 0)
        core_flags = (w == 1.0) & (reach[s:s + tile] == 1)
        runs = _runs(core_flags)
        core = max(runs, key=lambda r: r[1] - r[0]) if runs else (nonzero[0], nonzero[0])
        tiles[s] = AxisTile(w, nonzero, core)
        is_core[s + core[0]:s + core[1]] = True
    return AxisPlan(tiles, _runs(~is_core), is_core)


def shell_boxes(nz: tuple[Range, Range, Range], core: tuple[Range, Range, Range]
                ) -> list[tuple[Range, Range, Range]]:
    """The non-zero box minus the core box, as at most six disjoint boxes (tile coordinates)."""
    if any(c[0] >= c[1] for c in core):
        return [nz] if all(n[0] < n[1] for n in nz) else []
    (z0, z1), (y0, y1), (x0, x1) = nz
    (cz0, cz1), (cy0, cy1), (cx0, cx1) = core
    boxes = [((z0, cz0), (y0, y1), (x0, x1)), ((cz1, z1), (y0, y1), (x0, x1)),
             ((cz0, cz1), (y0, cy0), (x0, x1)), ((cz0, cz1), (cy1, y1), (x0, x1)),
             ((cz0, cz1), (cy0, cy1), (x0, cx0)), ((cz0, cz1), (cy0, cy1), (cx1, x1))]
    return [b for b in boxes if all(r[0] < r[1] for r in b)]


def _sl(r: Range) -> slice:
    return slice(r[0], r[1])


class SlabBlender:
    """The z slab accumulator of one run: tiles in, finished slices of class ids out (module notes).

    ``labels`` is the ``(D, H, W)`` uint16 label map on the model grid; the accumulator covers
    ``tile_d`` slices of the padded ``H x W`` plane starting at ``base``.
    """

    def __init__(self, plans: tuple[AxisPlan, AxisPlan, AxisPlan], tile: tuple[int, int, int],
                 padded: tuple[int, int, int], labels: np.ndarray):
        self.plans = plans
        self.tile = tile
        self.padded = padded
        self.labels = labels
        self.grid = labels.shape
        self.score: Scoring | None = None
        self.acc: np.ndarray | None = None
        self.base = 0
        self._scratch = np.empty(0, np.float32)
        self._wbuf = np.empty(tile[0] * tile[1] * tile[2], np.float32)

    def _accumulator(self, k: int) -> np.ndarray:
        if self.acc is None:
            self.acc = np.zeros((k, self.tile[0], self.padded[1], self.padded[2]), np.float32)
            self._scratch = np.empty(k * self.tile[0] * self.tile[1] * self.tile[2], np.float32)
        return self.acc

    def add(self, chw: np.ndarray, origin: tuple[int, int, int]) -> None:
        """Blend one tile output (``(C, d, h, w)`` scores or ``(d, h, w)`` ids) at ``origin``."""
        score = self.score
        assert score is not None
        tz, ty, tx = origin
        az, ay, ax = (p.tiles[o] for p, o in zip(self.plans, origin))
        core = (az.core, ay.core, ax.core)
        if all(c[0] < c[1] for c in core):
            # core voxels: class ids straight from the tile (clipped to the unpadded grid)
            gz, gy, gx = (min(c[1], g - o) for c, g, o in zip(core, self.grid, origin))
            if gz > core[0][0] and gy > core[1][0] and gx > core[2][0]:
                box = (slice(core[0][0], gz), slice(core[1][0], gy), slice(core[2][0], gx))
                src = chw[box] if chw.ndim == 3 else chw[(slice(None),) + box]
                score.direct_ids_into(src, self.labels[tz + core[0][0]:tz + gz, ty + core[1][0]:ty + gy,
                                                       tx + core[2][0]:tx + gx])
        k = score.channels(chw)
        for bz, by, bx in shell_boxes((az.nonzero, ay.nonzero, ax.nonzero), core):
            acc = self._accumulator(k)
            shape = (bz[1] - bz[0], by[1] - by[0], bx[1] - bx[0])
            n = shape[0] * shape[1] * shape[2]
            box = (_sl(bz), _sl(by), _sl(bx))
            part = score.scores(chw[box] if chw.ndim == 3 else chw[(slice(None),) + box],
                                out=self._scratch[:k * n].reshape((k,) + shape))
            # the same weight as the full outer product (w_z x w_y) x w_x, built for this box only
            w = self._wbuf[:n].reshape(shape)
            np.multiply(np.multiply.outer(az.weight[_sl(bz)], ay.weight[_sl(by)])[:, :, None],
                        ax.weight[_sl(bx)], out=w)
            part *= w
            z = tz - self.base
            acc[:, z + bz[0]:z + bz[1], ty + by[0]:ty + by[1], tx + bx[0]:tx + bx[1]] += part

    def finish(self, end: int, last: bool) -> None:
        """Slices ``base .. end`` are final (no later tile reaches them): ids of their shell voxels into
        ``labels``, then slide the slab to start at ``end``."""
        gd, gh, gw = self.grid
        base, acc, score = self.base, self.acc, self.score
        keep = min(end, gd) - base
        if keep > 0 and acc is not None and score is not None:
            pz, py, px = self.plans
            for z0, z1 in _runs(~pz.is_core[base:base + keep]):  # slices in no core: the whole plane
                self.labels[base + z0:base + z1] = score.ids(acc[:, z0:z1, :gh, :gw])
            for z0, z1 in _runs(pz.is_core[base:base + keep]):  # core slices: only the (y, x) stretches
                zs = slice(z0, z1)
                for y0, y1 in pz_clip(py.shared, gh):
                    self.labels[base + z0:base + z1, y0:y1] = score.ids(acc[:, zs, y0:y1, :gw])
                for x0, x1 in pz_clip(px.shared, gw):
                    self.labels[base + z0:base + z1, :, x0:x1] = score.ids(acc[:, zs, :gh, x0:x1])
        if not last and acc is not None:
            n_final = end - base
            rest = acc.shape[1] - n_final
            if rest > 0:
                acc[:, :rest] = acc[:, n_final:]  # numpy buffers the overlap
            acc[:, max(rest, 0):] = 0
        self.base = end


def pz_clip(ranges: list[Range], limit: int) -> list[Range]:
    """``ranges`` clipped to ``[0, limit)`` (the padding past the grid has no labels)."""
    return [(a, min(b, limit)) for a, b in ranges if a < limit]
