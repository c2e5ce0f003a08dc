"""Running a promptable plugin: one prompt (clicks, box, previous mask) -> a mask of the slice.

:class:`PromptSession` holds the ONNX session(s) of one plugin and the embedding cache; ``predict`` is the
one code path of the command line (``workbench segment --click``), the GUI tool and the tests.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ...core.errors import InferenceError, PluginError
from ...core.image import ImageVolume
from ..checksum import file_sha256
from ..preprocess import intensity_map, plane_to_model_color
from ..spec import PluginSpec
from .cache import DEFAULT_MAX_BYTES, EmbeddingCache, content_key
from .prompts import Letterbox, Prompt, PromptError, channel_input, check_prompt


@dataclass
class PromptResult:
    """A predicted mask of one slice: ``mask`` (bool) and ``logits`` (float32) of the slice's shape;
    ``low_res`` the decoder's own previous-mask input for the next click (encoder/decoder models);
    encoder and decoder wall times apart (encoder 0 on a cache hit)."""

    mask: np.ndarray
    logits: np.ndarray
    index: int
    low_res: np.ndarray | None = None
    encoder_ms: float = 0.0
    decoder_ms: float = 0.0
    cached: bool = False
    crop: tuple[int, int, int, int] | None = None
    extra: dict = field(default_factory=dict)


def _ort_session(path, threads: int, providers: list[str]):
    from ..session import _ort, session_options

    return _ort().InferenceSession(str(path), sess_options=session_options(threads), providers=providers)


class PromptSession:
    """The loaded model(s) of a ``task: promptable`` plugin.

    Parameters
    ----------
    spec : PluginSpec
    provider : {"auto", "cpu", "cuda"}
    threads : int, optional
        ONNX Runtime intra-op threads (default: the saved settings).
    cache : EmbeddingCache, optional
        Shared encoder cache (default: a new one of 512 MB).
    """

    def __init__(self, spec: PluginSpec, *, provider: str = "auto", threads: int | None = None,
                 cache: EmbeddingCache | None = None):
        from ..checksum import verify_sha256
        from ..session import _fold, _ort_errors, resolve_providers

        if spec.task != "promptable" or spec.prompt is None:
            raise PluginError(f"{spec.id} is a {spec.task} model, not a promptable one (task: promptable)",
                              path=str(spec.manifest_path))
        self.spec = spec
        self.prompt = spec.prompt
        self.cache = cache if cache is not None else EmbeddingCache(DEFAULT_MAX_BYTES)
        if threads is None:
            from ...core.settings import load_settings

            threads = load_settings().intra_op_threads
        providers = resolve_providers(spec.runtime.providers, provider)
        verify_sha256(spec)
        try:
            self.model = _ort_session(spec.model_path, threads, providers)
            self.decoder = None
            decoder = self.prompt.decoder
            if self.prompt.kind == "encoder_decoder" and decoder is not None:  # the spec requires one there
                dpath = (spec.folder / decoder.file).resolve()
                if file_sha256(dpath) != decoder.sha256:
                    raise spec.error("prompt.decoder.sha256", f"{decoder.file} has sha256 "
                                     f"{file_sha256(dpath)}, the manifest says {decoder.sha256}")
                self.decoder = _ort_session(dpath, threads, providers)
        except _ort_errors() as exc:
            raise spec.error("model.file", f"cannot load: {_fold(exc)}") from exc
        self._errors = _ort_errors()
        inputs = self.model.get_inputs()
        self.input_name = spec.input.name or inputs[0].name
        if self.input_name not in [i.name for i in inputs]:
            raise spec.error("input.name", f"graph has no input {self.input_name!r}")
        # input.dtype may be left out (read from the graph, as the Engine does)
        from ..session import _ORT_TYPES

        node = next(i for i in inputs if i.name == self.input_name)
        declared = spec.input.dtype
        self.input_dtype = np.dtype(declared if declared else _ORT_TYPES.get(node.type, np.float32))
        self._lock = threading.Lock()
        self._last_plane: tuple[tuple, np.ndarray, np.ndarray] | None = None

    # -- shared -----------------------------------------------------------------------------------
    def _plane(self, image: ImageVolume, index: int, *, keep: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(raw plane, model-unit plane ``(h, w)`` or ``(h, w, C)`` float32) of slice ``index``; ``keep``: the
        last one is kept (and reused while the slice's content is the same)."""
        if not 0 <= index < image.n_slices:
            raise PromptError(f"slice {index} is outside the image's 0..{image.n_slices - 1}")
        raw = image.slice(index)
        # prompt-channel models keep the last slice's plane: at 2048² its normalisation (percentiles, float
        # copy) is about half of a click's time (24 of 45 ms, measured), and every click asks for it again.
        # Encoder models need not: their embedding cache already spares a click the whole plane.
        key = (id(image), index, image.window, content_key(raw)) if keep else None
        last = self._last_plane
        if key is not None and last is not None and last[0] == key:
            return last[1], last[2]
        plane, _ = plane_to_model_color(raw, self.spec.input.color)
        imap = intensity_map(self.spec, image, plane)
        x = plane.astype(np.float32)
        if imap.clip is not None:
            np.clip(x, imap.clip[0], imap.clip[1], out=x)
        if x.ndim == 3:
            x = x * imap.a + imap.b
        else:
            x = x * float(imap.a[0]) + float(imap.b[0])
        if self.spec.input.channels == 3 and x.ndim == 2:
            x = np.repeat(x[:, :, None], 3, axis=2)
        x = x.astype(np.float32, copy=False)
        if key is not None:
            x.flags.writeable = False  # shared by the next clicks: nobody may write into it
            self._last_plane = (key, raw, x)
        return raw, x

    def _spacing(self, image: ImageVolume) -> tuple[float, float]:
        return (image.spacing[1], image.spacing[2]) if self.prompt.isotropic else (1.0, 1.0)

    def _run(self, sess, feeds: dict, names=None):
        try:
            outs = sess.run(names, feeds)
        except self._errors as exc:
            from ..session import _fold

            raise InferenceError(f"model failed at run time: {_fold(exc)}", path=self.spec.id) from exc
        for arr in outs:
            if np.asarray(arr).dtype.kind == "f" and not np.isfinite(arr).all():
                raise InferenceError("the model output contains NaN or Inf", path=self.spec.id)
        return outs

    # -- encoder/decoder --------------------------------------------------------------------------
    def embed(self, image: ImageVolume, index: int) -> tuple[dict[str, np.ndarray], bool, float]:
        """The encoder output for slice ``index`` (cached): ``(outputs, was cached, encoder ms)``."""
        if not 0 <= index < image.n_slices:
            raise PromptError(f"slice {index} is outside the image's 0..{image.n_slices - 1}")
        # the key hashes the stored values: a cache hit costs neither the normalisation nor the encoder
        key = (self.spec.sha256, content_key(image.slice(index)), index, self._spacing(image))
        hit = self.cache.get(key)
        if hit is not None:
            return hit, True, 0.0
        t0 = time.perf_counter()
        _, plane = self._plane(image, index)
        lb = Letterbox.fit(plane.shape[:2], self.prompt.size, pad=self.prompt.pad, spacing=self._spacing(image))
        x = lb.image(plane, self.spec.input.pad_value)
        x = (x[None, None] if x.ndim == 2 else np.moveaxis(x, -1, 0)[None]).astype(self.input_dtype)
        outs = self.model.get_outputs()
        names = [o.name for o in outs]
        want = self.prompt.embedding or names[0]
        if want not in names:
            raise self.spec.error("prompt.embedding", f"encoder has no output {want!r} ({', '.join(names)})")
        values = self._run(self.model, {self.input_name: x})
        emb = {n: np.asarray(v) for n, v in zip(names, values)}
        self.cache.put(key, emb)
        return emb, False, (time.perf_counter() - t0) * 1000.0

    def _decode(self, image, index, prompt: Prompt, previous: PromptResult | None) -> PromptResult:
        p = self.prompt
        emb, cached, enc_ms = self.embed(image, index)
        h, w = image.plane_shape
        lb = Letterbox.fit((h, w), p.size, pad=p.pad, spacing=self._spacing(image))
        coords, labels = [], []
        for c in prompt.clicks:
            y, x = lb.to_model(c.y, c.x)
            coords.append((x, y))
            labels.append(1.0 if c.include else 0.0)
        if prompt.box is not None:
            x0, y0, x1, y1 = prompt.box
            ya, xa = lb.to_model(y0, x0)
            yb, xb = lb.to_model(y1, x1)
            coords += [(xa, ya), (xb, yb)]
            labels += [float(p.box_labels[0]), float(p.box_labels[1])]
        elif p.pad_point:
            coords.append((0.0, 0.0))
            labels.append(-1.0)
        names = p.inputs
        emb_value = emb[p.embedding or next(iter(emb))]
        feeds = {names.embedding: emb_value,
                 names.point_coords: np.asarray(coords, np.float32)[None],
                 names.point_labels: np.asarray(labels, np.float32)[None]}
        prev_low = previous.low_res if previous is not None else None
        have_prev = prev_low is not None
        if names.mask_input:
            feeds[names.mask_input] = (prev_low if prev_low is not None else
                                       np.zeros((1, 1, p.mask_input_size, p.mask_input_size), np.float32))
        if names.has_mask_input:
            feeds[names.has_mask_input] = np.asarray([1.0 if have_prev else 0.0], np.float32)
        if names.orig_im_size:
            feeds[names.orig_im_size] = np.asarray([h, w], np.float32)
        want = [p.outputs.masks] + [n for n in (p.outputs.scores, p.outputs.low_res) if n]
        t0 = time.perf_counter()
        outs = dict(zip(want, self._run(self.decoder, feeds, want)))
        masks = np.asarray(outs[p.outputs.masks], np.float32)
        masks = masks.reshape((-1,) + masks.shape[-2:])
        best = 0
        if p.outputs.scores and masks.shape[0] > 1:
            best = int(np.argmax(np.asarray(outs[p.outputs.scores]).reshape(-1)))
        logits = masks[best] if p.masks_frame == "original" else lb.back(masks[best])
        if logits.shape != (h, w):
            raise InferenceError(f"decoder mask is {list(logits.shape)}, the slice is [{h}, {w}]", path=self.spec.id)
        low = None
        if p.outputs.low_res:
            lr = np.asarray(outs[p.outputs.low_res], np.float32)
            lr = lr.reshape((-1,) + lr.shape[-2:])
            low = lr[min(best, lr.shape[0] - 1)][None, None]
        dec_ms = (time.perf_counter() - t0) * 1000.0
        return PromptResult(logits > p.mask_threshold, logits, index, low, enc_ms, dec_ms, cached)

    # -- prompt channels --------------------------------------------------------------------------
    def _channels(self, image, index, prompt: Prompt, previous: PromptResult | None) -> PromptResult:
        p = self.prompt
        t0 = time.perf_counter()
        _, plane = self._plane(image, index, keep=True)
        prev = previous.mask if previous is not None and previous.index == index else None
        x, box, lb = channel_input(plane, prompt, prev, size=p.size, context=p.context, min_size=p.min_size,
                                   first_size=p.first_size, encoding=p.encoding, radius=p.radius,
                                   use_previous=p.previous_mask, pad=p.pad, spacing=self._spacing(image))
        out = self._run(self.model, {self.input_name: x[None].astype(self.input_dtype)})[0]
        out = np.asarray(out, np.float32)
        crop_logits = lb.back(out.reshape(out.shape[-2:]))
        y0, x0, y1, x1 = box
        logits = np.full(plane.shape[:2], -1e4, np.float32)  # outside the crop: background
        logits[y0:y1, x0:x1] = crop_logits
        return PromptResult(logits > p.mask_threshold, logits, index, None, 0.0,
                            (time.perf_counter() - t0) * 1000.0, False, box)

    def predict(self, image: ImageVolume, prompt: Prompt, *, index: int | None = None,
                previous: PromptResult | None = None) -> PromptResult:
        """The mask of one slice for ``prompt``.

        Parameters
        ----------
        image : ImageVolume
        prompt : Prompt
            Clicks in order (their ``z``, when given, must all name the slice) and an optional box.
        index : int, optional
            The slice; default: the clicks' ``z``, else 0.
        previous : PromptResult, optional
            The result of the previous click on this slice (its mask or logits feed the model).

        Raises
        ------
        PromptError
            No click nor box, a click outside the image, clicks on different slices.
        InferenceError
            The model failed at run time.
        """
        if prompt.is_empty():
            raise PromptError("a prompt needs at least one click or a box")
        zs = {c.z for c in prompt.clicks if c.z is not None}
        if len(zs) > 1:
            raise PromptError(f"clicks on several slices {sorted(zs)}: one prompt segments one slice")
        if index is None:
            index = zs.pop() if zs else 0
        elif zs and zs != {index}:
            raise PromptError(f"clicks on slice {sorted(zs)[0]}, segmenting slice {index}")
        check_prompt(prompt, image.plane_shape)
        if self.prompt.kind == "channels" and not any(c.include for c in prompt.clicks) and prompt.box is None:
            raise PromptError("the first click must include (:+): exclude clicks alone select nothing")
        with self._lock:  # one ONNX run at a time per session; the GUI worker and prefetch share it
            if self.prompt.kind == "encoder_decoder":
                return self._decode(image, index, prompt, previous)
            return self._channels(image, index, prompt, previous)


_SESSIONS: dict[tuple, PromptSession] = {}
_SESSIONS_LOCK = threading.Lock()


def prompt_session(spec: PluginSpec, provider: str = "auto") -> PromptSession:
    """The (cached) :class:`PromptSession` of a plugin."""
    key = (str(spec.model_path), spec.sha256, provider)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = PromptSession(spec, provider=provider)
        return _SESSIONS[key]


def segment_with_prompt(spec: PluginSpec, image: ImageVolume, prompt: Prompt, *, index: int | None = None,
                        provider: str = "auto") -> PromptResult:
    """Clicks applied in order, each seeing the previous one's result (what a user clicking does)."""
    session = prompt_session(spec, provider)
    result = None
    include_seen = False
    for k in range(len(prompt.clicks)):
        include_seen |= prompt.clicks[k].include
        if not include_seen and prompt.box is None:
            continue
        result = session.predict(image, Prompt(prompt.clicks[:k + 1], prompt.box), index=index, previous=result)
    if result is None:
        result = session.predict(image, prompt, index=index)
    return result
