"""``workbench index``: embed every image of a folder into an index file, incrementally.

A re-run compares each file's content fingerprint (sha256) with the stored one: unchanged files are
skipped, changed ones re-embedded, new ones added, and entries of files gone from the folder removed.
Each file is committed on its own (:meth:`~workbench.similar.store.IndexStore.replace_file`), so a run
killed at any point is resumed by running it again: nothing is half-written or duplicated.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..core.errors import CancelledError, WorkbenchError
from ..core.image import ImageVolume
from ..inference.embedding import Embedder
from ..io.folders import IMAGE_SUFFIXES
from . import ann
from .store import IndexStore, SearchIndexError

ProgressFn = Callable[[int, int, str], None]


@dataclass
class IndexSummary:
    """What one ``index`` run did (paths as stored)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)
    files: int = 0
    vectors: int = 0
    ann: bool = False  # an approximate index matches the store after the run

    def lines(self) -> list[str]:
        """The human summary: one line of counts, then one line per skipped file."""
        head = (f"indexed: {len(self.added)} added, {len(self.changed)} changed, {self.unchanged} unchanged, "
                f"{len(self.removed)} removed, {len(self.skipped)} skipped; the index holds {self.files} "
                f"files, {self.vectors} vectors" + (" (approximate index up to date)" if self.ann else ""))
        return [head] + [f"skipped {path}: {reason}" for path, reason in self.skipped]


def file_fingerprint(path: str | Path) -> str:
    """sha256 of the file's bytes (the content, not the name or mtime: a copy is recognised, a touch is not
    a change)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _under(path: str, root: str, recursive: bool) -> bool:
    """Whether a stored path belongs to this run's listing scope (for removing deleted files)."""
    parent = os.path.dirname(path)
    if recursive:
        return parent == root or parent.startswith(root + os.sep)
    return parent == root


def check_encoder(store: IndexStore, embedder: Embedder, db: Path) -> None:
    """Refuse to mix vectors of two encoders in one index (their scores would be meaningless)."""
    stored = store.get_meta("encoder")
    if stored is not None and stored != embedder.identity:
        raise SearchIndexError(f"built with encoder {stored.split(':')[0]}, not {embedder.identity.split(':')[0]} "
                               "(use the same -m, or a new --db)", path=db)


# the identity fields kept with --identity (opt-in): enough to find the patient's study again, nothing more
IDENTITY_FIELDS = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyDate",
                   "StudyDescription", "StudyInstanceUID", "SeriesInstanceUID", "SeriesDescription")
THUMB_SIDE = 64


def thumbnail_png(image: ImageVolume, index: int, side: int = THUMB_SIDE) -> bytes:
    """Slice ``index`` windowed as the viewer first shows it, at most ``side`` px, as PNG bytes (8-bit gray,
    or RGB for colour images)."""
    from ..export.overlay import display_rgb

    rgb = display_rgb(image, index)
    if not image.is_color:
        rgb = rgb[..., 0]
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # cv2 encodes any uint8 array; kept as a clear error rather than an empty blob
        raise WorkbenchError("could not encode the thumbnail", path=image.path)
    return buf.tobytes()


def identity_fields(image: ImageVolume) -> dict[str, str]:
    """The opt-in identity fields of a DICOM image (empty for other files)."""
    header = image.metadata.get("dicom") or {}
    return {key: str(header[key]) for key in IDENTITY_FIELDS if header.get(key) not in (None, "")}


def index_folder(folder: str | Path, db: str | Path, encoder: str | Path, *, recursive: bool = False,
                 progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                 identity: bool = False, thumbnails: bool = True) -> IndexSummary:
    """Embed the images of ``folder`` into the index ``db`` (created when missing).

    Parameters
    ----------
    folder : path
        The image folder (suffixes of ``workbench batch``: PNG/JPEG/TIFF/BMP, DICOM, NIfTI, .npy).
    db : path
        The index file.
    encoder : str or path
        A ``task: embedding`` plugin id or folder.
    recursive : bool
        Include sub-folders.
    progress : callable(done, total, path), optional
    cancel : threading.Event, optional
        Checked between files; what is committed stays.
    identity : bool
        Also store the patient/study fields of DICOM files (:data:`IDENTITY_FIELDS`). Off by default: the
        index then holds no patient data beyond what the user's own paths say.
    thumbnails : bool
        Store a 64 px PNG thumbnail per slice (for result lists).

    Returns
    -------
    IndexSummary

    Raises
    ------
    WorkbenchError
        The folder, the encoder or the index file cannot be used (one line).
    CancelledError
    """
    from ..io.folders import scan_folder

    root = Path(folder).resolve()
    db = Path(db)
    files = scan_folder(root, recursive=recursive, suffixes=IMAGE_SUFFIXES)
    files = [f for f in files if f.resolve() != db.resolve()]
    embedder = Embedder(encoder)
    summary = IndexSummary()
    with IndexStore(db, create=True) as store:
        check_encoder(store, embedder, db)
        store.set_meta({"encoder": embedder.identity, "encoder_ref": str(_encoder_ref(embedder))})
        stored = store.fingerprints()
        # a graph that matches the store now can be updated with this run's changes instead of rebuilt
        graph_current = ann.load(store, db) is not None
        removed_keys: list[int] = []
        added_keys: list[int] = []
        listed = set()
        with store.group() as group, ThreadPoolExecutor(max_workers=1) as pool:
            # reading, fingerprinting and thumbnails of the next files run in a thread while this one embeds
            # (cv2, hashlib and onnxruntime release the GIL), as batch's prefetch does
            ahead: deque[Future[_Loaded]] = deque()
            queue = iter(files)

            def refill() -> None:
                while len(ahead) < PREFETCH:
                    nxt = next(queue, None)
                    if nxt is None:
                        return
                    ahead.append(pool.submit(_load, nxt, stored, thumbnails))

            refill()
            n = 0
            while ahead:
                if cancel is not None and cancel.is_set():
                    for fut in ahead:
                        fut.cancel()
                    raise CancelledError()
                item = ahead.popleft().result()
                refill()
                n += 1
                key = item.key
                listed.add(key)
                if progress is not None:
                    progress(n, len(files), key)
                if item.error is not None:
                    summary.skipped.append((key, item.error))
                    if item.stale and key in stored:  # changed into something unreadable: old vectors are stale
                        removed_keys += store.remove_file(key)
                    continue
                if item.image is None:
                    summary.unchanged += 1
                    continue
                try:
                    vectors = embedder.embed(item.image)
                except WorkbenchError as exc:
                    summary.skipped.append((key, exc.reason))
                    if key in stored:
                        removed_keys += store.remove_file(key)
                    continue
                old, new = store.replace_file(key, item.fingerprint, item.image.modality, vectors,
                                              thumbnails=item.thumbs,
                                              identity=identity_fields(item.image) if identity else None)
                removed_keys += old
                added_keys += new
                (summary.changed if key in stored else summary.added).append(key)
                group.maybe_commit()
            for key in sorted(stored):
                if key not in listed and _under(key, str(root), recursive) and not os.path.exists(key):
                    removed_keys += store.remove_file(key)
                    summary.removed.append(key)
        summary.files, summary.vectors = store.counts()
        # the approximate index follows the store: updated with this run's changes when it matched the store
        # at the start, rebuilt when it did not (a killed run before, a copy, a damaged file)
        if ann.load(store, db) is not None:
            summary.ann = True
        elif graph_current:
            summary.ann = ann.update(store, db, removed_keys, added_keys) is not None
        else:
            summary.ann = ann.build(store, db) is not None
    return summary


PREFETCH = 2  # files read ahead of the one being embedded


@dataclass
class _Loaded:
    """One file as the prefetch thread leaves it: unchanged (no image), read (image + thumbnails) or failed."""

    key: str
    fingerprint: str = ""
    image: ImageVolume | None = None
    thumbs: list[bytes] | None = None
    error: str | None = None
    stale: bool = False  # the error came from reading a changed file (its old entry must go)


def _load(path: Path, stored: dict[str, str], thumbnails: bool) -> _Loaded:
    """Fingerprint ``path`` and, when it is new or changed, read it and make its thumbnails (prefetch
    thread: no store access here)."""
    from ..io import read_image

    key = str(path.resolve())
    try:
        fingerprint = file_fingerprint(path)
    except OSError as exc:
        return _Loaded(key, error=f"cannot read: {exc.strerror or exc}")
    if stored.get(key) == fingerprint:
        return _Loaded(key, fingerprint)
    try:
        image = read_image(path)
        thumbs = [thumbnail_png(image, i) for i in range(image.n_slices)] if thumbnails else None
    except WorkbenchError as exc:
        return _Loaded(key, fingerprint, error=exc.reason, stale=True)
    return _Loaded(key, fingerprint, image, thumbs)


def _encoder_ref(embedder: Embedder) -> str:
    """How ``search`` finds the encoder again: its folder for a plugin given by path, else its id."""
    return str(embedder.spec.folder) if embedder.spec.source == "path" else embedder.spec.id


@dataclass(frozen=True)
class DuplicatePair:
    """Two stored slices of different files whose vectors' cosine similarity is at least the threshold."""

    score: float
    a: tuple[str, int]  # (path, slice)
    b: tuple[str, int]


def find_duplicates(db: str | Path, *, threshold: float = 0.995, block: int = 2048) -> list[DuplicatePair]:
    """Near-duplicate pairs of the index, best first: every pair of vectors of two different files with
    cosine similarity >= ``threshold`` (exact, block by block: ``n^2 / 2`` dot products, about a second
    at 10^4 vectors).

    Raises
    ------
    WorkbenchError
        ``threshold`` outside (0, 1], or the index cannot be read.
    """
    if not 0.0 < threshold <= 1.0:
        raise WorkbenchError(f"--threshold {threshold}: must be in (0, 1]")
    with IndexStore(db) as store:
        entries, matrix = store.load_vectors()
    if len(entries) < 2:
        return []
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    paths = np.array([e.path for e in entries], dtype=object)
    pairs: list[DuplicatePair] = []
    for start in range(0, len(entries), block):
        sim = unit[start:start + block] @ unit.T
        rows, cols = np.nonzero(sim >= threshold - 1e-6)
        keep = (cols > rows + start) & (paths[rows + start] != paths[cols])  # upper triangle, other files
        for r, c in zip(rows[keep], cols[keep]):
            ea, eb = entries[r + start], entries[c]
            pairs.append(DuplicatePair(min(1.0, float(sim[r, c])), (ea.path, ea.slice), (eb.path, eb.slice)))
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs
