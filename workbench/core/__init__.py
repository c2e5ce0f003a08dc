"""Qt-free core: image volume, document, label map, undo, settings, errors."""
from .document import Document
from .errors import (
                     CancelledError,
                     ExportError,
                     ImageReadError,
                     InferenceError,
                     PluginError,
                     ProcessingError,
                     WorkbenchError,
)
from .image import ImageVolume, percentile_window
from .labels import Label, LabelMap
from .undo import UndoStack

__all__ = [
    "Document", "ImageVolume", "Label", "LabelMap", "UndoStack", "percentile_window",
    "WorkbenchError", "ImageReadError", "PluginError", "InferenceError", "ExportError",
    "ProcessingError", "CancelledError",
]
