"""Running a plugin: a generator that yields progress and returns the result, plus batch prefetching.

    gen = run_plugin("brain-tissue", image)
    for done, total, message in gen: ...        # progress; cancel via a threading.Event
    result = predict("brain-tissue", image)     # the same, drained

Stacks run slice by slice; ``resize: tile`` runs tile by tile and blends the overlaps. The GUI runs the
generator in a worker; the CLI drains it. :func:`run_many` overlaps reading and preprocessing of the next
images (a prefetch thread) with inference of the current one.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator, Iterable

import numpy as np

from ..core.cancel import Cancel, is_cancelled
from ..core.errors import CancelledError, InferenceError, PluginError, WorkbenchError
from ..core.image import ImageVolume
from ..core.labels import default_color
from ..core.results import (
    ClassificationResult,
    ClassScore,
    DetectionResult,
    RestorationResult,
    Result,
    RunInfo,
    SegmentationClass,
    SegmentationResult,
)
from ..core.settings import Settings, load_settings
from .decoders import DecodeContext, class_values, decoder_for
from .expects import check_image, expects_of
from .preprocess import PreparedPlane, blend_weights, prepare_plane, tile_origins, tile_tensor
from .registry import find_plugin
from .session import LoadedModel, get_session
from .spec import PluginSpec

Progress = tuple[int, int, str]
# Slices per session.run for graphs with a dynamic batch (wave 2). On the CPU provider batching slices
# measured slower (0.85x for 64 slices of 128x128, tests/bench/test_bench_volume.py: the concatenation
# costs more than the per-run overhead it saves), so it is on for accelerators only.
SLICE_BATCH = 8
SLICE_BATCH_CPU = 1
SLICE_BATCH_ELEMENTS = 1 << 21


@dataclass
class Prepared:
    """An image preprocessed for one plugin (what the batch prefetch thread produces)."""

    image: ImageVolume
    slices: list[int]
    planes: list[PreparedPlane] = field(default_factory=list)
    preprocess_ms: float = 0.0


class Engine:
    """One plugin bound to a ready session and decoder. Reusable across images; thread-safe for one
    producer calling :meth:`prepare` while one consumer calls :meth:`execute`."""

    def __init__(self, plugin: str | Path | PluginSpec, *, provider: str = "auto",
                 settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.spec: PluginSpec = find_plugin(plugin, self.settings)
        if self.spec.task == "promptable":  # clicks in, one object out: inference/promptable/run.py
            raise PluginError(f"{self.spec.id} is a promptable model: run it with `workbench segment IMAGE -m "
                              f"{self.spec.id} --click X,Y` or the AI click tool (A)", path=None)
        if self.spec.task == "embedding":  # issue 18: vectors, not results; inference/embedding.py
            raise PluginError(f"{self.spec.id} is an embedding model: use it with `workbench index FOLDER --db "
                              f"LIB.wbindex -m {self.spec.id}` and `workbench search` (docs/SEARCH.md)", path=None)
        self.decoder = decoder_for(self.spec, self.settings)  # before the session: refuse untrusted code early
        self.model: LoadedModel = get_session(self.spec, provider, self.settings)

    @property
    def provider(self) -> str:
        return self.model.provider

    # -- preprocessing -----------------------------------------------------------------------------
    def check_slices(self, image: ImageVolume, slices: Iterable[int] | None) -> list[int]:
        if slices is None:
            return list(range(image.n_slices))
        chosen = [int(s) for s in slices]
        bad = [s for s in chosen if not 0 <= s < image.n_slices]
        if bad:
            raise InferenceError(f"slice {bad[0]} out of range 0..{image.n_slices - 1}",
                                 path=image.path or "image")
        return chosen

    def prepare_plane(self, image: ImageVolume, index: int) -> PreparedPlane:
        info = self.model.input
        try:
            return prepare_plane(self.spec, image, index, graph_hw=(info.height, info.width), dtype=info.dtype)
        except InferenceError as exc:
            raise InferenceError(exc.reason, path=image.path or "image") from exc

    def prepare(self, image: ImageVolume, slices: Iterable[int] | None = None) -> Prepared:
        """Preprocess every chosen slice (the prefetch thread of :func:`run_many` calls this)."""
        chosen = self.check_slices(image, slices)
        if self.spec.input.is_volumetric:  # 3-D models read the volume tile by tile in execute()
            return Prepared(image, chosen, [], 0.0)
        t0 = time.perf_counter()
        planes = [self.prepare_plane(image, i) for i in chosen]
        return Prepared(image, chosen, planes, (time.perf_counter() - t0) * 1000.0)

    def steps_per_slice(self, image: ImageVolume) -> int:
        if self.spec.input.resize != "tile" or self.spec.input.is_volumetric:
            return 1
        th, tw = self.spec.input.tile.hw  # type: ignore[union-attr]
        ov = self.spec.input.tile.overlap2  # type: ignore[union-attr]
        return len(tile_origins(max(image.height, th), th, ov)) * len(tile_origins(max(image.width, tw), tw, ov))

    # -- inference + decoding ----------------------------------------------------------------------
    def _run_model(self, tensor: np.ndarray, image: ImageVolume) -> dict[str, np.ndarray]:
        """One model run; its errors name the image as well as the plugin."""
        try:
            return self.model.run(tensor)
        except InferenceError as exc:
            if image.path is None:
                raise
            raise InferenceError(str(exc), path=image.path) from exc

    def execute(self, image: ImageVolume, slices: Iterable[int] | None = None, *,
                prepared: Prepared | None = None, cancel: Cancel = None) -> Generator[Progress, None, Result]:
        """Run on ``image`` (or on an already :meth:`prepare`-d image); yields ``(done, total, message)``
        and returns the :data:`Result`.

        Raises
        ------
        CancelledError, InferenceError
        """
        if self.spec.input.is_volumetric:
            return (yield from self._execute_volume(image, prepared.slices if prepared is not None else slices,
                                                    cancel))
        chosen = prepared.slices if prepared is not None else self.check_slices(image, slices)
        timing = {"preprocess": prepared.preprocess_ms if prepared is not None else 0.0,
                  "inference": 0.0, "postprocess": 0.0}
        per_slice = self.steps_per_slice(image)
        total = max(1, len(chosen) * per_slice)
        done = 0
        parts: list[Any] = []
        batch = self.slice_batch(image, len(chosen))
        pending: list[tuple[int, DecodeContext]] = []
        for k, index in enumerate(chosen):
            if is_cancelled(cancel):
                raise CancelledError()
            if prepared is not None:
                plane = prepared.planes[k]
            else:
                t0 = time.perf_counter()
                plane = self.prepare_plane(image, index)
                timing["preprocess"] += (time.perf_counter() - t0) * 1000.0
            ctx = DecodeContext(self.spec, image, plane, plane.tensor)
            if plane.tiles:
                tiles = self._run_tiles(plane, ctx, timing, cancel)
                while True:
                    try:
                        step = next(tiles)
                    except StopIteration as finished:
                        part = finished.value
                        break
                    done += 1
                    yield (done, total, f"slice {index + 1}/{image.n_slices}, tile {step}/{len(plane.tiles)}")
            elif batch > 1:
                # wave 2: a dynamic batch dimension runs several slices per session.run
                if pending and pending[0][1].input_tensor.shape != plane.tensor.shape:  # type: ignore[union-attr]
                    parts += yield from self._run_batch(pending, image, timing, done, total, cancel)
                    done, pending = done + len(pending), []
                pending.append((index, ctx))
                if len(pending) == batch or k == len(chosen) - 1:
                    parts += yield from self._run_batch(pending, image, timing, done, total, cancel)
                    done, pending = done + len(pending), []
                continue
            else:
                t0 = time.perf_counter()
                outputs = self._run_model(plane.tensor, image)  # type: ignore[arg-type]
                t1 = time.perf_counter()
                part = self.decoder.decode(outputs, ctx)
                timing["inference"] += (t1 - t0) * 1000.0
                timing["postprocess"] += (time.perf_counter() - t1) * 1000.0
                done += 1
                yield (done, total, f"slice {index + 1}/{image.n_slices}")
            parts.append(part)
        t0 = time.perf_counter()
        result = self._assemble(image, chosen, parts, timing)
        timing["postprocess"] += (time.perf_counter() - t0) * 1000.0
        result.info.timing_ms = {k: round(v, 3) for k, v in timing.items()}
        return result

    def slice_batch(self, image: ImageVolume, n_slices: int) -> int:
        """Slices per ``session.run`` (wave 2): > 1 only for whole-slice modes of a graph whose batch
        dimension and every output's first dimension are dynamic, with a built-in decoder."""
        if n_slices < 2 or self.spec.input.resize == "tile" or not self.model.input.batch_dynamic \
                or self.spec.output.decoder is not None \
                or any(not shape or shape[0] is not None for shape in self.model.output_shapes.values()):
            return 1
        per = max(1, image.height * image.width * max(1, self.spec.input.channels))
        limit = SLICE_BATCH_CPU if self.model.provider == "CPUExecutionProvider" else SLICE_BATCH
        return int(max(1, min(limit, n_slices, SLICE_BATCH_ELEMENTS // per)))

    def _run_batch(self, pending: list[tuple[int, DecodeContext]], image: ImageVolume, timing: dict[str, float],
                   done: int, total: int, cancel: Cancel) -> Generator[Progress, None, list[Any]]:
        """Run ``pending`` slices (same tensor shape) in one ``session.run``; decode each from its row."""
        t0 = time.perf_counter()
        tensor = np.concatenate([ctx.input_tensor for _, ctx in pending], axis=0)
        outputs = self.model.run(tensor)
        t1 = time.perf_counter()
        timing["inference"] += (t1 - t0) * 1000.0
        for name, arr in outputs.items():
            if arr.ndim == 0 or arr.shape[0] != len(pending):
                raise InferenceError(f"output {name!r} has shape {list(arr.shape)} for a batch of {len(pending)}: "
                                     "the graph's batch dimension is not the outputs' first", path=self.spec.id)
        parts = []
        for i, (index, ctx) in enumerate(pending):
            if i and is_cancelled(cancel):  # cancel still stops at the next slice
                raise CancelledError()
            t2 = time.perf_counter()
            parts.append(self.decoder.decode({name: arr[i:i + 1] for name, arr in outputs.items()}, ctx))
            timing["postprocess"] += (time.perf_counter() - t2) * 1000.0
            yield (done + i + 1, total, f"slice {index + 1}/{image.n_slices}")
        return parts

    def _run_tiles(self, plane: PreparedPlane, ctx: DecodeContext, timing: dict[str, float],
                   cancel: Cancel) -> Generator[int, None, Any]:
        """Run every tile and blend the dense outputs with smooth weights; yields the tile number and
        returns the decoded slice.

        Speed (tests/bench/test_bench_inference.py, tiled 2048x2048): the weights form a partition of
        unity (:func:`blend_weights`), so each tile is weighted in place and added straight into the
        output buffer -- no weight-sum image, no final division -- and one input buffer is reused for
        every tile. numpy in-place ops beat ``cv2.accumulateProduct`` here (measured 0.95x vs 0.88x of
        bare ``session.run``): on a 256x256 tile OpenCV's thread hand-off costs more than it saves.
        (Copying the tile core, where the weight is exactly 1, instead of weighting it measured no
        faster: the pass is bound by memory either way. Blending tile n on a helper thread while the
        model runs tile n + 1 measured no faster either -- 0.89-0.93x, the same as sequential: the
        helper's Python steps hold the GIL the next tile's extraction waits for, and both passes compete
        with the model for the memory bus.)
        """
        if not getattr(self.decoder, "tileable", False):
            raise self.spec.error("input.resize", "tile is not supported by this decoder")
        spec = self.spec
        th, tw = spec.input.tile.hw  # type: ignore[union-attr]
        s = spec.output.scale if spec.task == "restoration" else 1
        overlap = spec.input.tile.overlap2 * s  # type: ignore[union-attr]
        ph, pw = plane.tile_source.shape[:2]  # type: ignore[union-attr]
        ys_all = sorted({y for y, _ in plane.tiles})
        xs_all = sorted({x for _, x in plane.tiles})
        wy = dict(zip(ys_all, blend_weights([y * s for y in ys_all], th * s, overlap)))
        wx = dict(zip(xs_all, blend_weights([x * s for x in xs_all], tw * s, overlap)))
        weights: dict[tuple[bytes, bytes], np.ndarray] = {}  # tiles with the same ramps share one image
        acc: np.ndarray | None = None
        layout, dtype = spec.input.layout, self.model.input.dtype
        channels = plane.tile_source.shape[2]  # type: ignore[union-attr]
        buf = np.empty((1, channels, th, tw) if layout == "NCHW" else (1, th, tw, channels), dtype=dtype)
        for n, (y, x) in enumerate(plane.tiles, start=1):
            if is_cancelled(cancel):
                raise CancelledError()
            t0 = time.perf_counter()
            tensor = tile_tensor(plane, (y, x), (th, tw), layout, dtype, out=buf)
            t1 = time.perf_counter()
            outputs = self._run_model(tensor, ctx.image)
            t2 = time.perf_counter()
            ctx.input_tensor = tensor
            dense = self.decoder.dense(outputs, ctx)
            if dense.dtype != np.float32 or not dense.flags.writeable:
                dense = dense.astype(np.float32)  # weighted in place below
            if acc is None:
                acc = np.zeros((ph * s, pw * s, dense.shape[2]), dtype=np.float32)
            key = (wy[y].tobytes(), wx[x].tobytes())
            weight = weights.get(key)
            if weight is None:
                weight = weights[key] = np.outer(wy[y], wx[x]).astype(np.float32)[..., np.newaxis]
            ys, xs = y * s, x * s
            np.multiply(dense, weight, out=dense)
            acc[ys:ys + th * s, xs:xs + tw * s] += dense
            t3 = time.perf_counter()
            timing["preprocess"] += (t1 - t0) * 1000.0
            timing["inference"] += (t2 - t1) * 1000.0
            timing["postprocess"] += (t3 - t2) * 1000.0
            yield n
        t0 = time.perf_counter()
        h, w = plane.geometry.src_hw
        acc = acc[: h * s, : w * s]  # type: ignore[index]
        part = self.decoder.from_dense(acc, ctx)
        timing["postprocess"] += (time.perf_counter() - t0) * 1000.0
        return part

    def _execute_volume(self, image: ImageVolume, slices: Iterable[int] | None,
                        cancel: Cancel) -> Generator[Progress, None, Result]:
        """A 3-D model on the whole volume (:mod:`workbench.inference.volume`)."""
        from .volume import run_volume

        chosen = self.check_slices(image, slices)
        if chosen != list(range(image.n_slices)):
            raise InferenceError(f"{self.spec.id} is a 3-D model ({self.spec.input.layout}): it runs on the whole "
                                 "volume, slices cannot be chosen", path=image.path or "image")
        timing = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
        mask = yield from run_volume(self, image, cancel=lambda: is_cancelled(cancel), timing=timing)
        t0 = time.perf_counter()
        result = self._segmentation_mask(self._info(image, chosen, timing), image, mask)
        timing["postprocess"] += (time.perf_counter() - t0) * 1000.0
        result.info.timing_ms = {k: round(v, 3) for k, v in timing.items()}
        return result

    # -- result assembly ---------------------------------------------------------------------------
    def _info(self, image: ImageVolume, chosen: list[int], timing: dict[str, float]) -> RunInfo:
        spec = self.spec
        return RunInfo(plugin_id=spec.id, plugin_name=spec.name, plugin_version=spec.version,
                       sha256=spec.sha256, provider=self.model.provider, task=spec.task,
                       source_path=str(image.path) if image.path is not None else None,
                       timing_ms=timing, slice_indices=list(chosen),
                       warnings=check_image(expects_of(spec), image))

    def _assemble(self, image: ImageVolume, chosen: list[int], parts: list[Any],
                  timing: dict[str, float]) -> Result:
        info = self._info(image, chosen, timing)
        task = self.spec.task
        if task == "classification":
            return self._classification(info, parts)
        if task == "segmentation":
            return self._segmentation(info, image, chosen, parts)
        if task == "detection":
            return DetectionResult(info, [d for p in parts for d in p])
        return self._restoration(info, image, parts)

    def _classification(self, info: RunInfo, parts: list[np.ndarray]) -> ClassificationResult:
        per_slice = np.stack(parts).astype(np.float32)
        scores = per_slice.mean(axis=0)  # a stack: the mean over slices; per-slice scores are kept
        labels = self.spec.labels or [f"class {i}" for i in range(scores.shape[0])]
        order = np.argsort(-scores, kind="stable")[: self.spec.output.top_k]
        top = [ClassScore(int(i), labels[i], float(scores[i])) for i in order]
        return ClassificationResult(info, scores, labels, top, multi_label=self.spec.output.activation == "sigmoid",
                                    slice_scores=per_slice)

    def _segmentation(self, info: RunInfo, image: ImageVolume, chosen: list[int],
                      parts: list[np.ndarray]) -> SegmentationResult:
        mask = np.zeros((image.n_slices, image.height, image.width), dtype=np.uint16)
        for index, part in zip(chosen, parts):
            mask[index] = part
        return self._segmentation_mask(info, image, mask)

    def _segmentation_mask(self, info: RunInfo, image: ImageVolume, mask: np.ndarray) -> SegmentationResult:
        """The result of a full ``(z, y, x)`` label map: classes with pixels (voxels), mm² and mm³."""
        counts = label_counts(mask)
        classes: list[SegmentationClass] = []
        declared = self.spec.output.classes or []
        n_channels = max(len(declared), 1)
        values = class_values(self.spec, n_channels) if declared else np.arange(0)
        pix_area = image.pixel_area_mm2
        vox = image.voxel_volume_mm3
        seen = set()
        for i, cls in enumerate(declared):
            value = int(values[i]) if i < len(values) else i
            if value == 0 or value in seen:
                continue
            seen.add(value)
            pixels = int(counts[value]) if value < len(counts) else 0
            classes.append(SegmentationClass(value, cls.name, cls.color or default_color(value), pixels,
                                             pixels * pix_area if pix_area is not None else None,
                                             pixels * vox if vox is not None else None))
        for found in np.nonzero(counts)[0]:  # values the manifest did not name (no classes given)
            value = int(found)
            if value != 0 and value not in seen:
                pixels = int(counts[value])
                classes.append(SegmentationClass(int(value), f"class {value}", default_color(int(value)), pixels,
                                                 pixels * pix_area if pix_area is not None else None,
                                                 pixels * vox if vox is not None else None))
        return SegmentationResult(info, mask, classes)

    def _restoration(self, info: RunInfo, image: ImageVolume, parts: list[np.ndarray]) -> RestorationResult:
        s = self.spec.output.scale
        data = np.stack(parts)
        spacing = (image.spacing[0], image.spacing[1] / s, image.spacing[2] / s)
        restored = ImageVolume(data, spacing=spacing, origin=image.origin, window=image.window,
                               modality=image.modality, invert_display=image.invert_display,
                               spacing_known=image.spacing_known, path=image.path,
                               metadata=dict(image.metadata))
        return RestorationResult(info, restored, scale=s, extra={"slices": list(info.slice_indices)})


def label_counts(mask: np.ndarray) -> np.ndarray:
    """Pixels per label value of a ``(z, y, x)`` mask, a few slices at a time: ``np.bincount`` of the
    whole mask would first convert it to int64 (4x a uint16 512x512x300 label map, 630 MB)."""
    top = int(mask.max()) if mask.size else 0
    step = max(1, (1 << 22) // max(1, mask[0].size))
    if top <= 8:  # few labels (the usual model output): one comparison pass per value beats bincount
        counts = np.zeros(top + 1, dtype=np.int64)
        for z in range(0, mask.shape[0], step):
            part = mask[z:z + step]
            for v in range(1, top + 1):
                counts[v] += np.count_nonzero(part == v)
        counts[0] = mask.size - counts[1:].sum()
        return counts
    counts = np.zeros(1, dtype=np.int64)
    for z in range(0, mask.shape[0], step):
        part = np.bincount(mask[z:z + step].reshape(-1), minlength=1)
        if part.size > counts.size:
            part[:counts.size] += counts
            counts = part
        else:
            counts[:part.size] += part
    return counts


def run_plugin(plugin: str | Path | PluginSpec | Engine, image: ImageVolume, *, slices: Iterable[int] | None = None,
               provider: str = "auto", settings: Settings | None = None,
               cancel: Cancel = None) -> Generator[Progress, None, Result]:
    """Run a plugin on an image, slice by slice.

    Parameters
    ----------
    plugin : str, Path, PluginSpec or Engine
        An installed plugin id, a plugin folder, a loaded spec, or a ready :class:`Engine`.
    image : ImageVolume
    slices : iterable of int, optional
        Slices to run on (default: all).
    provider : {"auto", "cpu", "cuda"}
    settings : Settings, optional
    cancel : threading.Event or callable, optional
        Checked between slices and tiles; raises :class:`CancelledError` when set.

    Yields
    ------
    (done, total, message)

    Returns
    -------
    Result
        As ``StopIteration.value`` (``result = yield from run_plugin(...)``).
    """
    engine = plugin if isinstance(plugin, Engine) else Engine(plugin, provider=provider, settings=settings)
    return (yield from engine.execute(image, slices, cancel=cancel))


def predict(plugin: str | Path | PluginSpec | Engine, image: ImageVolume, *, slices: Iterable[int] | None = None,
            provider: str = "auto", settings: Settings | None = None, cancel: Cancel = None,
            progress: Callable[[int, int, str], None] | None = None) -> Result:
    """:func:`run_plugin`, drained: returns the result (``progress`` is called for every step)."""
    gen = run_plugin(plugin, image, slices=slices, provider=provider, settings=settings, cancel=cancel)
    while True:
        try:
            step = next(gen)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(*step)


@dataclass
class BatchItem:
    """One image of :func:`run_many`: its result, or the one-line error that stopped it."""

    source: Any
    result: Result | None = None
    error: WorkbenchError | None = None
    image: ImageVolume | None = None
    seconds: float = 0.0


_END = object()


def _read_prepare(engine: Engine, reader: Callable[[Any], ImageVolume], src: Any) -> tuple[Any, Any, Any, float]:
    """``(src, image, prepared or the read/prepare error, start time)`` of one input."""
    t0 = time.perf_counter()
    try:
        image = reader(src)
        return src, image, engine.prepare(image), t0
    except WorkbenchError as exc:
        return src, None, exc, t0


def _batch_item(engine: Engine, src: Any, image: Any, prep: Any, t0: float, cancel: Cancel) -> BatchItem:
    """Run one prepared input; its :class:`BatchItem` (errors of this input inside, never raised)."""
    if isinstance(prep, WorkbenchError):
        return BatchItem(src, error=prep, seconds=time.perf_counter() - t0)
    if is_cancelled(cancel):
        raise CancelledError()
    try:
        gen = engine.execute(image, prepared=prep, cancel=cancel)
        while True:
            try:
                next(gen)
            except StopIteration as done:
                result = done.value
                break
    except CancelledError:
        raise
    except WorkbenchError as exc:
        return BatchItem(src, error=exc, image=image, seconds=time.perf_counter() - t0)
    return BatchItem(src, result=result, image=image, seconds=time.perf_counter() - t0)


def run_one(engine: Engine, source: Any, reader: Callable[[Any], ImageVolume], *, cancel: Cancel = None
            ) -> BatchItem:
    """:func:`run_many` of one input, in this thread: the same steps without a prefetch thread (a cluster
    worker runs one input per task; a thread per task would only cost its start)."""
    return _batch_item(engine, *_read_prepare(engine, reader, source), cancel)


def run_many(engine: Engine, sources: Iterable[Any], reader: Callable[[Any], ImageVolume], *,
             prefetch: int = 2, cancel: Cancel = None) -> Generator[BatchItem, None, None]:
    """Run one engine over many images; a thread reads and preprocesses ahead of inference.

    ONNX Runtime and OpenCV release the GIL, so decoding + preprocessing the next image really overlaps
    with inference of the current one. Errors of one image (unreadable, incompatible) are returned in
    its :class:`BatchItem`, never raised; a cancel stops both threads.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()

    def producer() -> None:
        try:
            for src in sources:
                if stop.is_set() or is_cancelled(cancel):
                    break
                item: Any = _read_prepare(engine, reader, src)
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        finally:
            while not stop.is_set():
                try:
                    q.put(_END, timeout=0.1)
                    break
                except queue.Full:
                    continue

    thread = threading.Thread(target=producer, name="workbench-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                break
            src, image, prep, t0 = item
            yield _batch_item(engine, src, image, prep, t0, cancel)
    finally:
        stop.set()
        thread.join(timeout=5)
