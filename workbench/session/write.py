"""Writing a session file (a zip written atomically): manifest, label map, one entry per result."""
from __future__ import annotations

import datetime as _dt
import json
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..core.document import Document
from ..core.results import RESULT_TYPES, Result, RunInfo, image_geometry, json_safe
from ..io.atomic import atomic_path
from .fingerprint import source_fingerprint
from .snapshot import (
    FORMAT_NAME,
    LABELS_ENTRY,
    MANIFEST,
    SCHEMA_VERSION,
    SESSION_SUFFIX,
    ProgressFn,
    Session,
    SessionError,
    capture,
)


# -- writing ---------------------------------------------------------------------------------------------
def _relative(target: Path, start: Path) -> str | None:
    import os

    try:
        return Path(os.path.relpath(target, start)).as_posix()
    except ValueError:  # another drive on Windows
        return None


def _info_dict(info: RunInfo) -> dict[str, Any]:
    return json_safe(asdict(info))


def _write_npz(zf: zipfile.ZipFile, name: str, **arrays: np.ndarray) -> None:
    # the npz is already compressed: the zip entry is stored, and streamed (no second copy in memory)
    with zf.open(zipfile.ZipInfo(name, date_time=_dt.datetime.now().timetuple()[:6]), "w",
                 force_zip64=True) as fh:
        np.savez_compressed(fh, allow_pickle=False, **arrays)


def _result_entry(zf: zipfile.ZipFile, index: int, result: Result) -> dict[str, Any]:
    """Write one result's payload into the zip; returns its manifest entry (the fields are the type's own)."""
    if type(result) not in RESULT_TYPES.values():
        raise SessionError(f"cannot save a result of type {type(result).__name__}")
    info = result.info
    entry: dict[str, Any] = {"task": info.task, "info": _info_dict(info), "type": result.kind}
    stem = f"results/{index}_{info.task or 'result'}"
    fields, payload = result.session_fields()
    entry["file"] = f"{stem}.{result.payload}"
    entry.update(fields)
    if isinstance(payload, dict):  # arrays: one npz (payload "npz")
        _write_npz(zf, entry["file"], **payload)
    else:
        zf.writestr(entry["file"], json.dumps(payload), compress_type=zipfile.ZIP_DEFLATED)
    return entry


def write_session(session: Session, path: str | Path, *, progress: ProgressFn | None = None) -> Path:
    """Write ``session`` to ``path`` (``.wbsession`` appended when missing) atomically.

    Parameters
    ----------
    session : Session
        From :func:`capture`.
    path : str or Path
        Target file.
    progress : callable(done, total), optional
        Called after each entry written.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    SessionError
        The source cannot be fingerprinted, a result cannot be stored, or the file cannot be written.
    """
    path = Path(path)
    if not path.name.lower().endswith(SESSION_SUFFIX):
        path = path.with_name(path.name + SESSION_SUFFIX)
    image = session.image
    source = Path(image.path).resolve()  # type: ignore[arg-type]
    files = image.metadata.get("files") if source.is_dir() else None
    try:
        fingerprint = source_fingerprint(source, files)
    except OSError as exc:
        raise SessionError(f"cannot read the source image {source} to fingerprint it "
                           f"({exc.strerror or exc})", path=path) from exc
    try:
        view = json_safe(session.view)
    except TypeError as exc:
        raise SessionError(f"the view settings are not JSON data ({exc})", path=path) from exc
    table = [{"value": lab.value, "name": lab.name, "color": lab.color, "visible": lab.visible}
             for lab in session.label_table]
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "app_version": __version__,
        "saved": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "source": {
            "path": str(source),
            "relative": _relative(source, path.resolve().parent),
            "series_uid": image.metadata.get("SeriesInstanceUID") if source.is_dir() else None,
            "shape": list(image.shape),
            "dtype": str(image.data.dtype),
            "fingerprint": fingerprint,
            "geometry": image_geometry(image),
        },
        "labels": {"file": LABELS_ENTRY if session.label_data is not None else None,
                   "shape": list(image.shape[:3]), "table": table},
        "view": view,
        "results": [],
        "not_saved": ["undo history", "segmentation probabilities"],
    }
    total = 2 + len(session.results)
    try:
        with atomic_path(path, suffix=".tmp") as tmp:
            with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
                if session.label_data is not None:
                    data = np.asarray(session.label_data, dtype=np.uint16)
                    if data.shape != tuple(image.shape[:3]):
                        raise SessionError(f"label map shape {data.shape} differs from the image "
                                           f"{tuple(image.shape[:3])}", path=path)
                    _write_npz(zf, LABELS_ENTRY, labels=data)
                _report(progress, 1, total)
                for i, result in enumerate(session.results):
                    manifest["results"].append(_result_entry(zf, i, result))
                    _report(progress, 2 + i, total)
                if session.heatmaps:  # issue 17: saliency / uncertainty maps
                    from .heatmaps import write_heatmaps

                    manifest["heatmaps"] = write_heatmaps(zf, session.heatmaps, json_safe)
                if session.annotations:  # issue 15: rulers, angles, ROIs, text arrows
                    manifest["annotations"] = [r.to_json() for r in session.annotations]
                if session.key_images:  # issue 15: the views picked for the case report
                    from .key_images import write_key_images

                    manifest["key_images"] = write_key_images(zf, session.key_images)
                # the manifest last: a reader that finds it knows every entry it names was written
                zf.writestr(MANIFEST, json.dumps(manifest, indent=2), compress_type=zipfile.ZIP_DEFLATED)
    except OSError as exc:
        raise SessionError(f"cannot write the session ({exc.strerror or exc})", path=path) from exc
    _report(progress, total, total)
    return path


def save_session(document: Document, path: str | Path, *, view: dict[str, Any] | None = None,
                 progress: ProgressFn | None = None) -> Path:
    """Save the open document (label map, label table, results) and ``view`` as a session file.

    The undo history is not saved.

    Parameters
    ----------
    document : Document
        With an image read from a file (a session refers to it; the pixels are not copied).
    path : str or Path
        Target, normally ``*.wbsession`` (appended when missing).
    view : dict, optional
        JSON data describing the display (window/level, slice...), returned by :func:`load_session`.
    progress : callable(done, total), optional

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    SessionError
        Nothing open, no source file, or the file cannot be written.
    """
    return write_session(capture(document, view=view, copy=False), path, progress=progress)


def _report(progress: ProgressFn | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)
