"""Reading a session file: the manifest checked, the source located and re-read, labels and results decoded."""
from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..core.errors import ImageReadError
from ..core.image import ImageVolume
from ..core.labels import Label, color_to_rgb
from ..core.results import RESULT_TYPES, Result, RunInfo
from .fingerprint import fingerprint_differences, source_fingerprint
from .snapshot import FORMAT_NAME, MANIFEST, SCHEMA_VERSION, CancelFn, ProgressFn, Session, SessionError


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
    except (zipfile.BadZipFile, OSError, NotImplementedError, ValueError, EOFError) as exc:
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
            from .heatmaps import read_heatmaps

            heatmaps = read_heatmaps(zf, manifest.get("heatmaps") or [], path, image)
            from .key_images import read_key_images

            key_images = read_key_images(zf, manifest.get("key_images") or [], path, image)
        except damaged as exc:
            raise _bad(path, f"damaged archive: {type(exc).__name__}: {exc}") from exc
    view = manifest.get("view") or {}
    return Session(image=image, label_data=label_data, label_table=table, results=results, view=view,
                   manifest=manifest, path=path, heatmaps=heatmaps, key_images=key_images,
                   annotations=_read_annotations(manifest.get("annotations") or [], path, image))


def _read_annotations(entries: Any, path: Path, image: Any) -> list:
    """The annotations of the manifest (issue 15: rulers, angles, ROIs, text arrows); older sessions have
    none, and a type this version does not know (a newer writer's) is left out."""
    from ..core.annotations import annotation_from_json

    if not isinstance(entries, list):
        raise _bad(path, "manifest.json: 'annotations' is not a list")
    items = []
    for entry in entries:
        try:
            item = annotation_from_json(entry)
        except ValueError as exc:
            raise _bad(path, f"manifest.json: {exc}") from None
        if item is not None and 0 <= item.z < image.n_slices:
            items.append(item)
    return items


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
    cls = RESULT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise _bad(path, f"{MANIFEST}: unknown result type {kind!r}")
    if cls.payload == "npz":
        payload: Any = _load_npz(zf, name, path)
    else:
        try:
            payload = json.loads(zf.read(name).decode("utf-8"))
        except KeyError:
            raise _bad(path, f"entry {name} is missing") from None
    try:
        return cls.from_session(info, entry, payload, image)
    except ValueError as exc:
        raise _bad(path, f"{name}: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise _bad(path, f"{name}: {type(exc).__name__}: {exc}") from exc
