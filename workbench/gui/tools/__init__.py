"""Canvas tools, one module per tool: how a tool plugs into the canvas is described in :mod:`.base`.

:mod:`.base` (the interface, navigation, profile line), :mod:`.editing` (what the editing tools share:
:class:`~.editing.PaintOptions`, :class:`~.editing.OpenEdit`), :mod:`.brush` (brush and eraser),
:mod:`.polygon` (polygon and lasso), :mod:`.click` (click tools of region grow and island picking),
:mod:`.preview` (the mask preview item). Editing tools write only through ``document.labels.edit(name)``;
their options live in :class:`~.editing.PaintOptions`, which the Tools dock edits, so a tool never reads a
widget.
"""
