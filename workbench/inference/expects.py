"""What a plugin was made for (``meta.expects`` of ``plugin.yaml``) and the check of an image against it.

A model answers confidently on any array it is given; a T1 brain segmenter run on a colour photograph
still returns "grey matter 31 %". ``meta.expects`` lets the author say which images the model was trained
on, and :func:`check_image` lists, one short line each, how an image falls outside. The run still
happens: the reasons become a warning (command line stderr, ``"warnings"`` in the JSON and the batch
summary, a line in the report, a badge in the GUI), never a refusal.

Fields (all optional; docs/PLUGINS.md)::

    meta:
      expects:
        modality: [MR]          # DICOM modality codes; an image whose modality is unknown (PNG) passes
        channels: 1             # 1 (grayscale) or 3 (colour; RGBA counts as 3)
        bit_depth: [8, 16]      # stored sample size: 8 (u)int8, 16 (u)int16, 32 float32 / (u)int32
        min_size: 64            # the shorter side of a slice, pixels
        max_size: 4096          # the longer side of a slice, pixels
        intensity:              # an envelope of input statistics, in stored values, channels pooled
          p1: [lo, hi]          # the 1st percentile must lie in [lo, hi]
          p99: [lo, hi]         # the 99th percentile
          mean: [lo, hi]        # the mean

The statistics are computed over the finite values of every slice (at most ~1 M samples, evenly
strided, so that a large volume costs milliseconds).
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.image import ImageVolume

#: samples the statistics look at, at most (an even stride over the array)
MAX_SAMPLES = 1 << 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _range(value: Any) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"must be [low, high], got {value!r}")
    lo, hi = (float(v) for v in value)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise ValueError(f"must be [low, high] with finite low <= high, got {list(value)!r}")
    return lo, hi


class IntensityEnvelope(_Strict):
    """Ranges of input statistics seen at training time (stored values, channels pooled)."""

    p1: tuple[float, float] | None = None
    p99: tuple[float, float] | None = None
    mean: tuple[float, float] | None = None

    @field_validator("p1", "p99", "mean", mode="before")
    @classmethod
    def _pair(cls, value: Any) -> Any:
        return None if value is None else _range(value)


class Expects(_Strict):
    """``meta.expects``: what the model was made for."""

    modality: list[str] | None = None
    channels: Literal[1, 3] | None = None
    bit_depth: list[Literal[8, 16, 32]] | None = None
    min_size: int | None = Field(default=None, ge=1)
    max_size: int | None = Field(default=None, ge=1)
    intensity: IntensityEnvelope | None = None

    @field_validator("modality", mode="before")
    @classmethod
    def _modalities(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if value is not None and (not value or not all(isinstance(v, str) and v.strip() for v in value)):
            raise ValueError(f"must be a list of DICOM modality codes such as [MR, CT], got {value!r}")
        return None if value is None else [v.strip().upper() for v in value]


def parse_expects(raw: Any) -> Expects | None:
    """Validate a ``meta.expects`` mapping (``None`` when absent).

    Raises
    ------
    ValueError
        ``"<field>: <message>"`` naming the field under ``meta.expects`` (the caller adds the file).
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError(f"must be a mapping of fields, got {type(raw).__name__}")
    try:
        exp = Expects.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (modality, channels, bit_depth, min_size, max_size, intensity; docs/PLUGINS.md)"
        elif err["type"] == "literal_error":
            msg = f"{msg}, got {err.get('input')!r}"
        msg = msg.removeprefix("Value error, ")
        raise ValueError(f"{loc}: {msg}" if loc else msg) from None
    if exp.min_size is not None and exp.max_size is not None and exp.min_size > exp.max_size:
        raise ValueError(f"min_size: {exp.min_size} is larger than max_size {exp.max_size}")
    return exp


def expects_of(spec: Any) -> Expects | None:
    """The validated ``meta.expects`` of a plugin (``PluginSpec``); a :class:`PluginError` naming the
    manifest and the field when it is malformed."""
    meta = getattr(spec, "meta", None) or {}
    try:
        return parse_expects(meta.get("expects"))
    except ValueError as exc:
        text = str(exc)
        field, sep, message = text.partition(": ")
        if sep and " " not in field:
            raise spec.error(f"meta.expects.{field}", message) from None
        raise spec.error("meta.expects", text) from None


def _bit_depth(dtype: np.dtype) -> int:
    return 8 if dtype.itemsize == 1 else 16 if dtype.itemsize == 2 else 32


def _num(value: float) -> str:
    return f"{value:.4g}"


def _sample(data: np.ndarray) -> np.ndarray:
    flat = data.reshape(-1)
    step = max(1, flat.size // MAX_SAMPLES)
    values = flat[::step].astype(np.float64, copy=False)
    return values[np.isfinite(values)]


def check_image(expects: Expects | None, image: ImageVolume) -> list[str]:
    """How ``image`` falls outside what the plugin was made for: one short line per declared field it
    fails (empty when it fits, or when nothing is declared).

    Parameters
    ----------
    expects : Expects or None
        The plugin's ``meta.expects`` (:func:`expects_of`).
    image : ImageVolume
        The image the plugin is about to run on.

    Returns
    -------
    list of str
        Reasons such as ``"3 channels (colour), made for 1 (grayscale)"``.
    """
    if expects is None:
        return []
    reasons: list[str] = []
    if expects.modality and image.modality:  # a plain image says nothing about its modality
        if image.modality.upper() not in expects.modality:
            reasons.append(f"modality {image.modality}, made for {', '.join(expects.modality)}")
    if expects.channels is not None:
        have = 1 if image.channels == 1 else 3
        if have != expects.channels:
            names = {1: "grayscale", 3: "colour"}
            reasons.append(f"{have} channels ({names[have]}), made for {expects.channels} "
                           f"({names[expects.channels]})")
    if expects.bit_depth:
        depth = _bit_depth(image.data.dtype)
        if depth not in expects.bit_depth:
            made = "/".join(str(b) for b in expects.bit_depth)
            reasons.append(f"{depth}-bit samples ({image.data.dtype}), made for {made}-bit")
    h, w = image.plane_shape
    if expects.min_size is not None and min(h, w) < expects.min_size:
        reasons.append(f"{w}x{h} pixels, smaller than the {expects.min_size}-pixel side it was made for")
    if expects.max_size is not None and max(h, w) > expects.max_size:
        reasons.append(f"{w}x{h} pixels, larger than the {expects.max_size}-pixel side it was made for")
    env = expects.intensity
    if env is not None and (env.p1 or env.p99 or env.mean):
        reasons.extend(_intensity_reasons(env, image.data))
    return reasons


def _intensity_reasons(env: IntensityEnvelope, data: np.ndarray) -> list[str]:
    values = _sample(data)
    if values.size == 0:
        return ["no finite pixel values (all NaN or infinite)"]
    p1, p99 = (float(v) for v in np.percentile(values, [1.0, 99.0]))
    if float(values.min()) == float(values.max()):
        return [f"a constant image (every value {_num(float(values[0]))})"]
    reasons = []
    for name, value, bounds in (("1st percentile", p1, env.p1), ("99th percentile", p99, env.p99),
                                ("mean", float(values.mean()), env.mean)):
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            reasons.append(f"{name} {_num(value)} outside the training range "
                           f"[{_num(bounds[0])}, {_num(bounds[1])}]")
    return reasons


def warning_line(image_name: str, plugin_id: str, reasons: list[str]) -> str:
    """The one warning line of the command line for an image outside the plugin's envelope."""
    return f"{image_name}: outside what {plugin_id} was made for: {'; '.join(reasons)}"
