"""Sessions: save what is open (labels, label table, model results, view) and open it again later.

A session file ``*.wbsession`` is a zip archive, written atomically (:mod:`workbench.io.atomic`)::

    manifest.json                 schema_version, app version, source image (absolute path, path relative
                                  to the session file, shape, dtype, fingerprint), label table, view
                                  (window/level, slice...), the results with their RunInfo provenance
    labels.npz                    the label map, uint16 (z, y, x), compressed; only when not all zero
    results/<n>_<task>.npz|.json  result data: segmentation masks and classification scores (npz),
                                  detections (JSON), restored images (npz)

The source image itself is *not* stored: a session refers to the file (or DICOM folder) on disk and reads
it again with :func:`workbench.io.read_image`. The fingerprint recorded at save time (size, mtime and the
sha256 of the first :data:`FINGERPRINT_HEAD_BYTES` bytes; for a folder the same over its files) tells a
moved copy (same content, new mtime: accepted) from a changed file (other size or content: refused, since
the labels would no longer match the pixels).

Not saved: the undo history (a reopened session starts with an empty history), the per-pixel class
probabilities of segmentation results (``SegmentationResult.probabilities``, large and not kept by
default), and values of ``RestorationResult.extra`` that are not JSON data.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..core.document import Document
from ..core.errors import ExportError, ImageReadError
from ..core.image import ImageVolume
from ..core.labels import Label, LabelMap, color_to_rgb
from ..inference.results import (ClassificationResult, ClassScore, Detection, DetectionResult, RestorationResult,
                                 Result, RunInfo, SegmentationClass, SegmentationResult)
from ..io.atomic import atomic_path

SESSION_SUFFIX = ".wbsession"
SCHEMA_VERSION = 1
FORMAT_NAME = "workbench-session"
MANIFEST = "manifest.json"
LABELS_ENTRY = "labels.npz"
#: bytes hashed at the start of the source file: enough to catch a re-exported or replaced image, cheap
#: for a 1 GB volume (~2 ms)
FINGERPRINT_HEAD_BYTES = 1 << 20

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


class SessionError(ExportError):
    """A session file is corrupt, truncated, of an unknown schema, or cannot be written."""


# -- fingerprint of the source -------------------------------------------------------------------------
def _head_sha256(path: Path, n: int) -> str:
    import errno
    import stat

    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or device as the source would block the open
        raise OSError(errno.EINVAL, "not a regular file (a FIFO or a device)", str(path))
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(n))
    return h.hexdigest()


def _regular_files(folder: Path) -> list[Path]:
    from ..io.folders import log_note, scan_folder

    return scan_folder(folder, recursive=True, hidden=True, note=log_note)


def source_fingerprint(path: str | Path, files: list[str] | None = None) -> dict[str, Any]:
    """A cheap identity of an image file or DICOM folder.

    Parameters
    ----------
    path : str or Path
        The file or folder the image was read from.
    files : list of str, optional
        For a folder: the files the image was read from (``metadata["files"]`` of a DICOM series);
        default every regular file under the folder.

    Returns
    -------
    dict
        ``{"kind": "file"|"folder", "size": bytes, "mtime": seconds, "sha256_head": hex, "head_bytes": n}``
        plus ``"n_files"`` for a folder (size and mtime are the sum and the newest over its files; the hash
        covers the relative names and sizes of all files and the head of the first one).

    Raises
    ------
    OSError
        The file or folder cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        members = sorted(Path(f) for f in files) if files else \
            _regular_files(path)
        h = hashlib.sha256()
        size, mtime = 0, 0.0
        for member in members:
            st = member.stat()
            size += st.st_size
            mtime = max(mtime, st.st_mtime)
            try:
                name = member.relative_to(path).as_posix()
            except ValueError:
                name = member.name
            h.update(f"{name}\0{st.st_size}\n".encode())
        if members:
            h.update(_head_sha256(members[0], FINGERPRINT_HEAD_BYTES).encode())
        return {"kind": "folder", "n_files": len(members), "size": size, "mtime": mtime,
                "sha256_head": h.hexdigest(), "head_bytes": FINGERPRINT_HEAD_BYTES}
    st = path.stat()
    return {"kind": "file", "size": st.st_size, "mtime": st.st_mtime,
            "sha256_head": _head_sha256(path, FINGERPRINT_HEAD_BYTES), "head_bytes": FINGERPRINT_HEAD_BYTES}


def fingerprint_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints that matters: size, file count or content (not the mtime,
    which any copy changes)."""
    out = []
    if saved.get("kind") != current.get("kind"):
        out.append(f"was a {saved.get('kind')}, now a {current.get('kind')}")
        return out
    if saved.get("n_files") != current.get("n_files"):
        out.append(f"{saved.get('n_files')} files when saved, {current.get('n_files')} now")
    if saved.get("size") != current.get("size"):
        out.append(f"size {saved.get('size')} bytes when saved, {current.get('size')} now")
    elif saved.get("sha256_head") != current.get("sha256_head"):
        out.append("content differs from when the session was saved")
    return out


# -- snapshot: what a session holds, independent of the live document --------------------------------
@dataclass
class Session:
    """The content of a session: the image, label map, label table, results and view.

    ``label_data`` is ``None`` when the label map is all zero. ``view`` is free-form JSON data owned by the
    GUI (window/level, slice, overlay styles); ``manifest`` is the parsed manifest when read from a file.
    """

    image: ImageVolume
    label_data: np.ndarray | None
    label_table: list[Label]
    results: list[Result]
    view: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def _snapshot_labels(data: np.ndarray) -> np.ndarray | None:
    """A copy of a (z, y, x) label map, ``None`` when it is all zero -- cheap enough for the GUI thread.

    Only the slices holding labels are copied, into a fresh ``np.zeros`` array whose untouched pages the
    OS maps lazily: 3 ms for a 512x512x300 map labelled on a few slices, where ``data.any()`` plus a full
    copy took 20-490 ms (the first copy of 150 MiB faults in every page).
    """
    import cv2

    labelled = [z for z in range(data.shape[0]) if cv2.countNonZero(data[z])]
    if not labelled:
        return None
    snapshot = np.zeros(data.shape, dtype=data.dtype)
    for z in labelled:
        snapshot[z] = data[z]
    return snapshot


def capture(document: Document, *, view: dict[str, Any] | None = None, copy: bool = True) -> Session:
    """A snapshot of ``document`` to save (the label map is copied, so editing may go on while a worker
    writes the snapshot).

    Raises
    ------
    SessionError
        Nothing is open, or the image has no source file on disk.
    """
    image = document.image
    if image is None or document.labels is None:
        raise SessionError("nothing to save: no image is open")
    if image.path is None:
        raise SessionError("the image has no source file: a session refers to the image on disk")
    data = document.labels.data
    label_data = _snapshot_labels(data) if copy else (data if data.any() else None)
    table = [Label(lab.value, lab.name, lab.color, lab.visible) for lab in document.labels.labels.values()]
    return Session(image=image, label_data=label_data, label_table=table, results=list(document.results),
                   view=dict(view or {}))


# -- writing ---------------------------------------------------------------------------------------------
def _json_safe(value: Any) -> Any:
    """JSON data, with numpy scalars/arrays converted; ``TypeError`` for anything else."""
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _relative(target: Path, start: Path) -> str | None:
    import os

    try:
        return Path(os.path.relpath(target, start)).as_posix()
    except ValueError:  # another drive on Windows
        return None


def _geometry(image: ImageVolume) -> dict[str, Any]:
    return {"spacing": list(image.spacing), "origin": list(image.origin), "spacing_known": image.spacing_known,
            "window": list(image.window) if image.window is not None else None, "modality": image.modality,
            "invert_display": image.invert_display}


def _info_dict(info: RunInfo) -> dict[str, Any]:
    return _json_safe(asdict(info))


def _write_npz(zf: zipfile.ZipFile, name: str, **arrays: np.ndarray) -> None:
    # the npz is already compressed: the zip entry is stored, and streamed (no second copy in memory)
    with zf.open(zipfile.ZipInfo(name, date_time=_dt.datetime.now().timetuple()[:6]), "w",
                 force_zip64=True) as fh:
        np.savez_compressed(fh, **arrays)


def _result_entry(zf: zipfile.ZipFile, index: int, result: Result) -> dict[str, Any]:
    if not isinstance(result, (SegmentationResult, DetectionResult, ClassificationResult, RestorationResult)):
        raise SessionError(f"cannot save a result of type {type(result).__name__}")
    info = result.info
    entry: dict[str, Any] = {"task": info.task, "info": _info_dict(info)}
    stem = f"results/{index}_{info.task or 'result'}"
    if isinstance(result, SegmentationResult):
        entry["type"] = "segmentation"
        entry["file"] = f"{stem}.npz"
        entry["classes"] = [_json_safe(asdict(c)) for c in result.classes]
        _write_npz(zf, entry["file"], mask=np.asarray(result.mask, dtype=np.uint16))
    elif isinstance(result, DetectionResult):
        entry["type"] = "detection"
        entry["file"] = f"{stem}.json"
        dets = [{"index": d.index, "label": d.label, "score": float(d.score), "box": [float(v) for v in d.box],
                 "slice_index": int(d.slice_index)} for d in result.detections]
        zf.writestr(entry["file"], json.dumps(dets), compress_type=zipfile.ZIP_DEFLATED)
    elif isinstance(result, ClassificationResult):
        entry["type"] = "classification"
        entry["file"] = f"{stem}.npz"
        entry["labels"] = list(result.labels)
        entry["top"] = [{"index": t.index, "label": t.label, "score": float(t.score)} for t in result.top]
        entry["multi_label"] = bool(result.multi_label)
        arrays = {"scores": np.asarray(result.scores)}
        if result.slice_scores is not None:
            arrays["slice_scores"] = np.asarray(result.slice_scores)
        _write_npz(zf, entry["file"], **arrays)
    elif isinstance(result, RestorationResult):
        entry["type"] = "restoration"
        entry["file"] = f"{stem}.npz"
        entry["scale"] = int(result.scale)
        entry["geometry"] = _geometry(result.image)
        extra = {}
        for key, value in result.extra.items():
            try:
                extra[str(key)] = _json_safe(value)
            except TypeError:
                continue  # documented: non-JSON extras are not saved
        entry["extra"] = extra
        _write_npz(zf, entry["file"], image=result.image.data)
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
        view = _json_safe(session.view)
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
            "geometry": _geometry(image),
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


# -- reading ---------------------------------------------------------------------------------------------
def _bad(path: Path, why: str) -> SessionError:
    return SessionError(f"not a valid Workbench session ({why})", path=path)


def _read_manifest(zf: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    try:
        raw = zf.read(MANIFEST)
    except KeyError:
        raise _bad(path, f"no {MANIFEST}") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(path, f"{MANIFEST} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise _bad(path, f"{MANIFEST} is not a {FORMAT_NAME} manifest")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise SessionError(f"session schema_version {version!r} is not supported by Workbench {__version__} "
                           f"(supports 1..{SCHEMA_VERSION})", path=path)
    for key, kind in (("source", dict), ("labels", dict), ("results", list)):
        if not isinstance(manifest.get(key), kind):
            raise _bad(path, f"{MANIFEST}: '{key}' missing or not a {kind.__name__}")
    if not isinstance(manifest.get("view", {}), dict):
        raise _bad(path, f"{MANIFEST}: 'view' is not an object")
    return manifest


def _load_npz(zf: zipfile.ZipFile, name: str, path: Path) -> dict[str, np.ndarray]:
    try:
        with zf.open(name) as fh, np.load(fh, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except KeyError:
        raise _bad(path, f"entry {name} is missing") from None


def _locate_source(manifest: dict[str, Any], path: Path, *, allow_changed: bool) -> Path:
    source = manifest["source"]
    saved_fp = source.get("fingerprint") or {}
    candidates: list[Path] = []
    if source.get("path"):
        candidates.append(Path(source["path"]))
    if source.get("relative"):
        candidates.append((path.resolve().parent / source["relative"]).resolve())
    candidates = list(dict.fromkeys(candidates))
    if not candidates:
        raise _bad(path, f"{MANIFEST}: the source image path is missing")
    existing = [c for c in candidates if c.exists()]
    if not existing:
        where = " or ".join(str(c) for c in candidates)
        raise ImageReadError(f"the session's source image is missing (looked for {where})", path=path)
    problems: list[str] = []
    for candidate in existing:
        try:
            current = source_fingerprint(candidate)
        except OSError as exc:
            problems.append(f"{candidate}: cannot read ({exc.strerror or exc})")
            continue
        diff = fingerprint_differences(saved_fp, current) if saved_fp else []
        if not diff:
            return candidate
        problems.append(f"{candidate}: " + "; ".join(diff))
    if allow_changed and existing:
        return existing[0]
    raise ImageReadError("the source image changed since the session was saved: " + " | ".join(problems),
                         path=path)


def read_session(path: str | Path, *, max_pixels: int | None = None, allow_changed_source: bool = False,
                 progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> Session:
    """Read a session file and its source image.

    Parameters
    ----------
    path : str or Path
        The ``.wbsession`` file.
    max_pixels : int, optional
        Passed to :func:`workbench.io.read_image`.
    allow_changed_source : bool
        Open even when the source's size/content fingerprint differs from the saved one (the shape must
        still match the label map).
    progress, cancel
        Passed to the image reader.

    Returns
    -------
    Session

    Raises
    ------
    SessionError
        Not a zip, truncated, corrupt entries, missing or malformed manifest, unsupported schema.
    ImageReadError
        The source image is missing, changed, or no longer matches the saved shape.
    CancelledError
        ``cancel()`` returned True.
    """
    from ..io import read_image

    path = Path(path)
    if not path.is_file():
        raise SessionError("no such session file", path=path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _bad(path, f"not a zip archive or truncated: {exc}") from exc
    # CRC mismatches, truncated entries, bad npz or zlib streams: the archive is damaged
    damaged = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, KeyError,
               IndexError, TypeError, RuntimeError)  # NotImplementedError: a forged compression method
    with zf:
        try:
            manifest = _read_manifest(zf, path)
        except damaged as exc:
            raise _bad(path, f"damaged archive: {type(exc).__name__}: {exc}") from exc
        source = _locate_source(manifest, path, allow_changed=allow_changed_source)
        image = read_image(source, max_pixels=max_pixels, series_uid=manifest["source"].get("series_uid"),
                           progress=progress, cancel=cancel)
        saved_shape = tuple(manifest["source"].get("shape") or ())
        if saved_shape and tuple(image.shape) != saved_shape:
            raise ImageReadError(f"the source image {source} is now {tuple(image.shape)}, the session was "
                                 f"saved for {saved_shape}", path=path)
        try:
            label_data, table = _read_labels(zf, manifest, path, image)
            results = [_read_result(zf, entry, path, image) for entry in manifest["results"]]
        except damaged as exc:
            raise _bad(path, f"damaged archive: {type(exc).__name__}: {exc}") from exc
    view = manifest.get("view") or {}
    return Session(image=image, label_data=label_data, label_table=table, results=results, view=view,
                   manifest=manifest, path=path)


def _read_labels(zf: zipfile.ZipFile, manifest: dict[str, Any], path: Path,
                 image: ImageVolume) -> tuple[np.ndarray | None, list[Label]]:
    labels = manifest["labels"]
    table: list[Label] = []
    for item in labels.get("table") or []:
        try:
            value = int(item["value"])
            color = str(item["color"])
            color_to_rgb(color)
            if not 1 <= value <= 65535:
                raise ValueError(f"label value {value} outside 1..65535")
            table.append(Label(value, str(item["name"]), color, bool(item.get("visible", True))))
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(path, f"{MANIFEST}: bad label table entry {item!r}: {exc}") from exc
    data = None
    if labels.get("file"):
        arrays = _load_npz(zf, str(labels["file"]), path)
        if "labels" not in arrays:
            raise _bad(path, f"{labels['file']} holds no 'labels' array")
        data = arrays["labels"]
        if data.dtype != np.uint16 or data.shape != tuple(image.shape[:3]):
            raise _bad(path, f"label map {data.dtype} {data.shape} does not fit the image {tuple(image.shape[:3])}")
    return data, table


def _run_info(entry: dict[str, Any], path: Path) -> RunInfo:
    info = entry.get("info")
    if not isinstance(info, dict):
        raise _bad(path, f"{MANIFEST}: a result has no 'info'")
    try:
        return RunInfo(**info)
    except TypeError:
        # a newer writer may add fields: keep the known ones
        known = {k: v for k, v in info.items() if k in RunInfo.__dataclass_fields__}
        try:
            return RunInfo(**known)
        except TypeError as exc:
            raise _bad(path, f"{MANIFEST}: result info {exc}") from exc


def _read_result(zf: zipfile.ZipFile, entry: dict[str, Any], path: Path, image: ImageVolume) -> Result:
    if not isinstance(entry, dict) or "file" not in entry:
        raise _bad(path, f"{MANIFEST}: malformed result entry")
    info = _run_info(entry, path)
    kind = entry.get("type")
    name = str(entry["file"])
    try:
        if kind == "segmentation":
            mask = _load_npz(zf, name, path)["mask"]
            if mask.shape != tuple(image.shape[:3]):
                raise _bad(path, f"{name}: mask {mask.shape} does not fit the image {tuple(image.shape[:3])}")
            classes = [SegmentationClass(**c) for c in entry.get("classes", [])]
            return SegmentationResult(info=info, mask=mask, classes=classes)
        if kind == "detection":
            try:
                raw = json.loads(zf.read(name).decode("utf-8"))
            except KeyError:
                raise _bad(path, f"entry {name} is missing") from None
            dets = [Detection(index=int(d["index"]), label=str(d["label"]), score=float(d["score"]),
                              box=tuple(float(v) for v in d["box"]),  # type: ignore[arg-type]
                              slice_index=int(d.get("slice_index", 0))) for d in raw]
            return DetectionResult(info=info, detections=dets)
        if kind == "classification":
            arrays = _load_npz(zf, name, path)
            top = [ClassScore(int(t["index"]), str(t["label"]), float(t["score"])) for t in entry.get("top", [])]
            return ClassificationResult(info=info, scores=arrays["scores"], labels=list(entry.get("labels", [])),
                                        top=top, multi_label=bool(entry.get("multi_label", False)),
                                        slice_scores=arrays.get("slice_scores"))
        if kind == "restoration":
            arrays = _load_npz(zf, name, path)
            geo = entry.get("geometry") or {}
            window = geo.get("window")
            restored = ImageVolume(arrays["image"], spacing=tuple(geo.get("spacing", (1.0, 1.0, 1.0))),
                                   origin=tuple(geo.get("origin", (0.0, 0.0, 0.0))),
                                   window=tuple(window) if window else None, modality=geo.get("modality"),
                                   invert_display=bool(geo.get("invert_display", False)),
                                   spacing_known=bool(geo.get("spacing_known", False)))
            return RestorationResult(info=info, image=restored, scale=int(entry.get("scale", 1)),
                                     extra=dict(entry.get("extra") or {}))
    except (KeyError, TypeError) as exc:
        raise _bad(path, f"{name}: {type(exc).__name__}: {exc}") from exc
    raise _bad(path, f"{MANIFEST}: unknown result type {kind!r}")


# -- documents -------------------------------------------------------------------------------------------
def restore_labels(document: Document, session: Session) -> None:
    """Put the session's label table and label map into ``document`` (whose image is ``session.image``).

    Not an undo step: a reopened session starts with an empty history, as after opening an image.
    """
    labels: LabelMap = document.labels  # type: ignore[assignment]
    labels.labels = {lab.value: Label(lab.value, lab.name, lab.color, lab.visible) for lab in session.label_table}
    if session.label_data is not None:
        labels.data[...] = session.label_data
        for value in np.unique(session.label_data).tolist():
            if value and value not in labels.labels:
                labels.ensure_label(value)
    labels.labels_changed.emit()
    labels.data_changed.emit(tuple(slice(0, n) for n in labels.shape))


def restore_results(document: Document, session: Session) -> None:
    """Put the session's results into ``document`` (not an undo step) and emit ``results_changed``."""
    document.results = list(session.results)
    document.results_changed.emit()


def apply_session(document: Document, session: Session) -> None:
    """Make ``document`` show ``session``: its image, label map, label table and results; empty history."""
    document.set_image(session.image)
    restore_labels(document, session)
    restore_results(document, session)


def load_session(path: str | Path, *, max_pixels: int | None = None,
                 allow_changed_source: bool = False) -> tuple[Document, dict[str, Any]]:
    """Open a session file as a new :class:`Document`.

    Parameters
    ----------
    path : str or Path
        The ``.wbsession`` file.
    max_pixels : int, optional
        Passed to the image reader.
    allow_changed_source : bool
        See :func:`read_session`.

    Returns
    -------
    (Document, dict)
        The document (image re-read from its source, label map, label table, results; empty undo history)
        and the saved view settings.

    Raises
    ------
    SessionError, ImageReadError
        See :func:`read_session`.
    """
    session = read_session(path, max_pixels=max_pixels, allow_changed_source=allow_changed_source)
    document = Document()
    apply_session(document, session)
    return document, session.view


def provenance(session: Session) -> dict[str, Any]:
    """What every export of a session records: source file, session, software, the model runs."""
    image = session.image
    return {
        "software": f"Workbench {__version__}",
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "session": str(session.path) if session.path is not None else None,
        "source": {"path": str(image.path) if image.path is not None else None, "shape": list(image.shape),
                   "fingerprint": (session.manifest.get("source") or {}).get("fingerprint")},
        "labels": [{"value": lab.value, "name": lab.name, "color": lab.color} for lab in session.label_table],
        "results": [{"task": r.info.task, "plugin_id": r.info.plugin_id, "plugin_name": r.info.plugin_name,
                     "plugin_version": r.info.plugin_version, "sha256": r.info.sha256, "provider": r.info.provider}
                    for r in session.results],
    }


# -- exports of a session (CLI ``workbench export`` and the GUI's File > Export) -------------------------
MASK_EXPORT_SUFFIXES = (".png", ".tif", ".tiff", ".nii", ".nii.gz", ".dcm")


def _session_provenance(session: Session) -> dict[str, Any]:
    record = provenance(session)
    if record["source"]["fingerprint"] is None and session.image.path is not None:
        try:
            files = session.image.metadata.get("files") if Path(session.image.path).is_dir() else None
            record["source"]["fingerprint"] = source_fingerprint(session.image.path, files)
        except OSError:
            record["source"]["fingerprint"] = None  # the source is gone: the path is still recorded
    return record


def write_provenance(target: str | Path, session: Session, *, what: str,
                     extra: dict[str, Any] | None = None) -> Path:
    """Write ``<target>.provenance.json`` beside an exported file: the source file, the session, the
    software and every model run (plugin id, version, sha256, provider) behind the exported labels."""
    from ..io.atomic import atomic_write_text

    target = Path(target)
    record = {"export": what, "file": target.name, **_session_provenance(session), **(extra or {})}
    out = target.with_name(target.name + ".provenance.json")
    try:
        atomic_write_text(out, json.dumps(_json_safe(record), indent=2))
    except OSError as exc:
        raise ExportError(f"cannot write ({exc.strerror or exc})", path=out) from exc
    return out


def _label_data(session: Session) -> np.ndarray:
    if session.label_data is not None:
        return session.label_data
    return np.zeros(session.image.shape[:3], dtype=np.uint16)


def default_mask_suffix(image: ImageVolume) -> str:
    """The natural whole-label-map format: PNG for one slice, DICOM SEG for a DICOM stack, NIfTI for other
    volumes with geometry (NIfTI, DICOM without its files), multi-page TIFF for plain stacks."""
    from .dicom_seg import is_dicom_source
    from .masks import mask_suffix

    if image.n_slices == 1:
        return ".png"
    if is_dicom_source(image):
        return ".dcm"
    return mask_suffix(image)


def export_label_map(session: Session, path: str | Path, *, keep_identity: bool = False) -> list[Path]:
    """Write the whole label map; the format follows the suffix.

    ``.png`` (one slice; 8-bit when the values fit, else 16-bit), ``.tif``/``.tiff`` (one page per slice,
    pixel spacing kept), ``.nii``/``.nii.gz`` (the image's geometry), ``.dcm`` (DICOM SEG referencing the
    DICOM source). A ``.provenance.json`` sidecar is written beside it.

    Returns
    -------
    list of Path
        The mask and its provenance file.

    Raises
    ------
    ExportError
        Unknown suffix, a stack as PNG, a DICOM SEG of a non-DICOM image, or a write failure.
    """
    from .dicom_seg import write_dicom_seg
    from .masks import write_mask

    path = Path(path)
    name = path.name.lower()
    if not name.endswith(MASK_EXPORT_SUFFIXES):
        raise ExportError(f"unknown mask format {path.suffix!r} (use {', '.join(MASK_EXPORT_SUFFIXES)})", path=path)
    data = _label_data(session)
    if name.endswith(".dcm"):
        write_dicom_seg(path, data, session.image,
                        names={lab.value: lab.name for lab in session.label_table},
                        colors={lab.value: lab.color for lab in session.label_table},
                        algorithm=[asdict(r.info) for r in session.results
                                   if isinstance(r, SegmentationResult)], keep_identity=keep_identity)
        what = "DICOM SEG" if keep_identity else "DICOM SEG (de-identified)"
    else:
        write_mask(path, data, like=session.image)
        what = "label map"
    return [path, write_provenance(path, session, what=what)]


def measure_session(session: Session) -> list:
    """Per-label measurements (:func:`workbench.processing.measure_labels`) of the label map over the
    image, in physical units when the spacing is known, named by the label table."""
    from ..processing import measure_labels, to_scalar

    image = session.image
    return measure_labels(_label_data(session), to_scalar(image.data),
                          spacing=image.spacing if image.spacing_known else None,
                          names={lab.value: lab.name for lab in session.label_table})


def export_measurements(session: Session, path: str | Path) -> list[Path]:
    """Write the per-label measurements CSV (:func:`workbench.processing.write_csv`) and its provenance.

    Raises
    ------
    ExportError
    """
    from ..processing import write_csv

    path = Path(path)
    stats = measure_session(session)
    write_csv(stats, path)
    units = "HU" if session.image.is_ct else "stored values"
    return [path, write_provenance(path, session, what="measurements",
                                   extra={"intensity_units": units, "spacing_known": session.image.spacing_known})]


def label_map_result(session: Session) -> SegmentationResult:
    """The label map as a :class:`SegmentationResult` so the report module can show it; its provenance says
    it is the edited label map, not a model output."""
    data = _label_data(session)
    image = session.image
    counts = np.bincount(data.reshape(-1), minlength=1) if data.size else np.zeros(1, np.int64)
    table = {lab.value: lab for lab in session.label_table}
    area = image.pixel_area_mm2
    classes = []
    for value in np.nonzero(counts)[0].tolist():
        if value == 0:
            continue
        lab = table.get(value)
        pixels = int(counts[value])
        classes.append(SegmentationClass(value=value, name=lab.name if lab else f"label {value}",
                                         color=lab.color if lab else "", pixels=pixels,
                                         area_mm2=pixels * area if area is not None and image.n_slices == 1 else None))
    slices = [int(z) for z in np.nonzero(data.reshape(data.shape[0], -1).any(axis=1))[0]] or [0]
    info = RunInfo(plugin_id="label-map", plugin_name="Label map (edited in Workbench)",
                   plugin_version=__version__, sha256="n/a (label map, not a model)", provider="n/a",
                   task="segmentation", source_path=str(image.path) if image.path is not None else None,
                   slice_indices=slices)
    return SegmentationResult(info=info, mask=data, classes=classes)


def export_reports(session: Session, out_dir: str | Path, *, formats: tuple[str, ...] = ("html", "pdf"),
                   show_name: bool = False) -> list[Path]:
    """Write de-identified reports (:func:`workbench.export.report.write_report`) into ``out_dir``: one of
    the label map (when it holds labels) and one per model result.

    Returns
    -------
    list of Path
        Every file written.

    Raises
    ------
    ExportError
        Nothing to report (empty label map and no results), or a write failure.
    """
    from .prediction import output_stem
    from .report import write_report

    out_dir = Path(out_dir)
    stem = output_stem(session.image, fallback="image")
    items: list[tuple[str, Result]] = []
    if session.label_data is not None and session.label_data.any():
        items.append((f"{stem}_labels", label_map_result(session)))
    for i, result in enumerate(session.results, start=1):
        items.append((f"{stem}_{i}_{result.info.plugin_id}", result))
    if not items:
        raise ExportError("nothing to report: the label map is empty and there are no model results",
                          path=session.path)
    written: list[Path] = []
    for item_stem, result in items:
        files = write_report(result, session.image, out_dir, item_stem, formats=formats, show_name=show_name)
        written += list(files.values())
    # no provenance sidecar here: reports are de-identified and never name the source file; each report
    # carries the plugin id, version, sha256 and provider itself
    return written
