"""Heat maps in a session file: ``heatmaps/<n>.npz`` (the float32 map, the segmentation mask of an
uncertainty map) and one manifest entry each (method, units, slice, parameters, cost, class, per-label
summary, plugin provenance and the display style). Sessions without the ``heatmaps`` key (older files)
simply have none."""
from __future__ import annotations

import datetime as _dt
import io
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..core.image import ImageVolume
from ..core.results import RunInfo
from ..inference.explain._common import Cost, Explanation
from ..inference.explain.store import HeatmapStyle, heatmaps_of
from .snapshot import SessionError

_COST_FIELDS = ("model_runs", "session_calls", "ms", "inference_ms", "run_ms", "batch_size")


def snapshot_heatmaps(document: Any) -> list[tuple[Explanation, HeatmapStyle]]:
    """The document's heat maps with copies of their styles (maps are never edited: shared)."""
    store = getattr(document, "heatmaps", None)
    if store is None:
        return []
    return [(e, HeatmapStyle(**asdict(s))) for e, s in zip(store.items, store.styles)]


def write_heatmaps(zf: zipfile.ZipFile, items: list[tuple[Explanation, HeatmapStyle]],
                   json_safe: Any) -> list[dict[str, Any]]:
    """Write every map into ``zf``; returns the manifest entries."""
    entries = []
    for i, (expl, style) in enumerate(items):
        name = f"heatmaps/{i}_{expl.method}.npz"
        arrays = {"map": np.asarray(expl.map, np.float32)}
        if expl.mask is not None:
            arrays["mask"] = np.asarray(expl.mask, np.uint16)
        buf = io.BytesIO()
        np.savez_compressed(buf, allow_pickle=False, **arrays)
        zf.writestr(zipfile.ZipInfo(name, date_time=_dt.datetime.now().timetuple()[:6]), buf.getvalue())
        cost = expl.cost
        entries.append(json_safe({
            "file": name, "method": expl.method, "plugin_id": expl.plugin_id, "task": expl.task,
            "units": expl.units, "slice": expl.slice_index, "parameters": expl.parameters,
            "cost": {k: getattr(cost, k) for k in _COST_FIELDS}, "target": expl.target, "top": expl.top,
            "summary": expl.summary, "info": asdict(expl.info) if expl.info is not None else None,
            "style": asdict(style)}))
    return entries


def read_heatmaps(zf: zipfile.ZipFile, entries: Any, path: Path, image: ImageVolume
                  ) -> list[tuple[Explanation, HeatmapStyle]]:
    """Decode the manifest's ``heatmaps`` entries.

    Raises
    ------
    SessionError
        A malformed entry, a missing file, or a map that does not fit the image.
    """
    if not isinstance(entries, list):
        raise SessionError("manifest.json: 'heatmaps' is not a list", path=path)
    out = []
    for entry in entries:
        try:
            name = str(entry["file"])
            with zf.open(name) as fh:
                arrays = dict(np.load(io.BytesIO(fh.read()), allow_pickle=False))
            heat = arrays["map"].astype(np.float32)
            if heat.shape != (image.height, image.width) or not 0 <= int(entry["slice"]) < image.n_slices:
                raise SessionError(f"{name}: heat map {heat.shape} does not fit the image "
                                   f"{(image.height, image.width)}", path=path)
            cost = Cost(**{k: v for k, v in (entry.get("cost") or {}).items() if k in _COST_FIELDS})
            info = entry.get("info")
            info = RunInfo(**{k: v for k, v in info.items() if k in RunInfo.__dataclass_fields__}) if info else None
            style = HeatmapStyle(**{k: v for k, v in (entry.get("style") or {}).items()
                                    if k in HeatmapStyle.__dataclass_fields__})
            expl = Explanation(method=str(entry["method"]), plugin_id=str(entry["plugin_id"]), task=str(entry["task"]),
                               map=heat, units=str(entry["units"]), slice_index=int(entry["slice"]),
                               parameters=dict(entry.get("parameters") or {}), cost=cost, target=entry.get("target"),
                               top=entry.get("top"), summary=list(entry.get("summary") or []),
                               mask=arrays.get("mask"), info=info)
        except SessionError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise SessionError(f"manifest.json: malformed heat map entry ({type(exc).__name__}: {exc})",
                               path=path) from exc
        out.append((expl, style))
    return out


def restore_heatmaps(document: Any, items: list[tuple[Explanation, HeatmapStyle]]) -> None:
    """Put the session's heat maps into the document's store (after ``set_image`` cleared it)."""
    store = heatmaps_of(document)
    store.clear()
    for expl, style in items:
        store.add(expl, style)
