"""Safe file and folder access: regular files only, symlink loops and dangling links skipped with a note.

Opening a FIFO blocks until a writer appears, and ``/dev/urandom`` never ends: both hang a reader that
``open()``\\ s them. Every reader therefore checks :func:`require_regular` *before* opening, and folder scans
go through :func:`scan_folder`, which follows no directory symlink twice (a link to a parent folder is a
loop) and reports what it skipped instead of raising on it.
"""
from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path
from typing import Callable, Collection, Iterable

from ..core.errors import ImageReadError, WorkbenchError

# What a folder scan of images takes as an image by name (batch inputs, similar-case indexing).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".nii.gz", ".npy")

NoteFn = Callable[[str], None]


def display(path: str | Path) -> str:
    """``path`` as printable text: undecodable bytes of a non-UTF-8 file name (kept by Python as lone
    surrogates) become U+FFFD, so printing it or writing it into a UTF-8 file cannot fail."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def stderr_note(message: str) -> None:
    """The default note: one ``workbench: note:`` line on stderr."""
    print(f"workbench: note: {display(message)}", file=sys.stderr)


def kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def require_regular(path: str | Path, *, error: type[WorkbenchError] = ImageReadError,
                    what: str = "file") -> os.stat_result:
    """Refuse, before anything opens it, a path that is not a regular file (FIFO, device, socket, folder),
    a dangling symlink or a symlink loop.

    Returns
    -------
    os.stat_result
        The file's stat (symlinks followed).

    Raises
    ------
    WorkbenchError
        Of class ``error``, naming the path.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error("a symlink loop", path=p) from None
        if os.path.islink(p):
            raise error(f"a dangling symlink (to {display(os.readlink(p))})", path=p) from None
        if exc.errno == errno.ENOENT:
            raise error("no such file", path=p) from None
        raise error(f"cannot open ({exc.strerror or exc})", path=p) from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"is {kind_of(st.st_mode)}; a {what} must be a regular file", path=p)
    return st


def scan_folder(folder: str | Path, *, recursive: bool = False, suffixes: Iterable[str] | None = None,
                exclude: str | Path | None = None, exclude_listed: Collection[str] = (),
                hidden: bool = False, note: NoteFn | None = stderr_note) -> list[Path]:
    """Regular files of ``folder`` (sorted), optionally recursive and filtered by suffix.

    Parameters
    ----------
    folder : path
    recursive : bool
        Descend into sub-folders; a symlinked folder is entered once (by its device + inode), so a link
        to a parent is not a loop.
    suffixes : iterable of str, optional
        Lower-case name endings to keep (``".png"``, ``".nii.gz"``); all files when None.
    exclude : path, optional
        A folder whose contents are never returned (an output folder inside the input folder).
    exclude_listed : collection of str
        Paths (as strings, ``folder / name``) never returned: outputs an earlier run recorded.
    hidden : bool
        Include names starting with a dot.
    note : callable(str), optional
        Told about each skipped entry (dangling symlink, loop, FIFO/device); default one stderr line.

    Raises
    ------
    WorkbenchError
        ``folder`` is not a folder or cannot be listed.
    """
    root = Path(folder)
    if not root.is_dir():
        raise WorkbenchError("not a folder", path=root)
    ends = tuple(s.lower() for s in suffixes) if suffixes is not None else None
    excluded_dir = None
    if exclude is not None:
        try:
            excluded_dir = os.stat(exclude)
        except OSError:
            excluded_dir = None
    listed = {os.path.abspath(p) for p in exclude_listed}
    seen: set[tuple[int, int]] = set()
    found: list[Path] = []

    def walk(directory: Path, depth: int) -> None:
        try:
            st = os.stat(directory)
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:
            if note:
                note(f"{directory}: skipped (a folder already scanned: symlink loop)")
            return
        seen.add(key)
        if excluded_dir is not None and depth > 0 and key == (excluded_dir.st_dev, excluded_dir.st_ino):
            return
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            if depth == 0:
                raise WorkbenchError(f"cannot list ({exc.strerror or exc})", path=directory) from None
            if note:
                note(f"{directory}: skipped (cannot list: {exc.strerror or exc})")
            return
        for entry in entries:
            if not hidden and entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                est = os.stat(entry.path)
            except OSError as exc:
                if note and (ends is None or entry.name.lower().endswith(ends) or entry.is_symlink()):
                    why = "a symlink loop" if exc.errno == errno.ELOOP else \
                        "a dangling symlink" if entry.is_symlink() else (exc.strerror or str(exc))
                    note(f"{path}: skipped ({why})")
                continue
            if stat.S_ISDIR(est.st_mode):
                if recursive:
                    walk(path, depth + 1)
                continue
            if ends is not None and not entry.name.lower().endswith(ends):
                continue
            if not stat.S_ISREG(est.st_mode):
                if note:
                    note(f"{path}: skipped (is {kind_of(est.st_mode)})")
                continue
            if excluded_dir is not None and (est.st_dev, est.st_ino) == (excluded_dir.st_dev, excluded_dir.st_ino):
                continue
            if listed and os.path.abspath(entry.path) in listed:
                continue
            found.append(path)

    walk(root, 0)
    return sorted(found)


def log_note(message: str) -> None:
    """A note into our log (readers inside the GUI or a batch: not on the terminal)."""
    import logging

    logging.getLogger("workbench.io").info(display(message))
