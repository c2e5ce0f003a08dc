"""Models dock: the installed model plugins, running them on the open image, and "run on drop".

What the user sees, top to bottom:

- one card per plugin found by :func:`~workbench.inference.registry.discover_plugins` (name, version, task,
  a provider badge — the provider the session really uses once one exists, "not loaded" before — the
  description, and a "Run on drop" check box);
- a collapsible "problems" list with the one-line error of every plugin discovery rejected;
- the model card line of the selected plugin and the run buttons: "Run on image" for a 2D image, "Run on this
  slice" / "Run on whole stack" for a stack;
- progress bar + Cancel while a run is going on, then a one-line summary of the last result and, for a
  segmentation, "Merge into labels" / "Replace labels…".

Runs happen one at a time in an :class:`~workbench.gui.inference_worker.InferenceJob` (pool thread; the
ONNX Runtime session is created there on the first run). Further requests wait in a queue. Every result goes
into ``document.add_result`` (one undo step). A segmentation result is then written into the label map by
the main window in its default *merge* mode (only unlabelled pixels, so manual edits survive), inside the same
undo step: one Ctrl+Z takes the result and its mask away together. The buttons
here re-apply it on demand, or replace the label map after a confirmation.

Run on drop: the plugins checked here (``Settings.run_on_drop``, saved at once) run automatically on every
newly opened image: on the whole image for 2D images, on the shown (middle) slice for stacks, so dropping a
300-slice CT does not start minutes of work; "Run on whole stack" is one click away.

Modules: :mod:`.panel` (the dock, plugin list and selection), :mod:`.cards` (the plugin card widgets),
:mod:`.runs` (the run queue and results).
"""
