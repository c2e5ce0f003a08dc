"""Folder scan: every file's header once, image files grouped by series (`list_dicom_series`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...core.errors import ImageReadError
from .._common import CancelFn, ProgressFn, check_cancel, decoding, report
from .header import DICM_OFFSET, _dcmread, _describe, _int, _refuse_imageless_image, _Slice, _text, has_dicom_preamble


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found in a folder (see :func:`list_dicom_series`)."""

    uid: str
    description: str
    modality: str
    n_files: int
    n_frames: int
    rows: int
    columns: int
    series_number: int | None = None
    study_uid: str = ""


# -- folder scan ---------------------------------------------------------------------------------------
def _iter_files(folder: Path) -> list[Path]:
    # regular files only (a FIFO or a device inside the folder would hang the open); dangling links and
    # symlink loops are skipped with a note in the log
    from ..folders import log_note, scan_folder

    return [p for p in scan_folder(folder, recursive=True, note=log_note) if p.name.upper() != "DICOMDIR"]


def _scan_folder(folder: Path, progress: ProgressFn | None, cancel: CancelFn | None,
                 total_steps: int | None = None) -> tuple[list[_Slice], int, int]:
    """Parse every DICOM file's header once. Returns (image slices, n_files, n_ignored)."""
    files = _iter_files(folder)
    if not files:
        raise ImageReadError("folder holds no files", path=folder)
    total = total_steps if total_steps is not None else len(files)
    slices: list[_Slice] = []
    ignored = 0
    for i, path in enumerate(files):
        check_cancel(cancel, folder)
        with open(path, "rb") as fh:
            head = fh.read(DICM_OFFSET + 4)
        if not has_dicom_preamble(head):
            ignored += 1  # not DICOM (or preamble-less legacy files, which we only open one by one)
            continue
        ds = _dcmread(path, force=False)
        with decoding(path, "DICOM header"):  # pydicom converts elements lazily, on first access
            s = _describe(path, ds)
            if s is None:
                _refuse_imageless_image(path, ds)
        if s is None:
            ignored += 1  # SR, RT plan, presentation state...
        else:
            slices.append(s)
        report(progress, i + 1, total)
    return slices, len(files), ignored


def _group(slices: list[_Slice]) -> dict[str, list[_Slice]]:
    groups: dict[str, list[_Slice]] = {}
    for s in slices:
        groups.setdefault(s.series_uid, []).append(s)
    return groups


def _series_info(uid: str, members: list[_Slice]) -> SeriesInfo:
    ds = members[0].ds
    with decoding(members[0].path, "DICOM header"):
        return _series_info_of(uid, members, ds)


def _series_info_of(uid: str, members: list[_Slice], ds) -> SeriesInfo:
    return SeriesInfo(
        uid=uid,
        description=_text(ds, "SeriesDescription"),
        modality=_text(ds, "Modality"),
        n_files=len(members),
        n_frames=sum(m.frames for m in members),
        rows=members[0].rows,
        columns=members[0].cols,
        series_number=_int(ds, "SeriesNumber"),
        study_uid=_text(ds, "StudyInstanceUID"),
    )


def list_dicom_series(folder: str | Path, *, progress: ProgressFn | None = None,
                      cancel: CancelFn | None = None) -> list[SeriesInfo]:
    """The image series in a folder (recursively), largest first.

    Parameters
    ----------
    folder : str or Path
        A folder of DICOM files (any depth; files without the DICOM preamble are ignored).
    progress : callable(done, total), optional
    cancel : callable() -> bool, optional
        Returning True raises :class:`~workbench.core.errors.CancelledError`.

    Returns
    -------
    list of SeriesInfo
        ``uid``, ``description``, ``modality``, ``n_files``... so the caller can choose one and pass its
        ``uid`` to :func:`workbench.io.read_image` as ``series_uid``.

    Raises
    ------
    ImageReadError
        The folder does not exist, holds no DICOM image, or a DICOM file in it is corrupt.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError("not a folder", path=folder)
    slices, _, _ = _scan_folder(folder, progress, cancel)
    groups = _group(slices)
    infos = [_series_info(uid, members) for uid, members in groups.items()]
    infos.sort(key=lambda s: (-s.n_frames, s.series_number if s.series_number is not None else 1 << 30, s.uid))
    return infos
