"""ViewState: how the open document is shown (slice, window, overlays, compare mode). Qt-free.

The document (workbench.core.Document) holds *what* is open; this holds *how* it is displayed. Widgets read
it and write through its setters; every setter emits a past-tense event only when the value changed, so two
widgets bound to the same field (the histogram's W/L region and the canvas' right-drag) cannot ping-pong.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psygnal import Signal

from ..core.image import ImageVolume
from .display import CT_PRESETS

COMPARE_MODES = ("off", "swipe", "side", "difference")


@dataclass
class LabelStyle:
    """Display style of one label: opacity in [0, 1] and outline (contour only) mode."""

    opacity: float = 0.5
    outline: bool = False


class ViewState:
    """Display state of the viewer.

    Events: ``reloaded()`` (a new image: everything changed), ``slice_changed(index)``,
    ``window_changed(center, width)``, ``invert_changed(bool)``, ``overlay_changed()`` (label
    visibility/opacity/outline), ``detections_changed()`` (caption toggle, score filter),
    ``compare_changed()`` (mode, swipe position, active restoration), ``profile_changed()``,
    ``active_label_changed()``, ``segmentation_policy_changed()``.
    """

    slice_changed = Signal(int)
    window_changed = Signal(float, float)
    invert_changed = Signal(bool)
    overlay_changed = Signal()
    detections_changed = Signal()
    compare_changed = Signal()
    profile_changed = Signal()
    reloaded = Signal()
    active_label_changed = Signal()
    segmentation_policy_changed = Signal()

    def __init__(self) -> None:
        # kept across images: user preferences of this session
        self.active_label = 1  # the label value tools paint with
        #: how a SegmentationResult enters the label map: "merge" writes only unlabelled (0) pixels, so
        #: manual edits survive; "replace" overwrites the whole label map (still one undo step)
        self.segmentation_policy = "merge"
        self.reset(None)

    # -- lifecycle --------------------------------------------------------------------------------
    def reset(self, image: ImageVolume | None) -> None:
        """Defaults for a newly opened image, then ``reloaded`` (no per-field events)."""
        self.n_slices = image.n_slices if image is not None else 1
        self.slice_index = self.n_slices // 2 if image is not None else 0
        self.window: tuple[float, float] = image.default_window() if image is not None else (127.5, 255.0)
        self.default_window = self.window
        self.invert = bool(image.invert_display) if image is not None else False
        self.overlay_visible = True
        self.detections_visible = True
        self.overlay_opacity = 1.0  # multiplies every label's own opacity
        self.label_styles: dict[int, LabelStyle] = {}
        self.show_captions = True
        self.score_threshold = 0.0
        self.compare_mode = "off"
        self.swipe = 0.5
        self.restoration = None  # the RestorationResult being compared, or None
        self.profile_line: tuple[tuple[float, float], tuple[float, float]] | None = None  # (x, y) ends
        self.reloaded.emit()

    def set_active_label(self, value: int) -> None:
        """The label value the segmentation tools paint with."""
        if int(value) != self.active_label:
            self.active_label = int(value)
            self.active_label_changed.emit()

    def set_segmentation_policy(self, policy: str) -> None:
        if policy not in ("merge", "replace"):
            raise ValueError(f"segmentation policy must be merge|replace, got {policy!r}")
        if policy != self.segmentation_policy:
            self.segmentation_policy = policy
            self.segmentation_policy_changed.emit()

    # -- slice ------------------------------------------------------------------------------------
    def set_slice(self, index: int) -> None:
        index = int(min(max(index, 0), self.n_slices - 1))
        if index != self.slice_index:
            self.slice_index = index
            self.slice_changed.emit(index)

    def step_slice(self, delta: int) -> None:
        self.set_slice(self.slice_index + int(delta))

    # -- window -----------------------------------------------------------------------------------
    def set_window(self, center: float, width: float) -> None:
        window = (float(center), max(float(width), 1e-3))
        if window != self.window:
            self.window = window
            self.window_changed.emit(*window)

    def apply_preset(self, name: str) -> None:
        """A CT preset by name (see :data:`~workbench.gui.display.CT_PRESETS`) or ``"Default"``."""
        if name == "Default":
            self.set_window(*self.default_window)
        else:
            self.set_window(*CT_PRESETS[name])

    def set_invert(self, invert: bool) -> None:
        if bool(invert) != self.invert:
            self.invert = bool(invert)
            self.invert_changed.emit(self.invert)

    # -- label overlay ----------------------------------------------------------------------------
    def label_style(self, value: int) -> LabelStyle:
        return self.label_styles.setdefault(int(value), LabelStyle())

    def set_label_style(self, value: int, *, opacity: float | None = None, outline: bool | None = None) -> None:
        style = self.label_style(value)
        changed = False
        if opacity is not None and float(opacity) != style.opacity:
            style.opacity = min(max(float(opacity), 0.0), 1.0)
            changed = True
        if outline is not None and bool(outline) != style.outline:
            style.outline = bool(outline)
            changed = True
        if changed:
            self.overlay_changed.emit()

    def set_overlay_visible(self, visible: bool) -> None:
        if bool(visible) != self.overlay_visible:
            self.overlay_visible = bool(visible)
            self.overlay_changed.emit()

    def set_overlay_opacity(self, opacity: float) -> None:
        opacity = min(max(float(opacity), 0.0), 1.0)
        if opacity != self.overlay_opacity:
            self.overlay_opacity = opacity
            self.overlay_changed.emit()

    # -- detections -------------------------------------------------------------------------------
    def set_detections_visible(self, visible: bool) -> None:
        if bool(visible) != self.detections_visible:
            self.detections_visible = bool(visible)
            self.detections_changed.emit()

    def set_show_captions(self, show: bool) -> None:
        if bool(show) != self.show_captions:
            self.show_captions = bool(show)
            self.detections_changed.emit()

    def set_score_threshold(self, threshold: float) -> None:
        threshold = min(max(float(threshold), 0.0), 1.0)
        if threshold != self.score_threshold:
            self.score_threshold = threshold
            self.detections_changed.emit()

    # -- restoration compare ----------------------------------------------------------------------
    def set_compare(self, mode: str | None = None, *, restoration=None, swipe: float | None = None) -> None:
        """Change the compare mode (``off|swipe|side|difference``), the compared result or the swipe."""
        changed = False
        if mode is not None:
            if mode not in COMPARE_MODES:
                raise ValueError(f"compare mode must be one of {COMPARE_MODES}, got {mode!r}")
            if mode != self.compare_mode:
                self.compare_mode, changed = mode, True
        if restoration is not None and restoration is not self.restoration:
            self.restoration, changed = restoration, True
        if swipe is not None:
            swipe = min(max(float(swipe), 0.0), 1.0)
            if swipe != self.swipe:
                self.swipe, changed = swipe, True
        if changed:
            self.compare_changed.emit()

    def show_restoration(self, restoration) -> None:
        """Compare ``restoration`` from the start: swipe at the middle (a new or another restoration result is
        never shown through the previous one's difference map or swipe position)."""
        self.set_compare("swipe", restoration=restoration, swipe=0.5)

    def clear_restoration(self) -> None:
        if self.restoration is not None or self.compare_mode != "off":
            self.restoration = None
            self.compare_mode = "off"
            self.compare_changed.emit()

    def set_profile_line(self, line: tuple[tuple[float, float], tuple[float, float]] | None) -> None:
        self.profile_line = line
        self.profile_changed.emit()


# -- view state <-> JSON ---------------------------------------------------------------------------------
def view_to_dict(view_state, results: list) -> dict[str, Any]:
    """The display settings a session keeps (window/level, slice, invert, overlay and compare settings)."""
    restoration = view_state.restoration
    index = next((i for i, r in enumerate(results) if r is restoration), None)
    return {
        "slice_index": int(view_state.slice_index),
        "window": [float(view_state.window[0]), float(view_state.window[1])],
        "invert": bool(view_state.invert),
        "overlay_visible": bool(view_state.overlay_visible),
        "overlay_opacity": float(view_state.overlay_opacity),
        "label_styles": {str(v): {"opacity": float(s.opacity), "outline": bool(s.outline)}
                         for v, s in view_state.label_styles.items()},
        "detections_visible": bool(view_state.detections_visible),
        "show_captions": bool(view_state.show_captions),
        "score_threshold": float(view_state.score_threshold),
        "compare_mode": str(view_state.compare_mode),
        "swipe": float(view_state.swipe),
        "restoration_index": index,
        "active_label": int(view_state.active_label),
    }


def apply_view(view_state, view: dict[str, Any], results: list) -> list[str]:
    """Apply a saved view through the ViewState setters; returns the keys that were malformed and skipped
    (a view is cosmetic: a bad value never keeps a session from opening)."""
    skipped: list[str] = []

    def num(key: str) -> float | None:
        value = view.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if value is not None:
            skipped.append(key)
        return None

    def flag(key: str) -> bool | None:
        value = view.get(key)
        if isinstance(value, bool):
            return value
        if value is not None:
            skipped.append(key)
        return None

    if (z := num("slice_index")) is not None:
        view_state.set_slice(int(z))
    window = view.get("window")
    if isinstance(window, list) and len(window) == 2 and all(isinstance(v, (int, float)) for v in window):
        view_state.set_window(float(window[0]), float(window[1]))
    elif window is not None:
        skipped.append("window")
    if (v := flag("invert")) is not None:
        view_state.set_invert(v)
    if (v := flag("overlay_visible")) is not None:
        view_state.set_overlay_visible(v)
    if (o := num("overlay_opacity")) is not None:
        view_state.set_overlay_opacity(o)
    styles = view.get("label_styles")
    if isinstance(styles, dict):
        for key, style in styles.items():
            if str(key).isdigit() and isinstance(style, dict):
                opacity = style.get("opacity")
                outline = style.get("outline")
                view_state.set_label_style(
                    int(key), opacity=float(opacity) if isinstance(opacity, (int, float)) else None,
                    outline=bool(outline) if isinstance(outline, bool) else None)
            else:
                skipped.append(f"label_styles.{key}")
    if (v := flag("detections_visible")) is not None:
        view_state.set_detections_visible(v)
    if (v := flag("show_captions")) is not None:
        view_state.set_show_captions(v)
    if (t := num("score_threshold")) is not None:
        view_state.set_score_threshold(t)
    if (a := num("active_label")) is not None and a >= 1:
        view_state.set_active_label(int(a))
    index = view.get("restoration_index")
    mode = view.get("compare_mode")
    swipe = num("swipe")
    if isinstance(index, int) and 0 <= index < len(results):
        try:
            view_state.set_compare(mode if isinstance(mode, str) else None, restoration=results[index], swipe=swipe)
        except ValueError:
            skipped.append("compare_mode")
    return skipped
