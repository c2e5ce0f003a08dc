"""Orthogonal views (MPR, issue 15 item 1): the coronal/sagittal canvases and the view area holding all three."""
from .view_area import LAYOUTS, ViewArea, build_view_area

__all__ = ["LAYOUTS", "ViewArea", "build_view_area"]
