"""Running plugins from the Models dock: one run at a time in an
:class:`~workbench.gui.inference_worker.InferenceJob`, a queue of further requests, progress and cancel,
the last result's summary and its merge/replace buttons, and "run on drop".
"""
from __future__ import annotations

import html

from ....core.errors import WorkbenchError
from ....io.settings_file import save_settings
from ....core.results import ClassificationResult, DetectionResult, RestorationResult, SegmentationResult
from ....inference.spec import PluginSpec
from ...inference_worker import InferenceJob, RunRequest
from ...qt import QtCore, QtWidgets
from .cards import short_provider


class RunsSection:
    """The runs of :class:`~.panel.ModelsPanel`: queue, job signals, result box, run on drop."""

    # -- running ----------------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        """A run is going on or waiting."""
        return self._job is not None or bool(self._queue)

    def run_default(self) -> None:
        """Double-click: the whole image for 2D, the shown slice for a stack."""
        image = self._mw.document.image
        self.run_selected("slice" if image is not None and image.n_slices > 1 else "image")

    def run_selected(self, scope: str = "image") -> None:
        """Run the selected plugin: ``scope`` is ``image`` (all slices), ``slice`` (the shown one) or
        ``stack`` (all slices)."""
        spec = self.selected_plugin()
        if spec is None:
            self._mw.show_status("Select a model first")
            return
        self.run_plugin(spec, scope)

    def run_plugin(self, spec: PluginSpec, scope: str = "image", *, reason: str = "button") -> None:
        """Queue a run of ``spec`` on the open image (see :meth:`run_selected` for ``scope``)."""
        image = self._mw.document.image
        if image is None:
            self._mw.show_status("Open an image first")
            return
        if scope not in ("image", "slice", "stack"):
            raise ValueError(f"scope must be image|slice|stack, got {scope!r}")
        if spec.task == "promptable":  # clicks, not a whole-image run: the AI click tool (A) takes it
            self._mw.docks["ToolsDock"].panel.ai_section.select(spec)
            self._mw.show_status(f"{spec.name}: click the object (AI click tool, A)", 6000)
            return
        if spec.task == "embedding":  # vectors for the similar-case index, not a result: its dock uses them
            dock = self._mw.docks.get("SimilarCasesDock")
            if dock is not None:
                dock.show()
                dock.raise_()
            self._mw.show_status(f"{spec.name} embeds images for similar-case search: choose an index in the "
                                 "Similar cases dock (build one with `workbench index FOLDER --db LIB.wbindex`)",
                                 8000)
            return
        slices = [int(self._mw.view_state.slice_index)] if scope == "slice" and image.n_slices > 1 else None
        if spec.input.is_volumetric:
            slices = None  # a 3-D model sees the whole volume (double-click and drop included)
        self._queue.append(RunRequest(spec, image, slices, reason))
        self._start_next()

    def _start_next(self) -> None:
        if self._job is not None:
            self._update_progress_box()
            return
        while self._queue:
            request = self._queue.pop(0)
            if request.image is self._mw.document.image:
                break
        else:
            self._update_progress_box()
            return
        job = InferenceJob(request, self._mw.settings)
        job.session_ready.connect(self._on_session_ready)
        job.progressed.connect(self._on_progress)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        self._job = job
        self._jobs.append(job)
        self._failures.pop(request.spec.id, None)
        self._refresh_badge(request.spec.id)
        self.progress.setRange(0, 0)  # busy until the first step reports a total
        self.progress_label.set_full_text(f"{request.describe()}: "
                                          + ("loading the model…" if request.spec.id not in self._providers
                                             else "starting…"))
        self._update_progress_box()
        job.start()

    def _update_progress_box(self) -> None:
        self.progress_box.setVisible(self._job is not None)
        if self._job is not None and self._queue:
            self.progress.setFormat(f"%p%  (+{len(self._queue)} queued)")
        else:
            self.progress.setFormat("%p%")

    def cancel(self) -> None:
        """Stop the running job at its next slice/tile and drop the queued ones."""
        self._queue.clear()
        if self._job is not None:
            self._job.cancel()
            self.progress_label.set_full_text(f"{self._job.request.describe()}: cancelling…")
        self._update_progress_box()

    def _current(self, job) -> bool:
        return job is not None and job is self._job

    def _on_session_ready(self, provider: str) -> None:
        job = self.sender()
        if not self._current(job):
            return
        self._providers[job.request.spec.id] = provider
        self._refresh_badge(job.request.spec.id)
        self.progress_label.set_full_text(f"{job.request.describe()}: running on {short_provider(provider)}…")

    def _on_progress(self, done: int, total: int, message: str) -> None:
        if not self._current(self.sender()):
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, total))
        self.progress_label.set_full_text(f"{message} · {self._job.request.spec.name}")  # the news first

    def _finish(self) -> InferenceJob | None:
        job = self.sender()
        if job in self._jobs:
            self._jobs.remove(job)
        if not self._current(job):
            return None
        self._job = None
        return job

    def _on_finished(self, result) -> None:
        job = self._finish()
        if job is None:
            return
        request = job.request
        self._refresh_badge(request.spec.id)
        if request.image is not self._mw.document.image:  # the user opened another image meanwhile
            self._mw.show_status(f"{request.describe()}: result discarded, another image is open now")
        else:
            self.last_result = result
            try:
                self._mw.document.add_result(result, name=f"Run {request.spec.name}")
            except WorkbenchError as exc:  # kept as a result, but its mask could not be merged
                self._mw.show_error(str(exc))
            provider = short_provider(getattr(result.info, "provider", "") or job.provider or "")
            self.last_message = (f"{request.describe()}: {result.summary()} · {job.seconds:.2f} s on {provider}")
            self._last_ok = True
            self._mw.show_status(self.last_message)
        self._update_result_box()
        self._start_next()
        self._update_progress_box()

    def _on_failed(self, message: str) -> None:
        job = self._finish()
        if job is None:
            return
        self._failures[job.request.spec.id] = message
        self._refresh_badge(job.request.spec.id)
        self.last_message = message
        self._last_ok = False
        self._mw.show_error(message)
        self._update_result_box()
        self._start_next()
        self._update_progress_box()

    def _on_cancelled(self, message: str) -> None:
        job = self._finish()
        if job is None:
            return
        self._refresh_badge(job.request.spec.id)
        if job.request.image is not self._mw.document.image:
            message = f"{job.request.describe()}: stopped, another image was opened"
        self.last_message = message
        self._last_ok = False
        self._mw.show_status(message)
        self._update_result_box()
        self._start_next()
        self._update_progress_box()

    def shutdown(self) -> None:
        """The window is closing: cancel everything and stop listening to the jobs."""
        self._queue.clear()
        for job in list(self._jobs):
            job.cancel()
            for signal in (job.session_ready, job.progressed, job.finished, job.failed, job.cancelled):
                try:
                    signal.disconnect()
                except (RuntimeError, TypeError):  # already disconnected
                    pass
        self._job = None
        self._jobs.clear()

    # -- results ----------------------------------------------------------------------------------
    def _update_result_box(self) -> None:
        result = self.last_result
        present = result is not None and any(r is result for r in self._mw.document.results)
        if result is not None and not present and self._mw.document.image is None:
            self.last_result = None
        # errors can hold long paths and checksums: keep the dock narrow, the banner has the full line
        text = self.last_message
        self.result_label.setText(html.escape(text if len(text) <= 160 else text[:157] + "…"))
        self.result_label.setToolTip(text)
        self.result_label.setVisible(bool(text))
        self.apply_box.setVisible(present and self._last_ok and isinstance(result, SegmentationResult))

    def apply_last_segmentation(self, policy: str) -> bool:
        """Write the last segmentation result into the label map (``merge`` or ``replace``); one undo step.

        ``replace`` asks for a confirmation first when the label map holds anything. Returns whether the
        label map was written.
        """
        result = self.last_result
        labels = self._mw.document.labels
        if not isinstance(result, SegmentationResult) or labels is None:
            return False
        if not any(r is result for r in self._mw.document.results):
            self._mw.show_status("That result was removed; run the model again")
            return False
        if policy == "replace" and labels.data.any():
            answer = QtWidgets.QMessageBox.question(
                self, "Replace the label map",
                f"Replace the whole label map by the segmentation of {result.info.plugin_name}?\n"
                "Every label painted so far is overwritten (Undo brings it back).",
                QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.Cancel,
                QtWidgets.QMessageBox.StandardButton.Cancel)
            if answer != QtWidgets.QMessageBox.StandardButton.Yes:
                return False
        self._mw.apply_segmentation(result, policy)
        return True

    # -- run on drop ------------------------------------------------------------------------------
    def set_run_on_drop(self, plugin_id: str, enabled: bool) -> None:
        """Add/remove ``plugin_id`` from ``Settings.run_on_drop`` and save the settings."""
        settings = self._mw.settings
        ids = [i for i in settings.run_on_drop if i != plugin_id]
        if enabled:
            ids.append(plugin_id)
        if ids == settings.run_on_drop:
            return
        settings.run_on_drop = ids
        card = self.cards.get(plugin_id)
        if card is not None and card.drop_check.isChecked() != enabled:
            card.drop_check.blockSignals(True)
            card.drop_check.setChecked(enabled)
            card.drop_check.blockSignals(False)
        if getattr(self._mw, "_persist", True):  # screenshots and tests run with persist=False
            try:
                save_settings(settings)
            except (OSError, WorkbenchError) as exc:
                self._mw.show_error(f"settings not saved: {exc}")
        self._mw.show_status(f"{plugin_id}: run on drop {'on' if enabled else 'off'}")

    def _on_image_changed(self) -> None:
        image = self._mw.document.image
        # runs of the previous image are of no use any more
        self._queue = [r for r in self._queue if r.image is image]
        if self._job is not None and self._job.request.image is not image:
            self._job.cancel()
        self.last_result = None
        self.last_message = ""
        self._last_ok = False
        self._update_result_box()
        self._update_selection()
        if image is not None and self._mw.settings.run_on_drop:
            # after the other views handled the new image (the view state picks the shown slice)
            QtCore.QTimer.singleShot(0, lambda img=image: self._run_on_drop(img))

    def _run_on_drop(self, image) -> None:
        if image is not self._mw.document.image:
            return
        by_id = {p.id: p for p in self.plugins}
        missing = [i for i in self._mw.settings.run_on_drop if i not in by_id]
        if missing:
            self._mw.show_status(f"run on drop: plugin {', '.join(missing)} not installed, skipped")
        # a re-opened (or recovered) session already holds these results: running again would add duplicates
        done = {getattr(getattr(r, "info", None), "plugin_id", None) for r in self._mw.document.results}
        for plugin_id in self._mw.settings.run_on_drop:
            if plugin_id in by_id and plugin_id not in done:
                self.run_plugin(by_id[plugin_id], "slice" if image.n_slices > 1 else "image", reason="drop")
