"""More checks of the frozen-app smoke test (smoke_test.py runs them): similar-case search, PACS, the
offline user guide and the classic tools, i.e. the parts of the app that reach the libraries the clinic build
trims (usearch/NumKong, pynetdicom, dicomweb-client/requests, scipy.ndimage, skimage.filters).

Standard library only, like smoke_test.py. Each function takes the smoke test's ``check(condition, reason)``
and ``ok(name, detail)`` so that a failure is the caller's one-line SmokeFailure.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

Check = Callable[[bool, str], None]
Ok = Callable[..., None]

# every threshold method `segment --threshold` offers (workbench/processing/threshold.py): each reaches a
# different skimage.filters function, the part of scikit-image the clinic build keeps
THRESHOLD_METHODS = ("otsu", "li", "yen", "triangle", "mean", "isodata")


def write_png(path: Path, rows: list[bytes], width: int) -> None:
    """An 8-bit greyscale PNG (filter 0 on every row)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + r for r in rows)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, len(rows), 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _synthetic(kind: str, size: int = 96) -> list[bytes]:
    """Three images unlike each other and unlike the MRI sample: a ramp, a checkerboard, a bright disc."""
    rows = []
    for y in range(size):
        if kind == "ramp":
            rows.append(bytes((x * 255) // (size - 1) for x in range(size)))
        elif kind == "checker":
            rows.append(bytes(230 if ((x // 12) + (y // 12)) % 2 else 20 for x in range(size)))
        else:
            c = size / 2
            rows.append(bytes(220 if (x - c) ** 2 + (y - c) ** 2 < (size / 4) ** 2 else 30 for x in range(size)))
    return rows


def check_similar(app, root: Path, *, check: Check, ok: Ok) -> None:
    """`index` a folder with the bundled similar-encoder, `search` it (the query finds itself first), re-index
    incrementally, and `doctor`'s usearch self-test (an HNSW graph built, saved, loaded and searched: the
    approximate index of large libraries, which a small library never reaches)."""
    library = app.work / "library"
    library.mkdir()
    sample = root / "assets" / "samples" / "mri_t1_noisy.png"
    shutil.copy(sample, library / sample.name)
    for kind in ("ramp", "checker", "disc"):
        write_png(library / f"{kind}.png", _synthetic(kind), 96)
    db = app.work / "library.wbindex"
    out = app.run(["index", str(library), "--db", str(db)]).stdout
    check("4 added" in out and "4 files" in out, f"index: {out.strip().splitlines()[:1]}")
    hits = json.loads(app.run(["search", str(library / sample.name), "--db", str(db), "-k", "4", "--json"]).stdout)
    check(len(hits) == 4, f"search: {len(hits)} hits, expected 4")
    check(Path(hits[0]["path"]).name == sample.name and hits[0]["score"] > 0.999,
          f"search: the query is not its own best match: {hits[0]}")
    again = app.run(["index", str(library), "--db", str(db)]).stdout
    check("0 added" in again and "4 unchanged" in again, f"index (again): {again.strip().splitlines()[:1]}")
    doctor = app.run(["doctor"]).stdout
    line = next((x for x in doctor.splitlines() if x.startswith("similar-case search")), "")
    check(": usearch " in line and ": ok " in line, f"doctor: usearch self-test: {line!r}")
    ok("similar-case search", f"index 4 images + search (self first, score {hits[0]['score']:.4f}) + "
                              f"incremental re-index; {line.split(':', 1)[1].strip()}")


class _QidoHandler(BaseHTTPRequestHandler):
    """A DICOMweb server that answers every QIDO-RS study search with one study (application/dicom+json)."""

    requests: list[str] = []
    STUDY = [{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Smoke^Test"}]},
              "00100020": {"vr": "LO", "Value": ["SMOKE-1"]},
              "0020000D": {"vr": "UI", "Value": ["1.2.826.0.1.3680043.8.498.1"]},
              "00080020": {"vr": "DA", "Value": ["20261201"]}}]

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        type(self).requests.append(self.path)
        # the client pages (offset=...) until a page comes back empty: one study on the first page only
        offset = parse_qs(urlsplit(self.path).query).get("offset", ["0"])[0]
        body = json.dumps(self.STUDY if offset in ("", "0") else []).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_pacs(app, dicom_dir: Path, *, check: Check, ok: Ok) -> None:
    """DICOMweb (echo + study search against a local stdlib server: dicomweb-client, requests) and, where
    DCMTK's storescp is installed, DIMSE (C-ECHO + C-STORE of a pydicom test file: workbench/pacs/upper.py). Only the
    loopback interface is used; smoke_test.sh brings it up inside its network namespace."""
    try:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _QidoHandler)
    except OSError as exc:
        print(f"skip  PACS: no loopback interface here ({exc})", flush=True)
        return
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        echo = app.run(["pacs", "echo", url], timeout=60).stdout
        check(": OK (" in echo, f"pacs echo (DICOMweb): {echo.strip()!r}")
        found = json.loads(app.run(["pacs", "find", url, "--patient-id", "SMOKE-1", "--json"], timeout=60).stdout)
        check(len(found) == 1 and found[0].get("PatientID") == "SMOKE-1",
              f"pacs find (DICOMweb): {str(found)[:200]}")
        check(any("/studies" in p and "SMOKE-1" in p for p in _QidoHandler.requests),
              f"pacs find (DICOMweb): no QIDO-RS study search reached the server: {_QidoHandler.requests}")
    finally:
        server.shutdown()
        server.server_close()
    detail = f"DICOMweb echo + QIDO-RS find ({len(_QidoHandler.requests)} requests)"

    storescp = shutil.which("storescp")
    if storescp is None:
        print("skip  PACS DIMSE: storescp (DCMTK) not installed", flush=True)
        ok("PACS", detail)
        return
    inbox = app.work / "storescp"
    inbox.mkdir()
    port = _free_port()
    scp = subprocess.Popen([storescp, "-aet", "SMOKESCP", "-od", str(inbox), str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        node = f"SMOKESCP@127.0.0.1:{port}"
        for _ in range(50):  # storescp needs a moment to listen
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        echo = app.run(["pacs", "echo", node], timeout=60).stdout
        check(": OK (" in echo, f"pacs echo (DIMSE): {echo.strip()!r}")
        app.run(["pacs", "send", node, str(dicom_dir / "CT_small.dcm")], timeout=120)
        received = list(inbox.iterdir())
        check(len(received) == 1 and received[0].stat().st_size > 30000,
              f"pacs send (DIMSE): storescp received {[p.name for p in received]}")
    finally:
        scp.terminate()
        try:
            scp.wait(timeout=10)
        except subprocess.TimeoutExpired:
            scp.kill()
            scp.wait(timeout=10)
    ok("PACS", f"{detail}; DIMSE C-ECHO + C-STORE of CT_small.dcm to storescp ({received[0].stat().st_size} bytes)")


def check_help(root: Path, *, check: Check, ok: Ok) -> None:
    """The offline user guide of Help > User guide: the bundled page and every picture it shows."""
    data = root / "workbench" / "gui" / "help" / "data"
    guide = data / "USER_GUIDE.md"
    check(guide.is_file(), f"{guide}: missing")
    text = guide.read_text(encoding="utf-8")
    images = sorted(set(re.findall(r"!\[[^\]]*\]\((images/[^)\s]+)\)", text)))
    missing = [rel for rel in images if not (data / rel).is_file()]
    check(bool(images) and not missing, f"user guide: {len(images)} pictures, missing {missing[:3]}")
    ok("user guide", f"{guide.stat().st_size // 1024} KiB, all {len(images)} pictures present")


def check_tools(app, root: Path, *, check: Check, ok: Ok) -> None:
    """`segment` with every threshold method and the clean-up steps (skimage.filters, scipy.ndimage), then
    `measure` of the mask: what the trimmed SciPy / scikit-image of the clinic build must still do."""
    sample = root / "assets" / "samples" / "mri_t1_noisy.png"
    out = app.work / "tools"
    for method in THRESHOLD_METHODS:
        app.run(["segment", str(sample), "--threshold", method, "-o", str(out / f"{method}.png")])
    mask = out / "otsu-clean.png"
    app.run(["segment", str(sample), "--threshold", "otsu", "--islands", "largest", "--fill-holes",
             "--open", "2px", "--dilate", "1px", "--smooth", "1px", "-o", str(mask)])
    table = json.loads(app.run(["measure", str(sample), str(mask), "--json"]).stdout)
    rows = table if isinstance(table, list) else table.get("labels", table.get("rows", []))
    check(bool(rows), f"measure: no label measured in {mask.name}: {str(table)[:200]}")
    ok("classic tools", f"segment --threshold {'/'.join(THRESHOLD_METHODS)}, islands + fill-holes + open + "
                        f"dilate + smooth; measure: {len(rows)} label(s)")
