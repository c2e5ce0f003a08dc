"""File > Import model… (and a ``.onnx`` dropped on the window): the importer's guesses in a form.

The dialog runs :func:`workbench.inference.importer.propose` in a worker, shows every plugin.yaml field
with its help text (weak guesses marked), previews the result on the open image live (a cancellable worker
per edit; stale results are dropped), shows the candidate normalisations side by side (click one to use
it), and Save writes the plugin into the user's plugin folder and lists it in the Models dock at once.
The same core code as ``workbench models import`` (house rule: one code path).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import WorkbenchError
from .qt import Qt, QtCore, QtGui, QtWidgets
from .workers import CallableJob

ALL = ("classification", "segmentation", "detection", "restoration")
_LIVE_JOBS: set = set()  # jobs still running in the pool (see ImportModelDialog._start)


@dataclass
class FieldDef:
    """One plugin.yaml field in the form: dotted path, editor kind, choices, help, tasks it applies to."""

    path: str
    kind: str  # choice | int | float | bool | text | list | floats
    help: str
    tasks: tuple[str, ...] = ALL
    choices: tuple[str, ...] = ()


FIELDS = [
    FieldDef("id", "text", "unique id, [a-z0-9-]+; also the folder name"),
    FieldDef("name", "text", "the name shown in the app"),
    FieldDef("version", "text", "the plugin's version, e.g. 1.0.0"),
    FieldDef("description", "text", "one line on what it does (shown on the model card)"),
    FieldDef("task", "choice", "what the model does; decides which output fields apply", choices=ALL),
    FieldDef("input.name", "text", "the graph input fed with the image"),
    FieldDef("input.layout", "choice", "where the channel dim is: NCHW (first) or NHWC (last)",
             choices=("NCHW", "NHWC")),
    FieldDef("input.color", "choice", "gray (1 channel), rgb/bgr (3, in that order), luma (Y of YCbCr, chroma kept)",
             choices=("gray", "rgb", "bgr", "luma")),
    FieldDef("input.size", "ints", "[height, width] the image is resized to (empty: the graph's or the image's)"),
    FieldDef("input.multiple_of", "int", "dynamic graphs: pad up to a multiple of this, crop the outputs back"),
    FieldDef("input.resize", "choice", "stretch | letterbox (centred pad) | letterbox_topleft | tile | none",
             choices=("stretch", "letterbox", "letterbox_topleft", "tile", "none")),
    FieldDef("input.pad_value", "float", "value of the letterbox / padding pixels (raw units)"),
    FieldDef("input.tile.size", "ints", "resize tile: tile size (one value, or height, width)"),
    FieldDef("input.tile.overlap", "int", "resize tile: overlap between tiles, blended"),
    FieldDef("input.intensity.window", "floats", "clip to low, high and map to [0, 1] (e.g. a CT window -1000, 400)"),
    FieldDef("input.intensity.percentile", "floats", "or map the image's low/high percentiles to [0, 1], e.g. 1, 99"),
    FieldDef("input.intensity.scale", "float", "raw x -> x * scale + offset (1/255 = 0.0039216 for [0, 1])"),
    FieldDef("input.intensity.offset", "float", "added after scale (-1 with scale 2/255 gives [-1, 1])"),
    FieldDef("input.intensity.mean", "floats", "then (x - mean) / std per channel, e.g. ImageNet 0.485, 0.456, 0.406"),
    FieldDef("input.intensity.std", "floats", "per-channel std, e.g. ImageNet 0.229, 0.224, 0.225"),
    FieldDef("input.dtype", "choice", "the graph input's element type",
             choices=("float32", "float16", "uint8", "int8", "int32", "int64", "float64")),
    FieldDef("output.name", "text", "the output tensor to decode (default: the first)"),
    FieldDef("output.activation", "choice", "softmax (exclusive classes), sigmoid (independent), none (already "
                                            "probabilities)", ("classification", "segmentation"),
             ("softmax", "sigmoid", "none")),
    FieldDef("output.labels", "list", "class names in score order, comma separated", ("classification", "detection")),
    FieldDef("output.top_k", "int", "classification: how many best classes are listed", ("classification",)),
    FieldDef("output.layout", "choice", "NCHW / NHWC output, or NHW (class ids already)",
             ("segmentation", "restoration"), ("NCHW", "NHWC", "NHW")),
    FieldDef("output.multi_label", "bool", "each channel thresholded on its own (classes may overlap)",
             ("segmentation",)),
    FieldDef("output.threshold", "float", "probability above which a pixel belongs to a class (one channel or "
                                          "multi-label)", ("segmentation",)),
    FieldDef("output.classes", "list", "class names in channel order, comma separated", ("segmentation",)),
    FieldDef("output.format", "choice", "yolov8 [1,4+C,N] | yolov5 [1,N,5+C] | yolox (grid offsets) | boxes_scores",
             ("detection",), ("yolov8", "yolov5", "yolox", "boxes_scores")),
    FieldDef("output.boxes", "text", "boxes_scores: the boxes output", ("detection",)),
    FieldDef("output.scores", "text", "boxes_scores: the scores output", ("detection",)),
    FieldDef("output.box_format", "choice", "boxes_scores coordinates", ("detection",), ("xyxy", "xywh", "cxcywh")),
    FieldDef("output.normalized", "bool", "box coordinates are fractions [0, 1] of the input", ("detection",)),
    FieldDef("output.background_class", "int", "score column to drop as background (-1: none)", ("detection",)),
    FieldDef("output.score_threshold", "float", "detections below this score are dropped", ("detection",)),
    FieldDef("output.iou_threshold", "float", "non-maximum suppression overlap", ("detection",)),
    FieldDef("output.max_detections", "int", "at most this many boxes are kept", ("detection",)),
    FieldDef("output.strides", "ints", "yolox: the strides of the output grids", ("detection",)),
    FieldDef("output.scale", "int", "output size / input size (super-resolution)", ("restoration",)),
    FieldDef("output.range", "floats", "model output range mapped back to the input's values, e.g. 0, 1",
             ("restoration",)),
    FieldDef("output.residual", "bool", "the model predicts the noise: result = input - output", ("restoration",)),
]


def _get(d: dict, path: str) -> Any:
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _set(d: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    cur = d
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    if value is None:
        cur.pop(parts[-1], None)
    else:
        cur[parts[-1]] = value


def _qimage(rgb: np.ndarray) -> QtGui.QImage:
    h, w = rgb.shape[:2]
    return QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()


class ImportModelDialog(QtWidgets.QDialog):
    """The import form. ``proposal_ready``/``preview_ready``/``saved`` let tests (and the window) follow it."""

    proposal_ready = QtCore.Signal()
    preview_ready = QtCore.Signal(str)
    saved = QtCore.Signal(str)

    def __init__(self, model_path: str | Path, image=None, *, settings=None, plugins_dir: Path | None = None,
                 on_saved=None, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        from ..inference.registry import user_plugins_dir

        self.setWindowTitle(f"Import model — {Path(model_path).name}")
        self.model_path = Path(model_path)
        self.image = image
        self.settings = settings
        self.plugins_dir = Path(plugins_dir) if plugins_dir is not None else user_plugins_dir()
        self.on_saved = on_saved
        self.proposal = None
        self.editors: dict[str, QtWidgets.QWidget] = {}
        self.labels: dict[str, QtWidgets.QLabel] = {}
        self._jobs: list[CallableJob] = []
        self._closed = False
        self._preview_job: CallableJob | None = None
        self._generation = 0
        self.preview_text = ""
        self.saved_folder: Path | None = None
        self._loading = False
        self._build()
        self._timer = QtCore.QTimer(self, singleShot=True, interval=250)
        self._timer.timeout.connect(self.refresh_preview)
        self._start(lambda progress, cancelled: self._propose(), self._on_proposal)

    # -- layout -----------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.resize(1080, 760)
        root = QtWidgets.QVBoxLayout(self)
        self.status = QtWidgets.QLabel(f"Reading {self.model_path.name} and running it once…")
        self.status.setWordWrap(True)
        root.addWidget(self.status)
        split = QtWidgets.QSplitter(Qt.Orientation.Horizontal)
        form_host = QtWidgets.QWidget()
        self.form = QtWidgets.QFormLayout(form_host)
        self.form.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for f in FIELDS:
            editor = self._editor(f)
            label = QtWidgets.QLabel(f.path)
            label.setToolTip(f.help)
            editor.setToolTip(f.help)
            editor.setObjectName(f.path)
            help_label = QtWidgets.QLabel(f.help)
            help_label.setWordWrap(True)
            help_label.setStyleSheet("color: gray; font-size: 9pt;")
            # a wrapped label in a form row is otherwise squeezed to one line and clipped
            help_label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred,
                                     QtWidgets.QSizePolicy.Policy.MinimumExpanding)
            cell = QtWidgets.QWidget()
            box = QtWidgets.QVBoxLayout(cell)
            box.setContentsMargins(0, 0, 0, 4)
            box.setSpacing(0)
            box.addWidget(editor)
            box.addWidget(help_label)
            self.form.addRow(label, cell)
            self.editors[f.path] = editor
            self.labels[f.path] = label
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(form_host)
        split.addWidget(scroll)
        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        self.preview = QtWidgets.QLabel("preview")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(360, 300)
        self.preview_caption = QtWidgets.QLabel("")
        self.preview_caption.setWordWrap(True)
        rl.addWidget(QtWidgets.QLabel("<b>Preview on the open image</b> (updates when a field changes)"))
        rl.addWidget(self.preview, 1)
        rl.addWidget(self.preview_caption)
        self.decisions = QtWidgets.QPlainTextEdit()
        self.decisions.setReadOnly(True)
        self.decisions.setMaximumHeight(150)
        rl.addWidget(QtWidgets.QLabel("<b>Decisions</b> (WEAK: check it)"))
        rl.addWidget(self.decisions)
        split.addWidget(right)
        split.setSizes([600, 480])
        root.addWidget(split, 1)
        root.addWidget(QtWidgets.QLabel("<b>Candidate normalisations</b> on the open image (click one to use it)"))
        self.candidates_row = QtWidgets.QHBoxLayout()
        strip = QtWidgets.QWidget()
        strip.setLayout(self.candidates_row)
        cscroll = QtWidgets.QScrollArea()
        cscroll.setWidgetResizable(True)
        cscroll.setWidget(strip)
        cscroll.setFixedHeight(190)
        root.addWidget(cscroll)
        buttons = QtWidgets.QDialogButtonBox()
        self.save_button = buttons.addButton("Save plugin", QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
        self.save_button.setEnabled(False)
        cancel = buttons.addButton(QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        for button in (self.save_button, cancel):  # Enter in a field applies the field, never saves
            button.setAutoDefault(False)
            button.setDefault(False)
        self.save_button.clicked.connect(self.save)
        buttons.rejected.connect(self.reject)
        root.addWidget(buttons)

    def _editor(self, f: FieldDef) -> QtWidgets.QWidget:
        if f.kind == "choice":
            w = QtWidgets.QComboBox()
            w.addItems(list(f.choices))
            w.currentTextChanged.connect(self._changed)
        elif f.kind == "bool":
            w = QtWidgets.QCheckBox()
            w.toggled.connect(self._changed)
        else:
            w = QtWidgets.QLineEdit()
            w.setPlaceholderText("(not set)")
            w.editingFinished.connect(self._changed)
        return w

    # -- workers ------------------------------------------------------------------------------------------
    def _start(self, fn, on_done, on_failed=None) -> CallableJob:
        # parentless and kept alive until it ends: closing the dialog must not delete a job whose pool
        # thread still runs; the slots go through _alive so a closed dialog ignores late results
        job = CallableJob(fn)
        _LIVE_JOBS.add(job)
        job.finished.connect(lambda value: self._alive() and on_done(value))
        job.failed.connect(lambda msg: self._alive() and (on_failed or self._on_failed)(msg))
        for signal in (job.finished, job.failed, job.cancelled):
            signal.connect(lambda *_a, j=job: _LIVE_JOBS.discard(j))
        self._jobs = [j for j in self._jobs if not j.done] + [job]
        job.start()
        return job

    def _alive(self) -> bool:
        return not self._closed

    def _propose(self):
        from ..inference.importer import propose

        return propose(self.model_path, sample=self.image)

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"<span style='color:#c0392b'>{message}</span>")

    def _on_proposal(self, proposal) -> None:
        self.proposal = proposal
        if self.image is None:
            self.image = proposal.image
        weak = {d.field for d in proposal.weak}
        self._loading = True
        for f in FIELDS:
            self._write_editor(f, _get(proposal.manifest, f.path))
            mark = " (weak)" if f.path in weak or f.path.startswith("input.intensity") and \
                "input.intensity" in weak else ""
            self.labels[f.path].setText(f.path + mark)
            self.labels[f.path].setStyleSheet("color: #d35400;" if mark else "")
        self._loading = False
        self._show_task_fields()
        self.decisions.setPlainText("\n".join(d.line() for d in proposal.decisions))
        self._fill_candidates()
        n_weak = len(weak)
        self.status.setText(f"{self.model_path.name}: {proposal.manifest['task']}; {len(proposal.decisions)} "
                            f"decisions, {n_weak} weak (orange). Correct any field, then Save.")
        self.save_button.setEnabled(True)
        self.proposal_ready.emit()
        self.refresh_preview()

    # -- form <-> manifest ------------------------------------------------------------------------------------
    def _write_editor(self, f: FieldDef, value: Any) -> None:
        w = self.editors[f.path]
        if f.path == "output.classes" and value:
            value = [c["name"] for c in value]
        if f.path == "output.background_class" and value is None:
            value = -1
        if isinstance(w, QtWidgets.QComboBox):
            if value is not None:
                w.setCurrentText(str(value))
        elif isinstance(w, QtWidgets.QCheckBox):
            w.setChecked(bool(value))
        else:
            if isinstance(value, list):
                text = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
            elif isinstance(value, float):
                text = f"{value:.8g}"
            else:
                text = "" if value is None else str(value)
            w.setText(text)

    def set_field(self, path: str, value: Any) -> None:
        """Set one field as the user would (tests drive the form through this and the editors)."""
        f = next(f for f in FIELDS if f.path == path)
        self._write_editor(f, value)
        self._changed()

    def manifest(self) -> dict[str, Any]:
        """The manifest the form describes (the proposal's, with every visible field as edited)."""
        m = copy.deepcopy(self.proposal.manifest)
        task = self.editors["task"].currentText()
        m["task"] = task
        for f in FIELDS:
            if task not in f.tasks:
                _set(m, f.path, None)
                continue
            w = self.editors[f.path]
            if isinstance(w, QtWidgets.QComboBox):
                value: Any = w.currentText()
            elif isinstance(w, QtWidgets.QCheckBox):
                value = w.isChecked()
            else:
                value = self._parse(f, w.text().strip())
            if f.path == "output.classes" and value is not None:
                value = [{"name": n} for n in value]
            if f.path == "output.background_class" and value is not None and value < 0:
                value = None
            _set(m, f.path, value)
        if not m["input"].get("tile"):
            m["input"].pop("tile", None)  # an empty tile block is left by the form when resize is not tile
        return m

    def _parse(self, f: FieldDef, text: str) -> Any:
        if not text:
            return None
        try:
            if f.kind == "int":
                return int(text)
            if f.kind == "float":
                return float(text)
            if f.kind == "floats":
                return [float(t) for t in text.replace(";", ",").split(",") if t.strip()]
            if f.kind == "ints":
                values = [int(t) for t in text.replace(";", ",").split(",") if t.strip()]
                return values[0] if f.path == "input.tile.size" and len(values) == 1 else values
            if f.kind == "list":
                return [t.strip() for t in text.split(",") if t.strip()]
        except ValueError as exc:
            raise WorkbenchError(f"{f.path}: {text!r} is not a valid value") from exc
        return text

    def _show_task_fields(self) -> None:
        task = self.editors["task"].currentText()
        for f in FIELDS:
            visible = task in f.tasks
            self.form.setRowVisible(self.labels[f.path], visible)

    def _changed(self, *_args) -> None:
        if self._loading or self.proposal is None:
            return
        self._show_task_fields()
        self._timer.start()

    # -- preview --------------------------------------------------------------------------------------------
    def refresh_preview(self) -> None:
        """Run the form's manifest on the image in a worker; an earlier preview still running is cancelled."""
        if self.proposal is None:
            return
        try:
            manifest = self.manifest()
        except WorkbenchError as exc:
            self._on_preview_failed(str(exc))
            return
        if self._preview_job is not None and not self._preview_job.done:
            self._preview_job.cancel()
        self._generation += 1
        gen = self._generation
        proposal, image = self.proposal, self.image

        def work(progress, cancelled):
            from ..inference.importer.preview import part_of, render
            from ..inference.run import predict

            engine = proposal.engine(manifest)
            z = image.n_slices // 2
            result = predict(engine, image, slices=[z], cancel=cancelled)
            return render(image, manifest["task"], part_of(result, z), engine.spec.labels)

        self.preview_caption.setText("running…")
        self._preview_job = self._start(work, lambda out, g=gen: self._on_preview(g, out),
                                        lambda msg, g=gen: g == self._generation and self._on_preview_failed(msg))

    def _on_preview(self, gen: int, out) -> None:
        if gen != self._generation:
            return  # a newer edit is being previewed
        rgb, text = out
        self.preview.setPixmap(QtGui.QPixmap.fromImage(_qimage(rgb)))
        self.preview_text = text
        self.preview_caption.setText(text)
        self.preview_ready.emit(text)

    def _on_preview_failed(self, message: str) -> None:
        self.preview_text = f"error: {message}"
        self.preview.setPixmap(QtGui.QPixmap())
        self.preview.setText("the model does not run with these fields")
        self.preview_caption.setText(f"<span style='color:#c0392b'>{message}</span>")
        self.preview_ready.emit(self.preview_text)

    def _fill_candidates(self) -> None:
        from ..inference.importer.preview import render

        ranking = self.proposal.ranking
        if ranking is None:
            self.candidates_row.addWidget(QtWidgets.QLabel("No candidates compared (no image open, or a uint8 "
                                                           "graph). Open an image first to rank them."))
            return
        self.candidate_buttons = []
        for cand in ranking.candidates:
            button = QtWidgets.QToolButton()
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            if cand.result is not None:
                rgb, _ = render(self.proposal.probe_image or self.image, self.proposal.manifest["task"], cand.result,
                                self.proposal.labels, max_side=130)
                button.setIcon(QtGui.QIcon(QtGui.QPixmap.fromImage(_qimage(rgb))))
                button.setIconSize(QtCore.QSize(130, 130))
            chosen = "★ " if cand is ranking.chosen else ""
            score = "failed" if cand.score != cand.score else f"{cand.score:.3g}"
            button.setText(f"{chosen}{cand.label}\n{score}")
            button.setToolTip(f"{ranking.criterion}: {score} {cand.note}")
            button.clicked.connect(lambda _c=False, c=cand: self.use_candidate(c))
            self.candidates_row.addWidget(button)
            self.candidate_buttons.append(button)
        self.candidates_row.addStretch(1)

    def use_candidate(self, cand) -> None:
        """Put a candidate's colour and intensity into the form."""
        self._loading = True
        if self.editors["input.color"].currentText() != "luma":
            self.editors["input.color"].setCurrentText(cand.color)
        for key in ("window", "percentile", "scale", "offset", "mean", "std"):
            f = next(f for f in FIELDS if f.path == f"input.intensity.{key}")
            self._write_editor(f, cand.intensity.get(key))
        if self.editors["task"].currentText() == "restoration":
            self._write_editor(next(f for f in FIELDS if f.path == "output.range"), cand.range)
        self._loading = False
        self._changed()

    # -- save -------------------------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the plugin into the user's plugin folder (validated and smoke-run in a worker)."""
        from ..inference.importer import write_plugin_folder

        try:
            manifest = self.manifest()
        except WorkbenchError as exc:
            self._on_failed(str(exc))
            return
        target = self.plugins_dir / manifest["id"]
        self.save_button.setEnabled(False)
        self.status.setText(f"Writing {target}…")
        proposal, settings = self.proposal, self.settings
        self._start(lambda p, c: write_plugin_folder(proposal, target, manifest=manifest, settings=settings),
                    self._on_saved, self._on_save_failed)

    def _on_save_failed(self, message: str) -> None:
        self.save_button.setEnabled(True)
        self._on_failed(message)

    def _on_saved(self, folder) -> None:
        self.saved_folder = Path(folder)
        self.status.setText(f"Saved {folder}")
        if self.on_saved is not None:
            self.on_saved(self.manifest()["id"])
        self.saved.emit(str(folder))
        self.accept()

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:  # noqa: N802 - Qt override
        # QDialogButtonBox makes Save the default button: Enter in a field would save half-edited fields
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            return
        super().keyPressEvent(event)

    def done(self, result: int) -> None:
        self._closed = True
        for job in self._jobs:
            if not job.done:
                job.cancel()
        super().done(result)


# -- main window hooks ---------------------------------------------------------------------------------------
def open_import_dialog(main_window, path: str | Path | None = None) -> ImportModelDialog | None:
    """Ask for a .onnx (unless given) and show the dialog over the open image."""
    from ..core.site import site_policy

    if site_policy().clinic_mode:  # issue 20: the site file forbids adding plugins
        main_window.show_error("Importing a model is disabled in clinic mode (site configuration).")
        return None
    if path is None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(main_window, "Import model", str(Path.home()),
                                                        "ONNX models (*.onnx);;All files (*)")
        if not path:
            return None
    image = getattr(getattr(main_window, "document", None), "image", None)

    def listed(plugin_id: str) -> None:
        dock = getattr(main_window, "docks", {}).get("ModelsDock")
        panel = getattr(dock, "panel", None)
        if panel is not None:
            panel.reload()
            panel.select_plugin(plugin_id)
        main_window.show_status(f"Imported model {plugin_id} into the Models dock")

    dialog = ImportModelDialog(path, image, settings=main_window.settings, on_saved=listed, parent=main_window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    main_window.import_dialog = dialog
    return dialog


def install(main_window) -> QtGui.QAction:
    """Add File > Import model… (above Open recent)."""
    action = QtGui.QAction("&Import model…", main_window)
    action.setStatusTip("Make a plugin from an ONNX file: guessed fields, live preview, save to your plugins")
    action.triggered.connect(lambda: open_import_dialog(main_window))
    main_window.file_menu.insertAction(main_window.recent_menu.menuAction(), action)
    main_window.import_model_action = action
    return action


def handle_drop(main_window, paths: list[str]) -> bool:
    """A dropped ``.onnx`` opens the import dialog instead of being read as an image."""
    models = [p for p in paths if str(p).lower().endswith(".onnx")]
    if not models:
        return False
    open_import_dialog(main_window, models[0])
    return True
