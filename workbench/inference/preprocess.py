"""Preprocessing exactly as a plugin declares it, plus the geometry needed to map outputs back.

One slice at a time: colour (gray/rgb/bgr/luma) -> resize (stretch/letterbox/letterbox_topleft/none, or
tiles) in raw units -> intensity (window/percentile/"dicom", scale, offset, mean/std) -> layout and dtype.

Speed notes (measured, see tests/bench): resizing happens on the native dtype before the float conversion
(cv2 is fastest on uint8/uint16 and the model input is usually smaller than the image); the whole
intensity chain (window, scale, offset, mean, std) is folded into one affine ``a*x + b`` per channel with an
optional clip, applied once while writing into the preallocated tensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..core.errors import InferenceError
from ..core.image import ImageVolume
from .spec import PluginSpec

# cv2.resize handles these natively; anything else (int32, bool, float64 huge) goes through float32.
_CV_RESIZE_DTYPES = (np.uint8, np.uint16, np.int16, np.float32)
# ITU-R BT.601 luma weights, the ones YCbCr super-resolution models are trained with.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class Geometry:
    """How one original plane of ``src_hw`` sits in the model input of ``dst_hw``.

    The image content covers rows ``pad[0] : pad[0] + content_hw[0]`` and columns
    ``pad[1] : pad[1] + content_hw[1]`` of the model input; ``scale`` = model px / original px.
    """

    src_hw: tuple[int, int]
    dst_hw: tuple[int, int]
    content_hw: tuple[int, int]
    pad: tuple[int, int] = (0, 0)
    mode: str = "none"

    @property
    def scale(self) -> tuple[float, float]:
        return (self.content_hw[0] / self.src_hw[0], self.content_hw[1] / self.src_hw[1])

    def boxes_to_source(self, boxes: np.ndarray) -> np.ndarray:
        """``(N, 4)`` xyxy boxes in model-input pixels -> original pixels, clipped to the image."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
        sy, sx = self.scale
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad[1]) / sx
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad[0]) / sy
        h, w = self.src_hw
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        return boxes

    def crop_content(self, arr: np.ndarray, *, channel_first: bool = False) -> np.ndarray:
        """The image region of an array covering the whole model input (``(h, w, ...)`` or ``(c, h, w)``).

        The array may be larger (super-resolution) or smaller (a stride-4 segmentation head) than the
        model input: the padding is scaled by the array's size ratio.
        """
        ah, aw = (arr.shape[1], arr.shape[2]) if channel_first else (arr.shape[0], arr.shape[1])
        fy, fx = ah / self.dst_hw[0], aw / self.dst_hw[1]
        t, left = int(round(self.pad[0] * fy)), int(round(self.pad[1] * fx))
        b, r = int(round((self.pad[0] + self.content_hw[0]) * fy)), int(round((self.pad[1] + self.content_hw[1]) * fx))
        b, r = max(b, t + 1), max(r, left + 1)
        if channel_first:
            return arr[:, t:b, left:r]
        return arr[t:b, left:r]

    def to_source(self, arr: np.ndarray, *, factor: int = 1, nearest: bool = False) -> np.ndarray:
        """A dense ``(h, w[, c])`` array covering the model input -> ``(H*factor, W*factor[, c])``.

        Padding is cropped, then the content is resized back (nearest for class ids, linear otherwise).
        """
        content = self.crop_content(arr)
        out_h, out_w = self.src_hw[0] * factor, self.src_hw[1] * factor
        if content.shape[:2] == (out_h, out_w):
            return content
        return resize_plane(content, (out_h, out_w), nearest=nearest)


@dataclass
class IntensityMap:
    """The folded intensity chain: ``model = clip(raw, lo, hi) * a[c] + b[c]``.

    ``a0``/``b0`` are the affine before mean/std (used to map restoration outputs back to raw units).
    """

    a: np.ndarray  # (C,) float32
    b: np.ndarray
    a0: float | np.ndarray  # (C,) with standardize on a colour image
    b0: float | np.ndarray
    clip: tuple[float, float] | tuple[np.ndarray, np.ndarray] | None = None  # (C,) bounds: packages only

    def apply_scalar(self, value: float, channel: int = 0) -> float:
        if self.clip is not None:
            lo, hi = (np.asarray(v, np.float64).reshape(-1) for v in self.clip)  # per channel (packages)
            value = min(max(value, lo[min(channel, lo.size - 1)]), hi[min(channel, hi.size - 1)])
        return float(value * self.a[channel] + self.b[channel])

    def to_raw(self, values: np.ndarray) -> np.ndarray:
        """Model units (before mean/std) -> raw units, in place on a float32 array."""
        if np.any(np.asarray(self.a0) == 0):
            raise InferenceError("intensity scale is 0: cannot map the model output back")
        values -= self.b0
        values *= 1.0 / self.a0
        return values


@dataclass
class PreparedPlane:
    """One slice ready for the model: the input tensor (or tiles) plus what decoding needs."""

    index: int
    geometry: Geometry
    intensity: IntensityMap
    tensor: np.ndarray | None = None  # (1, C, h, w) or (1, h, w, C) for whole-image modes
    tiles: list[tuple[int, int]] = field(default_factory=list)  # tile origins (y, x) for resize: tile
    tile_source: np.ndarray | None = None  # (H', W', C) float32 model units, padded to >= tile size
    chroma: np.ndarray | None = None  # (H, W, 2) colour differences (R-Y, B-Y) for luma models
    source_dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    source_shape: tuple[int, ...] = ()

    @property
    def n_steps(self) -> int:
        return max(1, len(self.tiles))


# -- helpers --------------------------------------------------------------------------------------
def resize_plane(arr: np.ndarray, hw: tuple[int, int], *, nearest: bool = False) -> np.ndarray:
    """cv2.resize to ``(height, width)`` for ``(h, w)`` or ``(h, w, c)`` arrays of any dtype.

    INTER_AREA when shrinking (no aliasing), INTER_LINEAR when enlarging, INTER_NEAREST for labels.
    """
    h, w = int(hw[0]), int(hw[1])
    if arr.shape[:2] == (h, w):
        return arr
    src = arr
    if src.dtype.type not in _CV_RESIZE_DTYPES and not (nearest and src.dtype == np.int32):
        src = src.astype(np.float32)
    sh, sw = src.shape[:2]
    if nearest:
        interp = cv2.INTER_NEAREST
    elif h < sh and w < sw:
        # Shrinking needs area averaging against aliasing, but cv2's INTER_AREA is ~15x slower for
        # non-integer factors (2.8 ms vs 0.19 ms for 640x480 RGB -> 224, measured). Exact integer
        # block averaging first (its fast path, same pixel-centre geometry) then linear for the rest
        # (< 2x) gives the same result at the fast path's cost.
        k = int(min(sh / h, sw / w))
        if k >= 2 and sh % k == 0 and sw % k == 0:
            src = cv2.resize(np.ascontiguousarray(src), (sw // k, sh // k), interpolation=cv2.INTER_AREA)
            if src.ndim == 2 and arr.ndim == 3:
                src = src[..., np.newaxis]
            if src.shape[:2] == (h, w):
                return src
            interp = cv2.INTER_LINEAR
        else:
            interp = cv2.INTER_AREA if k >= 2 else cv2.INTER_LINEAR
    else:
        interp = cv2.INTER_LINEAR
    if src.ndim == 3 and src.shape[2] > 4:
        # cv2 supports at most 4 channels for some interpolations (CV_CN_MAX is 512 but AREA is limited)
        return np.stack([cv2.resize(np.ascontiguousarray(src[..., i]), (w, h), interpolation=interp)
                         for i in range(src.shape[2])], axis=-1)
    out = cv2.resize(np.ascontiguousarray(src), (w, h), interpolation=interp)
    if src.ndim == 3 and out.ndim == 2:
        out = out[..., np.newaxis]
    return out


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def plane_to_model_color(plane: np.ndarray, color: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Reduce/expand a ``(H, W)`` or ``(H, W, 3|4)`` RGB(A) plane to what the model sees.

    Returns ``(array, chroma)``: ``array`` is ``(H, W)`` (one channel) or ``(H, W, 3)`` in model channel
    order; ``chroma`` is ``(H, W, 2)`` float32 ``(R-Y, B-Y)`` for luma models of colour images.
    Gray images fed to RGB models stay one channel here; the tensor writer broadcasts them (3x less work).
    """
    if plane.ndim == 3 and plane.shape[2] == 4:
        plane = plane[..., :3]  # alpha carries no image content for any of our tasks
    is_color = plane.ndim == 3
    if color == "gray":
        if not is_color:
            return plane, None
        src = plane if plane.dtype.type in (np.uint8, np.uint16, np.float32) else plane.astype(np.float32)
        return cv2.cvtColor(np.ascontiguousarray(src), cv2.COLOR_RGB2GRAY), None
    if color == "rgb":
        return plane, None
    if color == "bgr":
        return (plane[..., ::-1] if is_color else plane), None
    # luma: hand-written BT.601 because cv2's YCrCb adds a dtype-dependent offset (128 / 32768 / 0.5)
    # that is wrong for raw-scale float or HU images; colour differences need no offset at all.
    if not is_color:
        return plane, None
    rgb = plane.astype(np.float32)
    y = rgb @ _LUMA
    chroma = np.empty(plane.shape[:2] + (2,), dtype=np.float32)
    np.subtract(rgb[..., 0], y, out=chroma[..., 0])
    np.subtract(rgb[..., 2], y, out=chroma[..., 1])
    return y, chroma


def luma_to_rgb(y: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """Inverse of the luma split: ``Y`` plus ``(R-Y, B-Y)`` -> float32 RGB ``(H, W, 3)``."""
    out = np.empty(y.shape[:2] + (3,), dtype=np.float32)
    np.add(y, chroma[..., 0], out=out[..., 0])
    np.add(y, chroma[..., 1], out=out[..., 2])
    # G from Y = 0.299 R + 0.587 G + 0.114 B
    out[..., 1] = (y - _LUMA[0] * out[..., 0] - _LUMA[2] * out[..., 2]) / _LUMA[1]
    return out


def intensity_map(spec: PluginSpec, image: ImageVolume, plane: np.ndarray, *, colour: bool | None = None
                  ) -> IntensityMap:
    """Fold the manifest's intensity chain into ``clip(raw, lo, hi) * a + b`` for this plane.

    In this order: ``clip`` (raw units); ``window`` (or ``"dicom"``: the image's VOI window, else its
    robust default window) or ``percentile`` (of this plane, NaN ignored) mapping ``[lo, hi]`` to
    ``[0, 1]`` with clipping; ``x * scale + offset``; ``standardize`` (``(x - mean(x)) / (std(x) + eps)``
    with the statistics of this plane -- of the whole volume for 3-D models -- per channel); then
    ``(x - mean) / std`` per channel. Every step is affine after the clip, so the whole chain is one
    clip and one ``a * x + b`` per channel. ``colour``: the last axis of ``plane`` holds channels
    (default: ``plane.ndim == 3``; 3-D models pass their volume and say so).
    """
    if getattr(spec, "_package", None) is not None:  # a bioimage.io package: its own processing chain
        from .bioimageio import fold_preprocessing

        return fold_preprocessing(spec, plane, colour=plane.ndim == 3 if colour is None else colour)
    spec_i = spec.input.intensity
    lo: float | None = None
    hi: float | None = None
    if spec_i.window == "dicom":
        center, width = image.window if image.window is not None and image.window[1] > 0 \
            else image.default_window()
        lo, hi = center - width / 2.0, center + width / 2.0
    elif spec_i.window is not None:
        lo, hi = float(spec_i.window[0]), float(spec_i.window[1])
    elif spec_i.percentile is not None:
        flat = plane.reshape(-1)
        if flat.size > 1_000_000:  # a strided subsample gives the same percentiles ~10x faster
            flat = flat[:: flat.size // 1_000_000]
        if flat.dtype.kind == "f":
            flat = flat[np.isfinite(flat)]
        if spec_i.clip is not None:  # percentiles of the clipped image = the clipped percentiles
            flat = np.clip(flat, spec_i.clip[0], spec_i.clip[1])
        if flat.size == 0:
            lo, hi = 0.0, 1.0
        else:
            lo, hi = (float(v) for v in np.percentile(flat, spec_i.percentile))
        if hi <= lo:
            hi = lo + 1.0  # constant image: everything maps to 0 instead of dividing by zero
    a0, b0 = 1.0, 0.0
    clip: tuple[float, float] | None = None
    if lo is not None and hi is not None:
        a0, b0 = 1.0 / (hi - lo), -lo / (hi - lo)
        clip = (lo, hi)
    # wave 2: intensity.clip in raw units, before everything else (intersected with the window's clip)
    if spec_i.clip is not None:
        c_lo, c_hi = float(spec_i.clip[0]), float(spec_i.clip[1])
        clip = (c_lo, c_hi) if clip is None else (max(c_lo, clip[0]), max(max(c_lo, clip[0]), min(c_hi, clip[1])))
    scale = 1.0 if spec_i.scale is None else float(spec_i.scale)
    offset = 0.0 if spec_i.offset is None else float(spec_i.offset)
    a0, b0 = a0 * scale, b0 * scale + offset
    channels = spec.input.channels
    if spec_i.standardize:
        # y = a0 * clip(x) + b0 has mean a0 * m + b0 and std |a0| * s: fold (y - mean) / (std + eps) in
        from .normalize import channel_stats

        m, sd = channel_stats(plane, channels=channels, clip=clip,
                              colour=plane.ndim == 3 if colour is None else colour)
        denom = np.abs(a0) * sd + spec_i.eps
        a0, b0 = a0 / denom, (b0 - (a0 * m + b0)) / denom
        if channels == 1:
            a0, b0 = float(a0[0]), float(b0[0])
    mean = np.broadcast_to(np.asarray(spec_i.mean if spec_i.mean is not None else 0.0, np.float64),
                           (channels,))
    std = np.broadcast_to(np.asarray(spec_i.std if spec_i.std is not None else 1.0, np.float64), (channels,))
    a = (np.asarray(a0) / std).astype(np.float32)
    b = ((np.asarray(b0) - mean) / std).astype(np.float32)
    return IntensityMap(a=a, b=b, a0=a0, b0=b0, clip=clip)


def target_geometry(spec: PluginSpec, src_hw: tuple[int, int], graph_hw: tuple[int | None, int | None]
                    ) -> Geometry:
    """Where the plane goes in the model input, from the graph's fixed size, the manifest or the image.

    Raises
    ------
    InferenceError
        ``resize: none`` with an image larger than a fixed graph input.
    """
    h, w = src_hw
    mode = spec.input.resize
    m = spec.input.multiple_of
    gh, gw = graph_hw
    if gh is not None and gw is not None:
        size = (gh, gw)
    elif spec.input.size is not None:
        size = (_round_up(spec.input.size[0], m), _round_up(spec.input.size[1], m))
    else:
        size = None
    if mode == "none" or size is None:
        # native resolution, padded bottom/right to the graph size or the next multiple_of
        dst = size if size is not None else (_round_up(h, m), _round_up(w, m))
        if gh is not None and h > gh or gw is not None and w > gw:
            raise InferenceError(f"image of {h}x{w} pixels does not fit the model input {gh}x{gw} "
                                 "(resize: none); use resize: stretch, letterbox or tile")
        dst = (gh or dst[0], gw or dst[1])
        return Geometry(src_hw, dst, (h, w), (0, 0), "none")
    th, tw = size
    if mode == "stretch":
        return Geometry(src_hw, (th, tw), (th, tw), (0, 0), mode)
    r = min(th / h, tw / w)
    nh, nw = max(1, min(th, round(h * r))), max(1, min(tw, round(w * r)))
    if mode == "letterbox":
        pad = ((th - nh) // 2, (tw - nw) // 2)
    else:  # letterbox_topleft
        pad = (0, 0)
    return Geometry(src_hw, (th, tw), (nh, nw), pad, mode)


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of overlapping tiles covering ``length`` (the last one flush with the end)."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _write_tensor(buf_view: np.ndarray, content: np.ndarray, imap: IntensityMap, layout: str,
                  dtype: np.dtype) -> None:
    """Write ``content`` ((h, w) or (h, w, C)) into ``buf_view`` ((C, h, w) or (h, w, C)) through the
    intensity map, without intermediate full-size float copies where possible."""
    src = content
    if imap.clip is not None:
        src = np.clip(src, imap.clip[0], imap.clip[1], dtype=np.float32) if src.dtype != np.float32 \
            else np.clip(src, imap.clip[0], imap.clip[1])
    channels = imap.a.shape[0]
    float_out = dtype.kind == "f"
    for c in range(channels):
        plane = src if src.ndim == 2 else src[..., c if src.shape[2] > 1 else 0]
        dst = buf_view[c] if layout == "NCHW" else buf_view[..., c]
        a, b = imap.a[c], imap.b[c]
        if float_out:
            if a == 1.0 and b == 0.0:
                dst[...] = plane
            else:
                np.multiply(plane, a, out=dst, casting="unsafe")
                dst += b
        else:
            vals = plane.astype(np.float32) * a + b if (a != 1.0 or b != 0.0) else plane
            info = np.iinfo(dtype)
            dst[...] = np.clip(np.rint(vals) if np.asarray(vals).dtype.kind == "f" else vals, info.min, info.max)


def prepare_plane(spec: PluginSpec, image: ImageVolume, index: int, *, graph_hw: tuple[int | None, int | None],
                  dtype: np.dtype) -> PreparedPlane:
    """Preprocess slice ``index`` of ``image`` for the model.

    Parameters
    ----------
    spec : PluginSpec
    image : ImageVolume
    index : int
        Slice index.
    graph_hw : (int or None, int or None)
        The graph input's fixed height/width (``None`` = dynamic).
    dtype : numpy dtype
        The graph input's element type.

    Returns
    -------
    PreparedPlane
    """
    raw = image.slice(index)
    if raw.dtype == np.bool_:
        raw = raw.astype(np.uint8)
    plane, chroma = plane_to_model_color(raw, spec.input.color)
    imap = intensity_map(spec, image, plane)
    layout = spec.input.layout
    channels = spec.input.channels
    src_hw = (int(plane.shape[0]), int(plane.shape[1]))
    if spec.input.resize == "tile":
        return _prepare_tiles(spec, plane, imap, index, chroma, raw, src_hw)
    geo = target_geometry(spec, src_hw, graph_hw)
    th, tw = geo.dst_hw
    shape = (1, channels, th, tw) if layout == "NCHW" else (1, th, tw, channels)
    tensor = np.empty(shape, dtype=dtype)
    content = resize_plane(plane, geo.content_hw)
    if geo.content_hw != geo.dst_hw:
        for c in range(channels):  # the pad value is a raw value: it goes through the same intensity map
            fill = imap.apply_scalar(spec.input.pad_value, c)
            if layout == "NCHW":
                tensor[0, c] = fill
            else:
                tensor[0, ..., c] = fill
    (t, left), (ch, cw) = geo.pad, geo.content_hw
    view = tensor[0, :, t:t + ch, left:left + cw] if layout == "NCHW" else tensor[0, t:t + ch, left:left + cw, :]
    _write_tensor(view, content, imap, layout, np.dtype(dtype))
    return PreparedPlane(index=index, geometry=geo, intensity=imap, tensor=tensor, chroma=chroma,
                         source_dtype=raw.dtype, source_shape=tuple(raw.shape))


def _prepare_tiles(spec: PluginSpec, plane: np.ndarray, imap: IntensityMap, index: int,
                   chroma: np.ndarray | None, raw: np.ndarray, src_hw: tuple[int, int]) -> PreparedPlane:
    th, tw = spec.input.tile.hw  # type: ignore[union-attr]
    overlap = spec.input.tile.overlap2  # type: ignore[union-attr]
    h, w = src_hw
    ph, pw = max(h, th), max(w, tw)
    channels = spec.input.channels
    full = np.empty((ph, pw, channels), dtype=np.float32)
    _write_tensor(full[:h, :w], plane, imap, "NHWC", np.dtype(np.float32))
    if (ph, pw) != (h, w):
        # mirror small images up to one tile: better context at the border than a constant
        full = cv2.copyMakeBorder(np.ascontiguousarray(full[:h, :w]), 0, ph - h, 0, pw - w,
                                  cv2.BORDER_REFLECT_101 if h > 1 and w > 1 else cv2.BORDER_REPLICATE)
        if full.ndim == 2:
            full = full[..., np.newaxis]
    tiles = [(y, x) for y in tile_origins(ph, th, overlap) for x in tile_origins(pw, tw, overlap)]
    geo = Geometry(src_hw, (ph, pw), src_hw, (0, 0), "tile")
    return PreparedPlane(index=index, geometry=geo, intensity=imap, tiles=tiles, tile_source=full,
                         chroma=chroma, source_dtype=raw.dtype, source_shape=tuple(raw.shape))


def tile_tensor(prepared: PreparedPlane, origin: tuple[int, int], tile_hw: tuple[int, int], layout: str,
                dtype: np.dtype, *, out: np.ndarray | None = None) -> np.ndarray:
    """The model input of one tile (already in model units).

    ``out`` (optional) is a ``(1, C, th, tw)`` / ``(1, th, tw, C)`` array of ``dtype`` to write into and
    return -- the tile loop reuses one buffer instead of allocating a tensor per tile.
    """
    y, x = origin
    th, tw = tile_hw
    patch = prepared.tile_source[y:y + th, x:x + tw]  # type: ignore[index]
    src = patch.transpose(2, 0, 1) if layout == "NCHW" else patch
    if out is not None:
        np.copyto(out[0], src, casting="unsafe")  # the same cast as astype() below
        return out
    tensor = np.ascontiguousarray(src)[np.newaxis]
    return tensor if tensor.dtype == dtype else tensor.astype(dtype)


def blend_weights(starts: list[int], tile: int, overlap: int) -> list[np.ndarray]:
    """1D blending weights of overlapping tiles along one axis that add up to exactly 1 everywhere.

    Parameters
    ----------
    starts : list of int
        Sorted tile start offsets (as :func:`tile_origins` gives them).
    tile : int
        Tile length.
    overlap : int
        Width of the smooth transition between neighbours.

    Returns
    -------
    list of ndarray
        One float32 weight vector of length ``tile`` per start.

    Notes
    -----
    Between tiles ``i`` and ``i + 1`` the weight passes from the first to the second with a raised-cosine
    ramp of width ``min(overlap, shared length)`` centred in the shared stretch (away from both tiles'
    borders, where a model sees the least context). With ``G_i`` the share of the tiles after boundary
    ``i`` (0 before the ramp, 1 after it), tile ``i`` gets ``G_(i-1) - G_i``: the weights telescope to 1
    and are never negative, so the blended tiles need no per-pixel weight sum and no division. For evenly
    spaced tiles (shared stretch == overlap) these are the :func:`tile_weight` ramps. Image borders get
    weight 1.
    """
    n = len(starts)
    length = starts[-1] + tile if n else 0
    coord = np.arange(length, dtype=np.float64)
    shares = [np.ones(length)]  # G_-1: everything belongs to the tiles from 0 on
    for i in range(n - 1):
        a, b = starts[i + 1], starts[i] + tile  # the stretch tiles i and i + 1 share
        width = max(0, min(overlap, b - a))
        t0 = a + max(0, b - a - width) // 2
        if width == 0:
            g = (coord >= t0).astype(np.float64)
        else:
            g = np.clip((coord - t0 + 0.5) / width, 0.0, 1.0)
            g = np.sin(0.5 * np.pi * g) ** 2
        shares.append(g)
    shares.append(np.zeros(length))  # G_last: nothing comes after the last tile
    return [(shares[i] - shares[i + 1])[s:s + tile].astype(np.float32) for i, s in enumerate(starts)]


_WEIGHT_CACHE: dict[tuple, np.ndarray] = {}


def tile_weight(tile_hw: tuple[int, int], overlap: int, edges: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """Blending weight of a tile: 1 inside, a raised-cosine ramp over the overlap on inner sides.

    ``edges`` = (top, bottom, left, right) touches the image border: no ramp there (nothing to blend
    with). Weights are > 0 everywhere, so dividing by the summed weights is always defined; together with
    the smooth ramp this leaves no visible seams. The engine blends with :func:`blend_weights`, which
    equals these ramps for evenly spaced tiles and also sums to 1 next to the flush last tile.
    """
    key = (tile_hw, overlap, edges)
    if key in _WEIGHT_CACHE:
        return _WEIGHT_CACHE[key]

    def ramp(n: int, start_edge: bool, end_edge: bool) -> np.ndarray:
        w = np.ones(n, dtype=np.float32)
        if overlap > 0:
            r = np.sin(0.5 * np.pi * (np.arange(overlap, dtype=np.float32) + 0.5) / overlap) ** 2
            if not start_edge:
                w[:overlap] = r
            if not end_edge:
                w[n - overlap:] = np.minimum(w[n - overlap:], r[::-1])
        return w

    wy = ramp(tile_hw[0], edges[0], edges[1])
    wx = ramp(tile_hw[1], edges[2], edges[3])
    weight = np.outer(wy, wx).astype(np.float32)
    _WEIGHT_CACHE[key] = weight
    return weight
