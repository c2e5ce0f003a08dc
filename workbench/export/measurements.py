"""The per-label measurements CSV (:func:`workbench.processing.measure_labels`), written atomically."""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import ExportError
from ..io.atomic import atomic_open
from ..processing.measure import COLUMNS, LabelStats, format_value


def write_csv(stats: Sequence[LabelStats], path: str | Path) -> Path:
    """Write the measurements as CSV (one row per label, :data:`COLUMNS`) atomically.

    Missing values are empty cells; ``bbox`` is ``"z0 y0 x0 z1 y1 x1"``.
    """
    from ..io.csv_safe import escape_cell

    path = Path(path)
    try:
        with atomic_open(path, "w") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMNS)
            for s in stats:
                d = s.as_dict()
                # text cells escaped against spreadsheet formula injection (a label named "=HYPERLINK(...)")
                writer.writerow([escape_cell(format_value(d[c]) if c != "bbox" else format_value(s.bbox))
                                 for c in COLUMNS])
    except OSError as exc:
        raise ExportError(f"cannot write the measurements CSV ({exc.strerror or exc})", path=path) from exc
    return path
