"""A small preview per series for the search dialog: the middle instance (by InstanceNumber), rendered.

DICOMweb nodes render it themselves (WADO-RS ``/rendered``): one JPEG crosses the network. Where that
fails (not offered) and for DIMSE nodes, the one instance is retrieved (C-GET of a single SOP instance,
or WADO-RS) into a temporary folder and rendered here: modality rescale, the
header's window (else the 1st-99th percentiles), MONOCHROME1 inverted, scaled to fit ``size`` pixels.

Previews are cached as PNG in ``<study cache>/.thumbnails/<SeriesInstanceUID>.png`` (written atomically;
a series' pixels do not change under the same UID), so a search shown again costs no network at all. They
count towards the study cache's cap and leave it least recently shown first (:mod:`.cache`; each
showing from the cache refreshes the file's mtime).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..core.errors import CancelledError
from .errors import PacsError
from .storage import SeriesFolder, series_folder_for

THUMB_SIZE = 64
CancelFn = Callable[[], bool]


def _never() -> bool:
    return False


def thumbnail_dir(cache_root: str | Path | None = None) -> Path:
    """Where previews are cached (inside the study cache, under its cap)."""
    from .cache import THUMBNAILS, default_cache_root

    return Path(cache_root if cache_root is not None else default_cache_root()) / THUMBNAILS


def render(ds: Any, *, size: int = THUMB_SIZE) -> np.ndarray:
    """An 8-bit preview of a pydicom data set's (first frame of) pixels, fitting ``size`` x ``size``.

    Raises
    ------
    PacsError
        The instance has no pixel data pydicom can decode.
    """
    import cv2

    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise PacsError(f"no preview: cannot decode the pixel data ({exc})") from exc
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if frames > 1:
        pixels = pixels[frames // 2]
    if samples == 1:
        values = pixels.astype(np.float32) * float(ds.get("RescaleSlope", 1) or 1) + float(
            ds.get("RescaleIntercept", 0) or 0)
        center, width = _window(ds)
        if center is None or width is None or width <= 0:
            low, high = np.percentile(values, (1, 99)) if values.size else (0.0, 1.0)
        else:
            low, high = center - width / 2, center + width / 2
        scaled = (values - low) / max(float(high - low), 1e-6)
        image = (np.clip(scaled, 0, 1) * 255).astype(np.uint8)
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            image = 255 - image
    else:
        image = np.clip(pixels, 0, 255).astype(np.uint8)
    h, w = image.shape[:2]
    factor = size / max(h, w, 1)
    if factor < 1:
        image = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))),
                           interpolation=cv2.INTER_AREA)
    return image


def _window(ds: Any) -> tuple[float | None, float | None]:
    """The first VOI window of the header (WindowCenter/WindowWidth may be multi-valued)."""
    from pydicom.multival import MultiValue

    def first(value: Any) -> float | None:
        if isinstance(value, (MultiValue, list, tuple)):
            value = value[0] if len(value) else None
        try:
            return float(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    return first(ds.get("WindowCenter")), first(ds.get("WindowWidth"))


def middle_instance(client: Any, study_uid: str, series_uid: str) -> str:
    """The SOPInstanceUID in the middle of the series (by InstanceNumber, else the PACS's order)."""
    items = client.instances(study_uid, series_uid)
    if not items:
        raise PacsError(f"{client.node.label}: series {series_uid} has no instances")
    numbered = sorted(items, key=lambda m: (m["InstanceNumber"] is None, m["InstanceNumber"] or 0))
    return str(numbered[len(numbered) // 2]["SOPInstanceUID"])


def series_thumbnail(client: Any, study_uid: str, series_uid: str, *, size: int = THUMB_SIZE,
                     cache_dir: str | Path | None = None, cancel: CancelFn = _never) -> np.ndarray:
    """The preview of a series (``(h, w)`` or ``(h, w, 3)`` uint8), from the cache or the node.

    Raises
    ------
    PacsError
        The node failed or the instance has no decodable pixels.
    CancelledError
        ``cancel()`` became true.
    """
    import cv2

    from ..io.atomic import atomic_path

    folder = Path(cache_dir) if cache_dir is not None else thumbnail_dir()
    cached = folder / f"{series_folder_for(folder, series_uid).name}.png"  # (the UID check of folder names)
    if cached.is_file():
        image = cv2.imread(str(cached), cv2.IMREAD_UNCHANGED)
        if image is not None:
            try:
                os.utime(cached)  # shown now: the cache's LRU eviction keeps it longer
            except OSError:
                pass
            return image
    image = _fetch(client, study_uid, series_uid, size=size, cancel=cancel)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached, suffix=".png") as tmp:
            ok, data = cv2.imencode(".png", image)
            if ok:
                tmp.write_bytes(data.tobytes())
    except OSError:
        pass  # a cache that cannot be written only costs the next fetch
    return image


def _fetch(client: Any, study_uid: str, series_uid: str, *, size: int, cancel: CancelFn) -> np.ndarray:

    with client.session():  # DIMSE: the instance search and its C-GET over one association
        return _fetch_in_session(client, study_uid, series_uid, size=size, cancel=cancel)


def _fetch_in_session(client: Any, study_uid: str, series_uid: str, *, size: int, cancel: CancelFn) -> np.ndarray:
    import cv2
    import pydicom

    sop_uid = middle_instance(client, study_uid, series_uid)
    if cancel():
        raise CancelledError("preview cancelled")
    if hasattr(client, "rendered_instance"):  # DICOMweb: let the server render it
        try:
            data = client.rendered_instance(study_uid, series_uid, sop_uid)
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if image is not None:
                h, w = image.shape[:2]
                factor = size / max(h, w, 1)
                if factor < 1:
                    image = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))),
                                       interpolation=cv2.INTER_AREA)
                return image[..., ::-1].copy() if image.ndim == 3 else image  # BGR -> RGB
        except PacsError:
            pass  # not offered by this server: retrieve the instance instead
    with tempfile.TemporaryDirectory(prefix="workbench-thumb-") as tmp:
        folder = SeriesFolder(Path(tmp) / "series", study_uid=study_uid, series_uid=series_uid)
        step = client.retrieve_series(folder, cancel=cancel, only=[sop_uid])
        for _progress in step:
            pass
        files = sorted(folder.path.glob("*.dcm"))
        if not files:
            raise PacsError(f"{client.node.label}: the preview instance {sop_uid} did not arrive")
        return render(pydicom.dcmread(files[0]), size=size)
