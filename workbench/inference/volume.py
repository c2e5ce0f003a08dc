"""Volumetric (3-D) models: the volume as one tensor, or overlapping 3-D tiles blended into a label map.

``input.layout: NCDHW | NDHWC`` (wave 2 of the plugin contract). The steps, in order:

1. **Orientation** -- ``input.orientation: display`` (default) gives the model the array as the reader
   displays it (``data[z, y, x]``, radiological: slices inferior -> superior); ``stored`` gives it the
   voxel order of the file (NIfTI: slowest axis k, then j, then i), the order nnU-Net / SimpleITK
   pipelines are usually trained on. Both are views: no copy.
2. **Spacing** -- ``input.spacing: [dz, dy, dx]`` resamples the volume (order 1) to the model's voxel
   size; the label map comes back with nearest-neighbour. ``resize: stretch`` resamples to
   ``input.size`` (or the graph's fixed size) the same way.
3. **Intensity** -- the 2-D chain (:func:`~workbench.inference.preprocess.intensity_map`) with the
   statistics (percentile, standardize) of the whole volume, applied tile by tile.
4. **Tiles** -- ``resize: tile``: ``tile.size [d, h, w]`` with ``tile.overlap`` (one int or three),
   blended with the same partition-of-unity raised-cosine weights as the 2-D tiles
   (:func:`~workbench.inference.preprocess.blend_weights`), several tiles per ``session.run`` when the
   graph's batch dimension is dynamic. What is blended is the model's raw output (logits; see
   :class:`~workbench.inference.volume_blend.Scoring`), as nnU-Net v2 and MONAI do; voxels inside one
   tile's weight-1 core skip the accumulator (:mod:`~workbench.inference.volume_blend`).
   ``resize: none``: the whole volume is one tile, padded (with ``pad_value``) to ``multiple_of`` or the
   graph's fixed size.

Memory: tiles are streamed in z order, and the float accumulator covers only the slab of slices the
current row of tiles touches: once every tile starting at ``z0`` is done, the slices before the next
row's start are final, turned into class ids and dropped. Peak memory of a run is therefore about::

    4 B x K x tile_d x H x W               (accumulator: K = 1 for two-class softmax and one-channel
                                            outputs, else the output channels; H x W in model voxels)
  + 2 B x D x H x W                        (the uint16 label map)
  + 4 B x B x (C + 2 C_out) x tile voxels  (one batch of B tiles in, two out: the pipeline below)
  + 4 B x tile voxels x (K + 1)            (the scores and weights of one tile's blended shell)
  [+ 4 B x D' x H' x W'  (+ 2 B x D' x H' x W')  when resampling: the float volume and label map
   on the model grid]

on top of the image itself.

Pipeline: with more than one batch of tiles, a helper thread blends batch s-1 while ONNX Runtime
(which releases the GIL) runs batch s on the caller's thread. The helper runs its
steps in submission order, so the blend is the same calls in the same order as on one thread and the
label map is bit-identical (``PIPELINE = False`` runs everything on the caller's thread).

A tile larger than the volume along an axis is shrunk to the volume (rounded up to ``multiple_of``, the
rest padded) when the graph's dimension is dynamic, and refused (``input.tile.size``) when it is fixed.
"""
from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Generator

import numpy as np

from ..core.errors import CancelledError, InferenceError
from ..core.image import ImageVolume
from .decoders import class_values
from .preprocess import IntensityMap, intensity_map, tile_origins
from .volume_blend import Scoring, SlabBlender, axis_plan

if TYPE_CHECKING:  # pragma: no cover
    from .run import Engine
    from .spec import PluginSpec

Progress = tuple[int, int, str]
# input elements per session.run when batching tiles: larger batches measured no faster on CPU
# (tests/bench/test_bench_volume.py) and cost memory
BATCH_ELEMENTS = 1 << 21
MAX_BATCH = 8
# blend tiles on a helper thread while session.run works (False: all on the caller's thread,
# the reference order; tests/unit/test_inference_volume.py checks both give the same labels)
PIPELINE = True
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# -- orientation ----------------------------------------------------------------------------------
@dataclass
class Oriented:
    """The volume as the model sees it (a view), its spacing, and the way back for a label map."""

    data: np.ndarray  # (z, y, x[, c]) view in model orientation
    spacing: tuple[float, float, float]
    axes: tuple[int, int, int]  # model axis i = display axis axes[i]
    flips: tuple[bool, bool, bool]  # model axis i runs backwards

    def to_display(self, mask: np.ndarray) -> np.ndarray:
        """A ``(z, y, x)`` array in model orientation -> the display orientation (a view)."""
        for i, flip in enumerate(self.flips):
            if flip:
                mask = np.flip(mask, axis=i)
        inverse = np.argsort(self.axes)
        return np.transpose(mask, inverse)


def oriented(image: ImageVolume, orientation: str) -> Oriented:
    """The image in the model's orientation (see the module notes); only NIfTI differs for ``stored``."""
    data, spacing = image.data, tuple(image.spacing)
    meta = image.metadata or {}
    if orientation != "stored" or "source_affine" not in meta or "affine" not in meta:
        return Oriented(data, spacing, (0, 1, 2), (False, False, False))  # type: ignore[arg-type]
    # display index (x, y, z) -> source index (i, j, k) is a signed permutation (the reader only
    # reorders and flips axes): read it off inv(source affine) @ display affine
    m = np.linalg.inv(np.asarray(meta["source_affine"], float)) @ np.asarray(meta["affine"], float)
    perm = np.rint(m[:3, :3]).astype(int)
    # model axes (k, j, i) = source axes (2, 1, 0); display array axes (z, y, x) = display axes (2, 1, 0)
    axes, flips = [], []
    for src_axis in (2, 1, 0):
        disp_axis = int(np.flatnonzero(perm[src_axis])[0])
        axes.append(2 - disp_axis)
        flips.append(bool(perm[src_axis, disp_axis] < 0))
    view = np.transpose(data, tuple(axes) + ((3,) if data.ndim == 4 else ()))
    for i, flip in enumerate(flips):
        if flip:
            view = np.flip(view, axis=i)
    sp = tuple(spacing[a] for a in axes)
    return Oriented(view, sp, tuple(axes), tuple(flips))  # type: ignore[arg-type]


# -- resampling -----------------------------------------------------------------------------------
def resample_linear(data: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Order-1 resampling of a ``(z, y, x[, c])`` volume to ``shape`` (voxel centres aligned, float32)."""
    from scipy.ndimage import zoom

    factors = [t / s for t, s in zip(shape, data.shape[:3])]
    if data.ndim == 4:
        return np.stack([zoom(data[..., c], factors, output=np.float32, order=1, mode="nearest", grid_mode=True)
                         for c in range(data.shape[3])], axis=-1)
    return zoom(data, factors, output=np.float32, order=1, mode="nearest", grid_mode=True)


def resample_nearest(labels: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Nearest-neighbour resampling of a label volume (voxel centres aligned with :func:`resample_linear`)."""
    idx = [np.minimum(((np.arange(t) + 0.5) * s / t).astype(np.intp), s - 1)
           for t, s in zip(shape, labels.shape)]
    return labels[np.ix_(*idx)]


# -- the plan -------------------------------------------------------------------------------------
@dataclass
class Plan:
    """Where the tiles go on the model grid."""

    grid: tuple[int, int, int]  # the (resampled) volume in model voxels
    padded: tuple[int, int, int]  # the grid padded up to one tile / multiple_of
    tile: tuple[int, int, int]
    overlap: tuple[int, int, int]
    starts: tuple[list[int], list[int], list[int]]

    @property
    def n_tiles(self) -> int:
        return len(self.starts[0]) * len(self.starts[1]) * len(self.starts[2])


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def model_grid(spec: PluginSpec, orient: Oriented, image: ImageVolume, graph_dhw: tuple[int | None, ...]
               ) -> tuple[int, int, int]:
    """The volume's shape in model voxels (after ``input.spacing`` or ``resize: stretch``).

    Raises
    ------
    PluginError
        ``input.spacing`` given but the image's voxel size is unknown; ``stretch`` without a size.
    """
    shape = tuple(int(s) for s in orient.data.shape[:3])
    inp = spec.input
    if inp.resize == "stretch":
        size = tuple(graph_dhw) if all(d is not None for d in graph_dhw) else tuple(inp.size or ())
        if len(size) != 3:
            raise spec.error("input.size", "resize: stretch of a 3-D model needs [depth, height, width] (or a "
                                           "graph with fixed dimensions)")
        return size  # type: ignore[return-value]
    if inp.spacing is None:
        return shape  # type: ignore[return-value]
    if not image.spacing_known:
        raise spec.error("input.spacing", f"the model needs the voxel size, {image.display_name} has none "
                                          "(spacing unknown); open a DICOM/NIfTI file or set the spacing")
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, orient.spacing, inp.spacing))  # type: ignore


def plan_tiles(spec: PluginSpec, grid: tuple[int, int, int], graph_dhw: tuple[int | None, ...]) -> Plan:
    """Tile size and origins over the model grid (one tile = the whole padded volume unless ``tile``).

    Raises
    ------
    PluginError
        A tile larger than the volume along an axis the graph fixes (``input.tile.size``), or a volume
        larger than a fixed graph input with ``resize: none`` (``input.resize``).
    """
    m = spec.input.multiple_of
    names = ("z", "y", "x")
    if spec.input.resize == "tile":
        tile = list(spec.input.tile.dhw)  # type: ignore[union-attr]
        overlap = list(spec.input.tile.overlap3)  # type: ignore[union-attr]
        for a in range(3):
            if grid[a] < tile[a]:
                if graph_dhw[a] is not None:
                    raise spec.error("input.tile.size", f"{list(spec.input.tile.dhw)} is larger than the "  # type: ignore
                                                        f"volume {grid[0]}x{grid[1]}x{grid[2]} (z y x, model "
                                                        f"voxels) along {names[a]}, and the graph fixes that "
                                                        "size; use a larger volume or a model with dynamic dims")
                tile[a] = _round_up(grid[a], m)  # dynamic dim: shrink the tile to the volume
                overlap[a] = min(overlap[a], max(0, tile[a] // 2 - 1))
        padded = tuple(max(g, t) for g, t in zip(grid, tile))
        starts = tuple(tile_origins(p, t, o) for p, t, o in zip(padded, tile, overlap))
        return Plan(grid, padded, tuple(tile), tuple(overlap), starts)  # type: ignore[arg-type]
    whole: list[int] = []
    for a in range(3):
        fixed = graph_dhw[a]
        if fixed is not None:
            if grid[a] > fixed:
                raise spec.error("input.resize", f"the volume is {grid[0]}x{grid[1]}x{grid[2]} (z y x), larger "
                                                 f"than the model input along {names[a]} ({fixed}); use resize: "
                                                 "tile or stretch")
            whole.append(fixed)
        else:
            whole.append(_round_up(grid[a], m))
    p = (whole[0], whole[1], whole[2])
    return Plan(grid, p, p, (0, 0, 0), ([0], [0], [0]))


# -- tensors --------------------------------------------------------------------------------------
def fill_tile(dst: np.ndarray, vol: np.ndarray, origin: tuple[int, int, int], imap: IntensityMap,
              fill: list[float], layout: str) -> None:
    """Write one tile (raw values -> model values) into ``dst`` (``(C, d, h, w)`` or ``(d, h, w, C)``).

    The part of the tile outside the volume gets ``fill`` (the pad value through the intensity map).
    """
    channels = imap.a.shape[0]
    tile = dst.shape[1:] if layout == "NCDHW" else dst.shape[:3]
    region = tuple(slice(o, min(o + t, n)) for o, t, n in zip(origin, tile, vol.shape[:3]))
    inner = tuple(slice(0, r.stop - r.start) for r in region)
    src = vol[region]
    partial = any(r.stop - r.start < t for r, t in zip(region, tile))
    kind_int = dst.dtype.kind in "ui"
    for c in range(channels):
        d = dst[c] if layout == "NCDHW" else dst[..., c]
        if partial:
            d[...] = fill[c]
        plane = src if src.ndim == 3 else src[..., c if src.shape[3] > 1 else 0]
        a, b = float(imap.a[c]), float(imap.b[c])
        if kind_int:
            vals = np.asarray(plane, np.float32)
            if imap.clip is not None:
                vals = np.clip(vals, imap.clip[0], imap.clip[1])
            info = np.iinfo(dst.dtype)
            d[inner] = np.clip(np.rint(vals * a + b), info.min, info.max)
            continue
        target = d[inner]
        if target.dtype != np.float32 and target.dtype != np.float64:  # fp16 graphs: map in float32, cast once
            vals = np.asarray(plane, np.float32)
            if imap.clip is not None:
                vals = np.clip(vals, imap.clip[0], imap.clip[1])
            target[...] = vals * np.float32(a) + np.float32(b)
            continue
        # straight into the tensor, in its float type (float32 scalars: int16 * float32 stays float32):
        # a * clip(x, lo, hi) + b == clip(a * x + b, a * lo + b, a * hi + b) for a > 0
        if a > 0 and imap.clip is not None or imap.clip is None:
            np.multiply(plane, target.dtype.type(a), out=target, casting="unsafe")
            if b != 0.0:
                target += target.dtype.type(b)
            if imap.clip is not None:
                np.clip(target, a * imap.clip[0] + b, a * imap.clip[1] + b, out=target)
        else:
            np.clip(plane, imap.clip[0], imap.clip[1], out=target, casting="unsafe")
            target *= a
            target += b


def tile_channels(out: np.ndarray, spec: PluginSpec, tile: tuple[int, int, int]) -> np.ndarray:
    """One tile's model output (no batch dim) -> a ``(C, d, h, w)`` view, or ``(d, h, w)`` class ids (NDHW).

    Raises
    ------
    InferenceError
        The output does not cover the input tile.
    """
    layout = spec.output.layout
    if layout == "NDHW":
        ids = out[0] if out.ndim == 4 and out.shape[0] == 1 else out
        if ids.shape != tuple(tile):
            raise InferenceError(f"segmentation output has shape {list(out.shape)}; NDHW expects {list(tile)}",
                                 path=spec.id)
        return ids
    if out.ndim == 3:
        out = out[np.newaxis] if layout == "NCDHW" else out[..., np.newaxis]
    if out.ndim != 4:
        raise InferenceError(f"segmentation output has shape {list(out.shape)}; {layout} expects 5 dims",
                             path=spec.id)
    chw = out if layout == "NCDHW" else np.moveaxis(out, -1, 0)
    if tuple(chw.shape[1:]) != tuple(tile):
        raise InferenceError(f"segmentation output {list(out.shape)} does not cover the input tile {list(tile)} "
                             "(z y x); 3-D outputs must have the input's size", path=spec.id)
    return chw


def scoring(spec: PluginSpec, channels: int | None) -> Scoring:
    """The :class:`Scoring` of a plugin whose output has ``channels`` channels (``None``: class ids)."""
    out = spec.output
    if channels is None:  # NDHW class ids: tiles vote
        values = np.asarray([c.value if c.value is not None else i for i, c in enumerate(out.classes or [])],
                            np.uint16)
        return Scoring("votes", values)
    values = class_values(spec, channels)
    act = out.activation
    if channels == 1 or out.multi_label:
        t = float(out.threshold)
        if act == "sigmoid":
            t = float(np.log(t / (1.0 - t))) if 0.0 < t < 1.0 else (-np.inf if t <= 0 else np.inf)
        return Scoring("threshold", values, t, softmax_first=act == "softmax" and channels > 1)
    if channels == 2 and act == "softmax":
        return Scoring("diff", values)
    return Scoring("argmax", values)


# -- the steps of a run --------------------------------------------------------------------------
class _Inline:
    """Runs each step at once on the caller's thread (``PIPELINE = False``, or one tile)."""

    def submit(self, fn: Callable, *args) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 -- re-raised by fut.result(), as from a thread
            fut.set_exception(exc)
        return fut

    def close(self) -> None:
        pass


class _StepThread:
    """One helper thread running the blend steps in submission order."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-volume")

    def submit(self, fn: Callable, *args) -> Future:
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        # cancel or error: drop the steps not started, wait for the one running (it touches our arrays)
        self._pool.shutdown(wait=True, cancel_futures=True)


# -- the run --------------------------------------------------------------------------------------
def _to_model_colour(data: np.ndarray, color: str) -> np.ndarray:
    if color == "gray" and data.ndim == 4:
        return data[..., :3].astype(np.float32) @ _LUMA
    if data.ndim == 4 and data.shape[3] == 4:
        return data[..., :3]
    return data


def run_volume(engine: Engine, image: ImageVolume, *, cancel: Callable[[], bool],
               timing: dict[str, float]) -> Generator[Progress, None, np.ndarray]:
    """Run a 3-D plugin on the whole volume; yields ``(done, total, message)`` per tile and returns the
    ``(z, y, x)`` uint16 label map in the image's display geometry.

    Raises
    ------
    PluginError, InferenceError, CancelledError
    """
    spec = engine.spec
    info = engine.model.input
    if image.n_slices < 2:
        raise spec.error("input.layout", f"{spec.input.layout} is a 3-D model; {image.display_name} is a 2-D "
                                         "image (one slice); open a volume")
    t0 = time.perf_counter()
    orient = oriented(image, spec.input.orientation)
    graph_dhw = (info.depth, info.height, info.width)
    grid = model_grid(spec, orient, image, graph_dhw)
    plan = plan_tiles(spec, grid, graph_dhw)
    data = _to_model_colour(orient.data, spec.input.color)
    stats_source = _to_model_colour(image.data, spec.input.color)  # contiguous: statistics without a copy
    imap = intensity_map(spec, image, stats_source, colour=stats_source.ndim == 4)
    resampled = grid != tuple(data.shape[:3])
    if resampled:
        data = resample_linear(data, grid)
    channels = imap.a.shape[0]
    fill = [imap.apply_scalar(spec.input.pad_value, c) for c in range(channels)]
    timing["preprocess"] += (time.perf_counter() - t0) * 1000.0

    layout, dtype = spec.input.layout, info.dtype
    tile = plan.tile
    tile_voxels = tile[0] * tile[1] * tile[2] * channels
    batch = 1
    if info.batch_dynamic:
        batch = int(max(1, min(MAX_BATCH, BATCH_ELEMENTS // max(1, tile_voxels))))
    if spec.output.layout == "NDHW" and not spec.output.classes:
        raise spec.error("output.classes", "NDHW (class id) outputs of a 3-D model need the class list")
    zs, ys, xs = plan.starts
    labels = np.zeros(plan.grid, dtype=np.uint16)
    blender = SlabBlender(tuple(axis_plan(st, t, o) for st, t, o in zip(plan.starts, tile, plan.overlap)),  # type: ignore[arg-type]
                          tile, plan.padded, labels)
    # the session.run calls in order: (row index if this batch ends its row of z, the batch's tile origins)
    steps: list[tuple[int | None, list[tuple[int, int, int]]]] = []
    for k, z0 in enumerate(zs):
        row = [(z0, y0, x0) for y0 in ys for x0 in xs]
        steps += [(k if i + batch >= len(row) else None, row[i:i + batch]) for i in range(0, len(row), batch)]
    total = plan.n_tiles
    name = spec.output.name
    shape_in = (batch, channels) + tile if layout == "NCDHW" else (batch,) + tile + (channels,)
    buf = np.empty(shape_in, dtype=dtype)

    def fill_step(s: int) -> np.ndarray:
        t1 = time.perf_counter()
        group = steps[s][1]
        tensor = buf if len(group) == batch else buf[:len(group)]
        for j, origin in enumerate(group):
            fill_tile(tensor[j], data, origin, imap, fill, layout)
        timing["preprocess"] += (time.perf_counter() - t1) * 1000.0
        return tensor

    def blend_step(outputs: dict[str, np.ndarray], chws: list[np.ndarray], group: list[tuple[int, int, int]],
                   row_end: int | None) -> None:
        t1 = time.perf_counter()
        for key, arr in outputs.items():
            engine.model.check_finite(key, arr)
        for chw, origin in zip(chws, group):
            blender.add(chw, origin)
        if row_end is not None:  # slices before the next row's start are final: class ids, slide the slab
            last = row_end + 1 == len(zs)
            blender.finish(plan.padded[0] if last else zs[row_end + 1], last)
        timing["postprocess"] += (time.perf_counter() - t1) * 1000.0

    # Pipelined (module notes): a helper thread blends batch s-1 (and checks it for NaN) while ONNX Runtime
    # (which releases the GIL) runs batch s here. The blends run in submission order: the same calls in the
    # same order as on one thread, so the label map is bit-identical. Filling stays on this thread: it
    # must be done before the run anyway, and so this thread never waits on the helper unless it falls two
    # batches behind (on a machine with no free core), which also bounds the outputs alive to two batches.
    steps_on = _StepThread() if PIPELINE and len(steps) > 1 else _Inline()
    done = 0
    try:
        blends: deque[Future] = deque()
        for s, (row_end, group) in enumerate(steps):
            if cancel():
                raise CancelledError()
            tensor = fill_step(s)
            while len(blends) > 1 or (blends and blends[0].done()):
                blends.popleft().result()  # waits for batch s-2 at most; re-raises a failed blend here
            t2 = time.perf_counter()
            outputs = engine.model.run(tensor, check_finite=False)  # checked in blend_step
            timing["inference"] += (time.perf_counter() - t2) * 1000.0
            out = outputs[name] if name is not None else next(iter(outputs.values()))
            if out.shape[0] != len(group):
                raise InferenceError(f"model output {list(out.shape)} has no batch dimension of {len(group)}",
                                     path=spec.id)
            chws = [tile_channels(out[j], spec, tile) for j in range(len(group))]
            if blender.score is None:
                blender.score = scoring(spec, None if chws[0].ndim == 3 else chws[0].shape[0])
            blends.append(steps_on.submit(blend_step, outputs, chws, group, row_end))
            for _ in group:
                done += 1
                yield (done, total, f"tile {done}/{total}" if total > 1 else "volume")
        for fut in blends:
            fut.result()
    finally:
        steps_on.close()
    t5 = time.perf_counter()
    if resampled:
        labels = resample_nearest(labels, tuple(orient.data.shape[:3]))
    mask = np.ascontiguousarray(orient.to_display(labels))
    timing["postprocess"] += (time.perf_counter() - t5) * 1000.0
    return mask
