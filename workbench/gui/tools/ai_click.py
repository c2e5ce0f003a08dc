"""The "AI click" tool (shortcut A): click to segment with a promptable model.

Left click includes, right click or Shift + click excludes, a left drag draws a box. After every click the
model runs in a worker (:class:`~workbench.gui.workers.BackgroundJob`) through the same code path as
``workbench segment --click`` (:class:`~workbench.inference.promptable.run.PromptSession`); the mask preview
follows. Enter accepts the preview into the current label as one undo step, never over other labels unless
"overwrite other labels" is set (then the Paint tab's rule applies); Esc discards it.

:class:`AIClickTool` turns mouse events into prompts; :class:`AIClickController` owns the prompt, the job,
the preview and the write, so the Tools dock and the tests drive it without a mouse.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ...inference.promptable.prompts import Click, Prompt
from ..qt import Qt, QtCore, QtGui, QtWidgets
from .base import CanvasEvent
from .editing import PaintOptions, _DocumentTool
from .preview import MaskPreviewItem, _cosmetic_pen

INCLUDE_COLOR = "#35d435"
EXCLUDE_COLOR = "#ff4040"
PREVIEW = "#00c8ff"
DRAG_PIXELS = 4.0  # screen pixels a press must travel to become a box drag


class AIClickController(QtCore.QObject):
    """Prompt state, model runs and the accept/discard of one AI-click session on a canvas.

    Signals
    -------
    changed()
        The prompt, the preview or the status changed (the dock refreshes its text).
    """

    changed = QtCore.Signal()

    def __init__(self, canvas, options: PaintOptions, message: Callable[[str, bool], None] | None = None,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.options = options
        self._message = message or (lambda text, error=False: None)
        self.spec = None
        self.overwrite_others = False
        self.prompt = Prompt()
        self.z: int | None = None
        self.result = None
        self.status = ""
        self.latencies_ms: list[float] = []  # click -> preview shown, per click
        self._job = None
        self._prefetch_job = None
        self._pending = False
        self._epoch = 0  # bumped by discard/accept/new image: results of older jobs are dropped
        self._click_time: float | None = None
        self.preview = MaskPreviewItem()
        self.preview.set_color(PREVIEW, 0.45)
        self.preview.setZValue(7)  # above the labels and the tools' shared preview (6)
        canvas.view.vb.addItem(self.preview)
        self._markers: list[QtWidgets.QGraphicsItem] = []
        self.tool = AIClickTool(options, self)

    # -- state --------------------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        return self._job is not None

    @property
    def has_preview(self) -> bool:
        return self.result is not None

    def set_plugin(self, spec) -> None:
        """Use ``spec`` (a ``task: promptable`` PluginSpec, or None) from the next click on."""
        if spec is not None and spec.task != "promptable":
            raise ValueError(f"{spec.id} is not a promptable model")
        self.discard()
        self.spec = spec

    # -- prompts ------------------------------------------------------------------------------------
    def add_click(self, z: int, x: int, y: int, include: bool) -> None:
        """A click on pixel column ``x``, row ``y`` of slice ``z``."""
        if self._new_slice(z):
            return
        if not include and not any(c.include for c in self.prompt.clicks) and self.prompt.box is None:
            self._set_status("the first click must include the object (left click)", error=True)
            return
        self.prompt = Prompt(self.prompt.clicks + [Click(float(x), float(y), include, z)], self.prompt.box)
        self._draw_markers()
        self._request()

    def set_box(self, z: int, box: tuple[float, float, float, float]) -> None:
        """A box ``(x0, y0, x1, y1)`` in pixel indices on slice ``z`` (replaces an earlier box)."""
        if self._new_slice(z):
            return
        self.prompt = Prompt(list(self.prompt.clicks), box)
        self._draw_markers()
        self._request()

    def _new_slice(self, z: int) -> bool:
        image = self.canvas.document.image
        if image is None:
            return True
        if self.spec is None:
            self._set_status("no promptable model: pick one in the AI click tab", error=True)
            return True
        if self.z is not None and z != self.z:
            self.discard()
        self.z = z
        return False

    # -- running ------------------------------------------------------------------------------------
    def _request(self) -> None:
        self._click_time = time.perf_counter()
        if self._job is not None:
            self._pending = True  # the latest prompt runs once the current run is back
            return
        self._start()

    def _start(self) -> None:
        from ...inference.promptable.run import prompt_session
        from ..workers import BackgroundJob

        spec, image, prompt, z = self.spec, self.canvas.document.image, self.prompt, self.z
        previous = self.result
        epoch = self._epoch

        def run(progress, cancelled):
            session = prompt_session(spec)
            return session.predict(image, prompt, index=z, previous=previous)

        def finished(result) -> None:
            self._job = None
            if epoch != self._epoch or image is not self.canvas.document.image:
                return
            self.result = result
            box = _mask_box(result.mask)
            if box is None:
                self.preview.clear()
            else:
                self.preview.set_mask(result.mask, box)
            shown = time.perf_counter()
            if self._click_time is not None:
                self.latencies_ms.append((shown - self._click_time) * 1000.0)
            n = int(np.count_nonzero(result.mask))
            timing = f"decoder {result.decoder_ms:.0f} ms" + (
                f", encoder {result.encoder_ms:.0f} ms" if result.encoder_ms else
                (", embedding cached" if result.cached else ""))
            self._set_status(f"{n} px — Enter accepts into label {self.options.label}, Esc discards ({timing})")
            if self._pending:
                self._pending = False
                self._start()
            else:
                self._prefetch(spec, image, z)

        def failed(message: str) -> None:
            self._job = None
            self._pending = False
            if epoch == self._epoch:
                self._set_status(f"AI click: {message}", error=True)

        self._job = BackgroundJob(run, context=self, on_finished=finished, on_failed=failed)
        self._set_status("segmenting…")
        self._job.start()

    def _prefetch(self, spec, image, z: int) -> None:
        """Encoder/decoder models: compute the neighbouring slices' embeddings in a worker, so that the first
        click there (or a propagation) costs the decoder only."""
        from ...inference.promptable.run import prompt_session
        from ..workers import BackgroundJob

        if spec.prompt.kind != "encoder_decoder" or image.n_slices < 2 or self._prefetch_job is not None:
            return
        todo = [k for k in (z + 1, z - 1) if 0 <= k < image.n_slices]

        def run(progress, cancelled):
            session = prompt_session(spec)
            for k in todo:
                if cancelled():
                    break
                session.embed(image, k)
            return todo

        def done(_result=None) -> None:
            self._prefetch_job = None

        self._prefetch_job = BackgroundJob(run, context=self, on_finished=done, on_failed=done)
        self._prefetch_job.start()

    @property
    def prefetching(self) -> bool:
        return self._prefetch_job is not None

    # -- accept / discard ---------------------------------------------------------------------------
    def accept(self) -> bool:
        """Write the preview into the current label (one undo step). False when there is nothing to accept."""
        if self.result is None or self._job is not None:
            return False
        labels = self.canvas.document.labels
        mask, z = self.result.mask, self.result.index
        if labels is None or mask.shape != labels.shape[1:]:
            return False
        value, overwrite, selected = self.paint_rule()
        box = _mask_box(mask)
        if box is not None:
            with labels.edit(f"AI click (label {value})") as e:
                e.paint((slice(z, z + 1), *box), mask[box][np.newaxis], value, overwrite=overwrite,
                        selected=selected)
        n = int(np.count_nonzero(labels.data[z] == value))
        self.discard()
        self._set_status(f"AI click: label {value} now has {n} px on this slice")
        return True

    def paint_rule(self) -> tuple[int, str, int | None]:
        """``(value, overwrite, selected)`` of an accept: background and the current label only (manual labels
        stay as they are), or the Paint over rule when ``overwrite_others`` is set."""
        if self.overwrite_others:
            return self.options.paint_rule(False)
        return self.options.label, "selected", self.options.label

    def discard(self) -> bool:
        """Drop the prompt and the preview. False when there was nothing to drop."""
        had = bool(self.prompt.clicks or self.prompt.box is not None or self.result is not None)
        self._epoch += 1
        self._pending = False
        self.prompt = Prompt()
        self.result = None
        self.z = None
        self.preview.clear()
        self._clear_markers()
        if had:
            self._set_status("")
        return had

    # -- drawing ------------------------------------------------------------------------------------
    def _clear_markers(self) -> None:
        for item in self._markers:
            if item.scene() is not None:
                item.scene().removeItem(item)
        self._markers = []

    def _draw_markers(self) -> None:
        self._clear_markers()
        vb = self.canvas.view.vb
        for c in self.prompt.clicks:
            color = INCLUDE_COLOR if c.include else EXCLUDE_COLOR
            dot = QtWidgets.QGraphicsEllipseItem(-5, -5, 10, 10)
            dot.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            dot.setPos(c.x + 0.5, c.y + 0.5)  # the pixel's centre
            dot.setPen(_cosmetic_pen("#000000", 1.0))
            dot.setBrush(QtGui.QBrush(QtGui.QColor(color)))
            dot.setZValue(11)
            vb.addItem(dot)
            self._markers.append(dot)
        if self.prompt.box is not None:
            x0, y0, x1, y1 = self.prompt.box
            rect = QtWidgets.QGraphicsRectItem(x0, y0, x1 - x0 + 1, y1 - y0 + 1)
            rect.setPen(_cosmetic_pen(INCLUDE_COLOR, 1.5, Qt.PenStyle.DashLine))
            rect.setZValue(11)
            vb.addItem(rect)
            self._markers.append(rect)

    def _set_status(self, text: str, *, error: bool = False) -> None:
        self.status = text
        if text:
            self._message(text, error)
        self.changed.emit()


def _mask_box(mask: np.ndarray) -> tuple[slice, slice] | None:
    rows = np.flatnonzero(mask.any(1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(0))
    return (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))


class AIClickTool(_DocumentTool):
    """Mouse -> prompts: left click includes, right click or Shift + click excludes, a left drag is a box."""

    name = "ai click"
    cursor = Qt.CursorShape.CrossCursor
    takes_right_button = True  # the canvas hands right clicks to this tool instead of window/level

    def __init__(self, options: PaintOptions, controller: AIClickController) -> None:
        super().__init__(options)
        self.controller = controller
        self._press: CanvasEvent | None = None
        self._rubber: QtWidgets.QGraphicsRectItem | None = None

    def _on_image_changed(self) -> None:
        self.controller.discard()

    def deactivate(self) -> None:
        self._press = None
        self._rubber = None
        super().deactivate()

    @staticmethod
    def _dragged(p: CanvasEvent | None, event: CanvasEvent) -> bool:
        return p is not None and (event.view_pos - p.view_pos).manhattanLength() >= DRAG_PIXELS

    def press(self, event: CanvasEvent) -> bool:
        self._press = event
        return True

    def move(self, event: CanvasEvent) -> bool:
        p = self._press
        if p is None or self.canvas is None or p.button != Qt.MouseButton.LeftButton or not self._dragged(p, event):
            return p is not None
        if self._rubber is None:
            self._rubber = QtWidgets.QGraphicsRectItem()
            self._rubber.setPen(_cosmetic_pen(INCLUDE_COLOR, 1.5, Qt.PenStyle.DashLine))
            self.canvas.add_preview_item(self._rubber)
        self._rubber.setRect(QtCore.QRectF(QtCore.QPointF(p.x, p.y), QtCore.QPointF(event.x, event.y)).normalized())
        return True

    def release(self, event: CanvasEvent) -> bool:
        p, self._press = self._press, None
        image = self.image
        if p is None or image is None:
            return False
        if self._rubber is not None and self.canvas is not None:
            self.canvas.clear_preview()
            self._rubber = None
        h, w = image.height, image.width

        def clampx(v: float) -> int:
            return int(min(max(v // 1, 0), w - 1))

        def clampy(v: float) -> int:
            return int(min(max(v // 1, 0), h - 1))

        if p.button == Qt.MouseButton.LeftButton and self._dragged(p, event):
            x0, x1 = sorted((clampx(p.x), clampx(event.x)))
            y0, y1 = sorted((clampy(p.y), clampy(event.y)))
            self.controller.set_box(p.z, (x0, y0, x1, y1))
            return True
        if not (0 <= p.x < w and 0 <= p.y < h):
            return True  # outside the image: consumed, nothing to do
        include = p.button == Qt.MouseButton.LeftButton and not (p.modifiers & Qt.KeyboardModifier.ShiftModifier)
        self.controller.add_click(p.z, p.column, p.row, include)
        return True
