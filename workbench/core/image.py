"""ImageVolume: the one in-memory image type every reader returns and every tool consumes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(eq=False)
class ImageVolume:
    """An image or a stack of slices with its physical geometry.

    Parameters
    ----------
    data : ndarray
        ``(z, y, x)`` for grayscale or ``(z, y, x, c)`` (c = 3 RGB or 4 RGBA) row-major array. A 2D image
        has ``z == 1``. Values are the *stored* values after the modality LUT: Hounsfield units (float32)
        for CT, raw intensities otherwise (uint8/uint16/int16/float32 kept as read).
    spacing : (float, float, float)
        Voxel size in mm along ``(z, y, x)``. ``1.0`` with ``spacing_known=False`` when the file says nothing.
    origin : (float, float, float)
        Position in mm of the first voxel's centre ``(z, y, x)``, in patient coordinates where known.
    window : (center, width) or None
        The file's default display window (DICOM VOI), ``None`` when the file has none.
    modality : str or None
        DICOM modality (``"CT"``, ``"MR"``...) or ``None`` for plain images.
    invert_display : bool
        True for MONOCHROME1: low values display bright.
    path : Path or None
        The file or folder this was read from.
    metadata : dict
        Reader-specific header fields (DICOM UIDs, patient/study attributes, NIfTI affine...) that exports
        and de-identification need.
    """

    data: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    window: tuple[float, float] | None = None
    modality: str | None = None
    invert_display: bool = False
    spacing_known: bool = False
    path: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = self.data
        if data.ndim == 2:
            data = data[np.newaxis]
        if data.ndim not in (3, 4):
            raise ValueError(f"ImageVolume needs (z, y, x) or (z, y, x, c) data, got shape {self.data.shape}")
        if data.ndim == 4 and data.shape[-1] not in (3, 4):
            raise ValueError(f"ImageVolume colour data needs 3 or 4 channels, got shape {self.data.shape}")
        self.data = data
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        if self.path is not None:
            self.path = Path(self.path)

    # -- geometry ---------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def n_slices(self) -> int:
        return int(self.data.shape[0])

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])

    @property
    def is_color(self) -> bool:
        return self.data.ndim == 4

    @property
    def channels(self) -> int:
        return int(self.data.shape[3]) if self.is_color else 1

    @property
    def plane_shape(self) -> tuple[int, int]:
        """``(height, width)`` of one slice."""
        return (self.height, self.width)

    @property
    def pixel_area_mm2(self) -> float | None:
        """Area of one pixel in mm², or ``None`` when the spacing is unknown."""
        return self.spacing[1] * self.spacing[2] if self.spacing_known else None

    @property
    def voxel_volume_mm3(self) -> float | None:
        """Volume of one voxel in mm³, or ``None`` when the spacing is unknown."""
        return self.spacing[0] * self.spacing[1] * self.spacing[2] if self.spacing_known else None

    def slice(self, index: int) -> np.ndarray:
        """Slice ``index`` as a view: ``(y, x)`` or ``(y, x, c)``."""
        if not 0 <= index < self.n_slices:
            raise IndexError(f"slice {index} out of range 0..{self.n_slices - 1}")
        return self.data[index]

    # -- values -----------------------------------------------------------------------------------
    def value_range(self) -> tuple[float, float]:
        """Finite min and max of the data (NaN/Inf ignored); ``(0, 0)`` for an all-NaN image."""
        data = self.data
        if np.issubdtype(data.dtype, np.floating):
            finite = data[np.isfinite(data)]
            if finite.size == 0:
                return (0.0, 0.0)
            return (float(finite.min()), float(finite.max()))
        return (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)

    def default_window(self) -> tuple[float, float]:
        """The window to show first: the file's own, else a robust 0.5-99.5 percentile window.

        Returns ``(center, width)`` with ``width > 0``.
        """
        if self.window is not None and self.window[1] > 0:
            return (float(self.window[0]), float(self.window[1]))
        return percentile_window(self.data)

    @property
    def is_ct(self) -> bool:
        return (self.modality or "").upper() == "CT"

    @property
    def display_name(self) -> str:
        return self.path.name if self.path is not None else "untitled"


def percentile_window(data: np.ndarray, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """A robust ``(center, width)`` window from percentiles of (a subsample of) ``data``."""
    flat = data.reshape(-1)
    if flat.size > 1_000_000:  # a strided subsample is enough for percentiles and ~100x faster
        flat = flat[:: flat.size // 1_000_000]
    if np.issubdtype(flat.dtype, np.floating):
        flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return (0.5, 1.0)
    lo, hi = np.percentile(flat, [low, high])
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        return (float(lo), 1.0)
    return ((float(lo) + float(hi)) / 2.0, float(hi) - float(lo))
