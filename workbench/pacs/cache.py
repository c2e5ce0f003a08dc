"""The local study cache: ``<user data dir>/workbench/pacs-cache/<StudyInstanceUID>/<SeriesInstanceUID>/``.

Retrievals of the GUI land here (the CLI writes where ``-o`` says), and so do the search dialog's series
previews (``.thumbnails/<SeriesInstanceUID>.png``, :mod:`.thumbnails`). The cache holds at most ``cap_mb``
megabytes, previews included: after each retrieval and each batch of previews the least recently used
entries -- a whole study, or one preview -- are deleted (never the study just used).
``.last_used`` in a study folder records its use (its mtime), a preview's own mtime records its last
showing. ``WORKBENCH_PACS_CACHE_DIR`` overrides the root.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from .errors import PacsError

STAMP = ".last_used"
#: the previews' folder below the cache root (see :func:`.thumbnails.thumbnail_dir`)
THUMBNAILS = ".thumbnails"


def default_cache_root() -> Path:
    override = os.environ.get("WORKBENCH_PACS_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("workbench", appauthor=False)) / "pacs-cache"


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


class StudyCache:
    """A size-capped, least-recently-used folder of retrieved studies."""

    def __init__(self, root: str | Path | None = None, *, cap_mb: int = 4096) -> None:
        self.root = Path(root) if root is not None else default_cache_root()
        self.cap_bytes = int(cap_mb) * 1024 * 1024

    def study_dir(self, study_uid: str) -> Path:
        """The folder of a study (created) and mark it used now."""
        from .storage import series_folder_for

        path = series_folder_for(self.root, study_uid)  # same UID check
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PacsError(f"cannot create the study cache ({exc.strerror})", path=path) from exc
        self.touch(study_uid)
        return path

    def touch(self, study_uid: str) -> None:
        stamp = self.root / study_uid / STAMP
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        now = time.time()
        os.utime(stamp, (now, now))

    def studies(self) -> list[tuple[Path, float, int]]:
        """``(folder, last used, bytes)`` of every cached study, least recently used first."""
        if not self.root.is_dir():
            return []
        out = []
        for entry in self.root.iterdir():
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            stamp = entry / STAMP
            try:
                used = stamp.stat().st_mtime if stamp.exists() else entry.stat().st_mtime
            except OSError:
                continue
            out.append((entry, used, _size(entry)))
        return sorted(out, key=lambda t: t[1])

    def previews(self) -> list[tuple[Path, float, int]]:
        """``(file, last shown, bytes)`` of every cached series preview, least recently used first."""
        out = []
        try:
            entries = list(os.scandir(self.root / THUMBNAILS))
        except OSError:
            return []
        for entry in entries:
            try:
                if entry.is_file():
                    st = entry.stat()
                    out.append((Path(entry.path), st.st_mtime, st.st_size))
            except OSError:
                continue
        return sorted(out, key=lambda t: t[1])

    def size(self) -> int:
        """Bytes held: the studies and the previews."""
        return sum(s for _p, _u, s in self.studies()) + sum(s for _p, _u, s in self.previews())

    def evict(self, *, keep: set[str] = frozenset()) -> list[Path]:
        """Delete the least recently used studies and previews until the cache fits its cap (never a
        study named in ``keep``); returns what was deleted."""
        entries = sorted(self.studies() + self.previews(), key=lambda t: t[1])
        total = sum(s for _p, _u, s in entries)
        removed: list[Path] = []
        for path, _used, size in entries:
            if total <= self.cap_bytes:
                break
            if path.is_dir():
                if path.name in keep:
                    continue
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            total -= size
            removed.append(path)
        return removed
