"""DICOMweb transport (dicomweb-client): QIDO-RS search, WADO-RS retrieve, STOW-RS store.

Same operations and messages as :mod:`.dimse`. Credentials come from :func:`.secrets.node_secret` (an
environment variable or the OS keyring) and live only in the session's headers; every request is bounded
by the node's timeout, and idempotent requests (GET) are retried with backoff on refused connections and
502/503/504 replies.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable, Generator

from pydicom import dcmread
from pydicom.dataset import Dataset

from ..core.errors import CancelledError
from .errors import PacsError
from .nodes import Node
from .query import RETURN_KEYS, Query, match_from_dataset
from .secrets import node_secret
from .storage import Progress, SeriesFolder

CancelFn = Callable[[], bool]


def _never() -> bool:
    return False


def _client_library():
    try:
        import requests  # noqa: F401  (dicomweb-client's transport, in the same extra)
        from dicomweb_client.api import DICOMwebClient
    except ImportError as exc:  # optional extra
        raise PacsError("DICOMweb needs the dicomweb-client package: pip install 'workbench[pacs]'") from exc
    return DICOMwebClient


class WebClient:
    """Talks to one DICOMweb service."""

    def __init__(self, node: Node) -> None:
        # the optional extra first: without it the user gets its one-line install hint, not an ImportError
        library = _client_library()
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.node = node
        session = requests.Session()
        retry = Retry(total=node.retries, connect=node.retries, read=node.retries, backoff_factor=node.backoff,
                      status_forcelist=(502, 503, 504), allowed_methods=frozenset({"GET", "HEAD"}),
                      raise_on_status=False)
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        secret = node_secret(node)
        if node.auth == "basic":
            session.auth = (node.username or "", secret or "")
        elif node.auth == "bearer":
            session.headers["Authorization"] = f"Bearer {secret}"
        self._session = session
        self._client = library(url=str(node.url), session=session, timeout=node.timeout)

    def _call(self, what: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """Run a dicomweb-client call, turning transport errors into one-line :class:`PacsError`."""
        import requests

        try:
            return fn(*args, **kwargs)
        except requests.exceptions.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "?"
            hint = {401: " (authentication failed: check the user name and secret)",
                    403: " (access denied)", 404: " (not found: check the URL)"}.get(code, "")
            raise PacsError(f"{self.node.label}: {what} failed with HTTP {code}{hint}") from exc
        except requests.exceptions.Timeout as exc:
            raise PacsError(f"{self.node.label}: {what}: no answer within {self.node.timeout:g} s",
                            retryable=True) from exc
        except requests.exceptions.ConnectionError as exc:
            raise PacsError(f"{self.node.label}: {what}: cannot connect (connection refused, host "
                            "unreachable or connection lost)", retryable=True) from exc
        except requests.exceptions.RequestException as exc:
            raise PacsError(f"{self.node.label}: {what} failed ({' '.join(str(exc).split())})") from exc

    # -- operations --------------------------------------------------------------------------------------
    def echo(self) -> float:
        """A one-result QIDO-RS study search: proves the URL, the credentials and the service."""
        t0 = time.perf_counter()
        self._call("QIDO-RS", self._client.search_for_studies, limit=1)
        return (time.perf_counter() - t0) * 1000

    def session(self) -> contextlib.nullcontext:
        """For symmetry with :meth:`DimseClient.session`: HTTP keeps its connections alive by itself."""
        return contextlib.nullcontext(self)

    def find(self, query: Query, *, cancel: CancelFn = _never) -> list[dict]:
        level = "study" if query.level == "patient" else query.level
        filters = query.matching() if query.level != "patient" else Query(
            level="study", patient_id=query.patient_id, patient_name=query.patient_name,
            birth_date=query.birth_date).matching()
        fields = list(RETURN_KEYS[level]) + (["PatientSex"] if query.level == "patient" else [])
        if level == "study":
            raw = self._call("QIDO-RS", self._client.search_for_studies, search_filters=filters, fields=fields,
                             get_remaining=True)
        else:
            study = filters.pop("StudyInstanceUID", None)
            raw = self._call("QIDO-RS", self._client.search_for_series, study_instance_uid=study,
                             search_filters=filters, fields=fields, get_remaining=True)
        if cancel():
            raise CancelledError(f"{self.node.label}: search cancelled")
        matches = [match_from_dataset(Dataset.from_json(item), level) for item in raw]
        if query.level != "patient":
            return matches
        patients: dict[str, dict] = {}
        for item, m in zip(raw, matches):
            ds = Dataset.from_json(item)
            p = patients.setdefault(m.get("PatientID", ""), match_from_dataset(ds, "patient"))
            p["QueryRetrieveLevel"] = "PATIENT"
            p["NumberOfPatientRelatedStudies"] = p.get("_n", 0) + 1
            p["_n"] = p["NumberOfPatientRelatedStudies"]
        return [{k: v for k, v in p.items() if k != "_n"} for p in patients.values()]

    def instance_uids(self, study_uid: str, series_uid: str) -> list[str]:
        return [str(m["SOPInstanceUID"]) for m in self.instances(study_uid, series_uid)]

    def instances(self, study_uid: str, series_uid: str) -> list[dict]:
        """``{"SOPInstanceUID", "InstanceNumber"}`` of each instance of a series (QIDO-RS)."""
        raw = self._call("QIDO-RS", self._client.search_for_instances, study_instance_uid=study_uid,
                         series_instance_uid=series_uid, fields=["SOPInstanceUID", "InstanceNumber"],
                         get_remaining=True)
        out = []
        for item in raw:
            ds = Dataset.from_json(item)
            uid = str(ds.get("SOPInstanceUID", "") or "")
            number = ds.get("InstanceNumber")
            if uid:
                out.append({"SOPInstanceUID": uid, "InstanceNumber": int(number) if number not in (None, "") else None})
        return out

    def rendered_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> bytes:
        """The server's rendering of one instance (WADO-RS ``/rendered``; a JPEG by default), as bytes.

        Neither a media type nor a ``viewport`` is sent: with a media type dicomweb-client asks for a
        multipart image and with a viewport it escapes the comma, and servers such as Orthanc answer both
        with HTTP 400. A full-size JPEG of one image is a few tens of KB; the caller scales it down."""
        return self._call("WADO-RS", self._client.retrieve_instance_rendered, study_uid, series_uid, sop_uid)

    def retrieve_series(self, folder: SeriesFolder, *, move: bool = False, cancel: CancelFn = _never,
                        only: list[str] | None = None) -> Generator[Progress, None, int]:
        """WADO-RS the instances ``folder`` lacks, or just the ``only`` SOPInstanceUIDs (one request per
        instance on resume, one stream otherwise). ``move`` has no meaning for DICOMweb and is ignored."""
        have = folder.have()
        uids = list(only) if only is not None else self.instance_uids(folder.study_uid, folder.series_uid)
        missing = [u for u in uids if u not in have]
        total = len(missing)
        start = folder.written
        yield Progress(0, total, f"{self.node.label}: WADO-RS series {folder.series_uid}", folder.series_uid)
        if not missing:
            return 0
        if have or only is not None:
            stream = (self._call("WADO-RS", self._client.retrieve_instance, folder.study_uid, folder.series_uid,
                                 sop) for sop in missing)
        else:
            stream = self._call("WADO-RS", self._client.iter_series, folder.study_uid, folder.series_uid)
        try:
            iterator = iter(stream)
            while True:
                try:
                    ds = self._call("WADO-RS", next, iterator)
                except StopIteration:
                    break
                folder.write_dataset(ds)
                done = folder.written - start
                yield Progress(done, total, f"WADO-RS {done}/{total}", folder.series_uid)
                if cancel():
                    raise CancelledError(f"{self.node.label}: retrieval cancelled after {done} instance(s); "
                                         "run it again to resume")
        except OSError as exc:
            raise PacsError(f"{folder.path}: cannot write ({exc.strerror or exc})") from exc
        except PacsError as exc:
            raise PacsError(f"{exc} after {folder.written - start} instance(s); the files received are "
                            "complete: run it again to resume", retryable=exc.retryable) from exc
        return folder.written - start

    def store(self, files: list[tuple[Path, Dataset]], *, cancel: CancelFn = _never
              ) -> Generator[Progress, None, list[tuple[Path, str]]]:
        """STOW-RS, one request per file (so a refusal names its file)."""
        refused: list[tuple[Path, str]] = []
        for index, (path, _header) in enumerate(files):
            if cancel():
                raise CancelledError(f"{self.node.label}: send cancelled after {index} of {len(files)} file(s)")
            ds = dcmread(path)
            try:
                response = self._call("STOW-RS", self._client.store_instances, [ds])
            except PacsError as exc:
                if exc.retryable:
                    raise
                refused.append((path, str(exc).split(": ", 1)[-1]))
            else:
                failed = response.get("FailedSOPSequence") if response is not None else None
                if failed:
                    reason = failed[0].get("FailureReason")
                    refused.append((path, f"failure reason {reason}" if reason is not None else "refused"))
            yield Progress(index + 1, len(files), f"STOW-RS {index + 1}/{len(files)}: {path.name}")
        return refused
