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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..core.errors import CancelledError, WorkbenchError
from ..inference.embedding import Embedder
from ..io.folders import IMAGE_SUFFIXES
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

    def lines(self) -> list[str]:
        """The human summary: one line of counts, then one line per skipped file."""
        head = (f"indexed: {len(self.added)} added, {len(self.changed)} changed, {self.unchanged} unchanged, "
                f"{len(self.removed)} removed, {len(self.skipped)} skipped; the index holds {self.files} "
                f"files, {self.vectors} vectors")
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


def index_folder(folder: str | Path, db: str | Path, encoder: str | Path, *, recursive: bool = False,
                 progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> IndexSummary:
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

    Returns
    -------
    IndexSummary

    Raises
    ------
    WorkbenchError
        The folder, the encoder or the index file cannot be used (one line).
    CancelledError
    """
    from ..io import read_image
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
        listed = set()
        for n, path in enumerate(files, start=1):
            if cancel is not None and cancel.is_set():
                raise CancelledError()
            key = str(path.resolve())
            listed.add(key)
            if progress is not None:
                progress(n, len(files), key)
            try:
                fingerprint = file_fingerprint(path)
            except OSError as exc:
                summary.skipped.append((key, f"cannot read: {exc.strerror or exc}"))
                continue
            if stored.get(key) == fingerprint:
                summary.unchanged += 1
                continue
            try:
                image = read_image(path)
                vectors = embedder.embed(image)
            except WorkbenchError as exc:
                summary.skipped.append((key, exc.reason))
                if key in stored:  # its content changed into something unreadable: the old vectors are stale
                    store.remove_file(key)
                continue
            store.replace_file(key, fingerprint, image.modality, vectors)
            (summary.changed if key in stored else summary.added).append(key)
        for key in sorted(stored):
            if key not in listed and _under(key, str(root), recursive) and not os.path.exists(key):
                store.remove_file(key)
                summary.removed.append(key)
        summary.files, summary.vectors = store.counts()
    return summary


def _encoder_ref(embedder: Embedder) -> str:
    """How ``search`` finds the encoder again: its folder for a plugin given by path, else its id."""
    return str(embedder.spec.folder) if embedder.spec.source == "path" else embedder.spec.id
