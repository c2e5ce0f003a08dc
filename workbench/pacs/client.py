"""One entry point for both transports, and the operations built on them (study retrieval, sending).

The CLI (:mod:`workbench.commands.pacs`) and the GUI (:mod:`workbench.gui.pacs_dialog`) call only these.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Generator, Sequence, Union

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from .dimse import DimseClient
from .errors import PacsError
from .nodes import Node, PacsConfig, load_config
from .query import Query
from .storage import Progress, SeriesFolder, series_folder_for
from .web import WebClient

Client = Union[DimseClient, WebClient]
CancelFn = Callable[[], bool]


def _never() -> bool:
    return False


def connect(node: Node, config: PacsConfig | None = None, *, storage_bind: str | None = None) -> Client:
    """A client for ``node`` (nothing is opened until an operation is called)."""
    config = config or load_config()
    if node.kind == "dicomweb":
        return WebClient(node)
    return DimseClient(node, our_ae_title=config.ae_title, storage_port=config.storage_port,
                       storage_bind=storage_bind or config.storage_bind)


def find(client: Client, query: Query, *, cancel: CancelFn = _never) -> list[dict]:
    """Matches of ``query``. A series-level search without a study UID first finds the studies (a strict
    hierarchical PACS needs the study's UID at series level), then their series."""
    if query.level != "series" or query.study_uid or isinstance(client, WebClient):
        return client.find(query, cancel=cancel)
    with client.session():  # DIMSE: all the searches over one association
        return _find_series(client, query, cancel)


def _find_series(client: Client, query: Query, cancel: CancelFn) -> list[dict]:
    studies = client.find(Query(level="study", patient_id=query.patient_id, patient_name=query.patient_name,
                                birth_date=query.birth_date, accession=query.accession,
                                study_date=query.study_date), cancel=cancel)
    out: list[dict] = []
    for study in studies:
        uid = study.get("StudyInstanceUID")
        if uid:
            out += client.find(Query(level="series", study_uid=uid, modality=query.modality,
                                     description=query.description, series_uid=query.series_uid), cancel=cancel)
    return out


def retrieve_study(client: Client, study_uid: str, root: str | Path, *, series_uids: Sequence[str] | None = None,
                   move: bool = False, cancel: CancelFn = _never) -> Generator[Progress, None, list[Path]]:
    """Fetch a study (or some of its series) into ``root/<SeriesInstanceUID>/``; resumable.

    Yields :class:`Progress` over all instances of the series asked for; returns the series folders.
    Series already complete (``.series.json``) are not asked for again.

    Raises
    ------
    PacsError
        The study/series is unknown to the node, or the transfer failed (what arrived stays, complete).
    CancelledError
        ``cancel()`` became true.
    """
    with client.session():  # DIMSE: the search and the C-GETs over one association
        return (yield from _retrieve(client, study_uid, Path(root), series_uids=series_uids, move=move,
                                     cancel=cancel))


def _retrieve(client: Client, study_uid: str, root: Path, *, series_uids: Sequence[str] | None, move: bool,
              cancel: CancelFn) -> Generator[Progress, None, list[Path]]:
    series = client.find(Query(level="series", study_uid=study_uid), cancel=cancel)
    if not series:
        raise PacsError(f"{client.node.label}: no study {study_uid} (or it has no series)")
    if series_uids:
        known = {s.get("SeriesInstanceUID") for s in series}
        unknown = [u for u in series_uids if u not in known]
        if unknown:
            raise PacsError(f"{client.node.label}: study {study_uid} has no series {unknown[0]}")
        series = [s for s in series if s.get("SeriesInstanceUID") in set(series_uids)]
    total = sum(int(s.get("NumberOfSeriesRelatedInstances", 0) or 0) for s in series) or None
    folders: list[Path] = []
    done_before = 0
    for info in series:
        uid = str(info["SeriesInstanceUID"])
        folder = SeriesFolder(series_folder_for(root, uid), study_uid=study_uid, series_uid=uid)
        folders.append(folder.path)
        already = len(folder.have())
        expected = int(info.get("NumberOfSeriesRelatedInstances", 0) or 0)
        if folder.complete and already >= expected:
            done_before += already
            yield Progress(done_before, total, f"series {uid}: already here ({already} instances)", uid)
            continue
        done_before += already
        step = client.retrieve_series(folder, move=move, cancel=cancel)
        got = 0
        try:
            while True:
                p = next(step)
                yield Progress(done_before + p.done, total, p.message, uid)
        except StopIteration as stop:
            got = stop.value or 0
        done_before += got
        now = len(folder.have())
        if expected and now < expected:
            raise PacsError(f"{client.node.label}: series {uid}: {now} of {expected} instances arrived; "
                            "run it again to fetch the rest")
        folder.mark_complete(node=client.node.label, instances=now,
                             extra={"Modality": info.get("Modality"),
                                    "SeriesDescription": info.get("SeriesDescription")})
    return folders


def collect_files(paths: Sequence[str | Path]) -> list[tuple[Path, Dataset]]:
    """The DICOM files named or found (recursively, hidden files skipped) in ``paths``, with headers.

    Raises
    ------
    PacsError
        A named file is missing or not DICOM, or nothing to send was found.
    """
    out: list[tuple[Path, Dataset]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in file.relative_to(path).parts):
                    continue
                header = _header(file, strict=False)
                if header is not None:
                    out.append((file, header))
        elif path.is_file():
            out.append((path, _header(path, strict=True)))
        else:
            raise PacsError("no such file or folder", path=path)
    if not out:
        raise PacsError(f"no DICOM files to send in {', '.join(map(str, paths))}")
    return out


def _header(path: Path, *, strict: bool) -> Dataset | None:
    try:
        ds = dcmread(path, stop_before_pixels=True)
        ds.SOPClassUID, ds.SOPInstanceUID, ds.file_meta.TransferSyntaxUID  # noqa: B018 - required to send
        return ds
    except (InvalidDicomError, AttributeError, OSError, ValueError) as exc:
        if strict:
            raise PacsError("not a DICOM file that can be sent (needs file meta, SOP class and instance UIDs)",
                            path=path) from exc
        return None


def send(client: Client, files: list[tuple[Path, Dataset]], *, cancel: CancelFn = _never
         ) -> Generator[Progress, None, list[tuple[Path, str]]]:
    """C-STORE / STOW-RS ``files``; yields progress; returns the refused ``(path, reason)`` list."""
    return (yield from client.store(files, cancel=cancel))


def refused_message(node: Node, refused: list[tuple[Path, str]], total: int) -> str:
    path, reason = refused[0]
    more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
    return (f"{node.label} refused {len(refused)} of {total} file(s): {path}: {reason}{more}; "
            "the local files are unchanged")
