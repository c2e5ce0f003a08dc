"""Output-path guards: no command may overwrite its own input, a saved session or a source image.

One helper for every writing command (``segment -o``, ``measure --csv``, ``export --mask/--measurements
/--report``, ``predict -o``, ``batch -o``). Two layers:

* :func:`check_output` -- called by a command before it computes anything, with every output it will write
  and every file it reads; it refuses, with one line naming the path, an output that is one of the inputs
  (same file, also through a symlink or a hard link), that lies inside an input folder (a DICOM series
  folder would then read the SEG as one more slice), an existing ``.wbsession``, or an existing DICOM file
  that is not a DICOM SEG (an original acquisition). ``force=True`` (``--force``) allows all of that.
* :func:`protecting` -- a process-wide registry of protected paths checked by every atomic write
  (:func:`workbench.io.atomic.atomic_path`) as the backstop for outputs named per image (``predict`` and
  ``batch`` write ``<stem>_mask.png`` etc.; an input called ``x_mask.png`` must survive a run on ``x.png``).
"""
from __future__ import annotations

import os
import stat
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from ..core.errors import WorkbenchError


class OutputPathError(WorkbenchError):
    """An output path would destroy an input, a session or a source image."""


_FORCE_HINT = "give --force to overwrite it anyway"


def _key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # symlink loop
        return path.absolute()


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name the same file (symlinks and hard links included)."""
    ka, kb = _key(Path(a)), _key(Path(b))
    if ka is not None and kb is not None:
        return ka == kb
    return _resolved(Path(a)) == _resolved(Path(b))


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """True when ``path`` lies in ``folder`` or below it (resolved), or is the folder itself."""
    p, f = _resolved(Path(path)), _resolved(Path(folder))
    return p == f or f in p.parents


def is_session_file(path: Path) -> bool:
    """An existing Workbench session (a zip whose manifest says so), whatever its suffix."""
    if path.name.lower().endswith(".wbsession"):
        return path.exists()
    try:
        if not stat.S_ISREG(os.stat(path).st_mode) or not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            return "manifest.json" in zf.namelist() and b"workbench-session" in zf.read("manifest.json")[:4096]
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError):
        return False


def is_source_dicom(path: Path) -> bool:
    """An existing DICOM file that is not a Segmentation (SEG) object: an original we must not replace."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if head[128:132] != b"DICM" and not path.name.lower().endswith((".dcm", ".dicom")):
        return False
    try:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"],
                             force=True)
        return str(getattr(ds, "Modality", "")) != "SEG"
    except Exception:  # noqa: BLE001 - unreadable: not something we can vouch is ours either
        return head[128:132] == b"DICM"


def check_output(output: str | Path, *, inputs: Iterable[str | Path] = (), option: str = "-o",
                 force: bool = False, folder: bool = False) -> Path:
    """Refuse an output that would destroy an input, a session or a source image.

    Parameters
    ----------
    output : str or Path
        The file (or, with ``folder=True``, the folder) the command will write.
    inputs : iterable of path
        Every file and folder the command reads (images, masks, the session, the session's source).
    option : str
        The option that named ``output``, quoted in the message (``-o``, ``--csv``, ``--mask``...).
    force : bool
        ``--force``: allow it.
    folder : bool
        ``output`` is an output folder: it may not be an input folder, and no input may lie inside it
        (``batch -o`` into its own input folder would mix its outputs with the images; ``batch`` also
        skips its own outputs when listing a folder, see :func:`workbench.commands.batch.list_images`).

    Returns
    -------
    Path

    Raises
    ------
    OutputPathError
    """
    out = Path(output)
    if force:
        return out
    for raw in inputs:
        src = Path(raw)
        if folder:
            if is_inside(src, out):
                raise OutputPathError(f"{option}: the output folder holds the input {src}; write the outputs "
                                      f"elsewhere ({_FORCE_HINT})", path=out)
            continue
        if out.exists() and same_file(out, src) or _resolved(out) == _resolved(src):
            raise OutputPathError(f"{option}: this is an input of the command; it would be overwritten "
                                  f"({_FORCE_HINT})", path=out)
        if src.is_dir() and is_inside(out, src):
            raise OutputPathError(f"{option}: inside the input folder {src}; it would be read as part of it "
                                  f"next time ({_FORCE_HINT})", path=out)
    if folder or not out.exists():
        return out
    if out.is_dir():
        raise OutputPathError(f"{option}: is a folder, not a file", path=out)
    if is_session_file(out):
        raise OutputPathError(f"{option}: an existing Workbench session; it would be destroyed ({_FORCE_HINT})",
                              path=out)
    if is_source_dicom(out):
        raise OutputPathError(f"{option}: an existing DICOM image (not a SEG written by Workbench); it would be "
                              f"replaced ({_FORCE_HINT})", path=out)
    return out


# -- the backstop: protected paths checked by every atomic write ----------------------------------------
_lock = threading.Lock()
_protected: list[tuple[Path, tuple[int, int] | None]] = []


@contextmanager
def protecting(paths: Iterable[str | Path], *, enabled: bool = True) -> Iterator[None]:
    """While active, an atomic write (:func:`workbench.io.atomic.atomic_path`) to any of ``paths`` (or into
    a protected folder) raises :class:`OutputPathError`. Process-wide, so writer threads see it too."""
    entries = [(_resolved(Path(p)), _key(Path(p))) for p in paths] if enabled else []
    with _lock:
        _protected.extend(entries)
    try:
        yield
    finally:
        with _lock:
            for entry in entries:
                _protected.remove(entry)


def check_protected(target: Path) -> None:
    """Raise :class:`OutputPathError` when ``target`` is a protected input (see :func:`protecting`)."""
    if not _protected:
        return
    with _lock:
        entries = list(_protected)
    resolved, key = _resolved(target), _key(target)
    for path, pkey in entries:
        if (key is not None and key == pkey) or resolved == path:
            raise OutputPathError("this output would overwrite an input of the command; nothing written "
                                  f"({_FORCE_HINT})", path=target)
