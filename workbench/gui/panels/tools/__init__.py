"""Tools dock: brush, eraser, polygon/lasso, threshold, region grow, islands and morphology.

The dock only binds widgets to :class:`~workbench.gui.tools.editing.PaintOptions` and to the document; the
work is done by the pure functions of :mod:`workbench.processing` and written through ``labels.edit`` so
every operation is one undo step. Operations on a whole stack run in a :class:`BackgroundJob` (house rule
5); their result is written only if the label map did not change meanwhile.

Keyboard: B brush, E eraser, P polygon/lasso, G region grow, Esc back to navigation (or cancel the polygon /
the grow preview), [ and ] brush size, Enter closes a polygon.

Modules: :mod:`.panel` (the dock: layout, rebinding, preview, jobs, writes), one mixin per tab -
:mod:`.paint` (tool row, label row, brush options, shortcuts), :mod:`.threshold`, :mod:`.grow`,
:mod:`.islands` (islands and morphology) - and :mod:`.common` (tab indices).
"""
