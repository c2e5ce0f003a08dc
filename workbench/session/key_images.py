"""The key images of a session (issue 15 item 6): one PNG entry per picked view plus its manifest record."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.errors import WorkbenchError
from ..core.key_images import KeyImage
from .snapshot import SessionError

MAX_SIDE = 8192  # a view capture is a screen's size; anything larger in a manifest is not ours


def write_key_images(zf: zipfile.ZipFile, items: list[KeyImage]) -> list[dict[str, Any]]:
    """Write ``key_images/<n>.png`` entries; returns their manifest records."""
    records = []
    for n, item in enumerate(items, start=1):
        ok, buf = cv2.imencode(".png", cv2.cvtColor(item.rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise SessionError(f"cannot encode key image {n} as PNG")
        name = f"key_images/{n}.png"
        zf.writestr(name, buf.tobytes(), compress_type=zipfile.ZIP_STORED)  # PNG is compressed already
        records.append({"file": name, "z": item.z, "caption": item.caption})
    return records


def read_key_images(zf: zipfile.ZipFile, entries: Any, path: Path, image: Any) -> list[KeyImage]:
    """The key images named by the manifest; a damaged entry is one line naming the session file."""
    def bad(why: str) -> SessionError:
        return SessionError(f"not a valid Workbench session ({why})", path=path)

    if not isinstance(entries, list):
        raise bad("manifest.json: 'key_images' is not a list")
    items = []
    for entry in entries:
        try:
            name, z, caption = str(entry["file"]), int(entry["z"]), str(entry.get("caption", ""))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise bad(f"manifest.json: bad key image entry {entry!r}") from None
        try:
            data = zf.read(name)
        except KeyError:
            raise bad(f"entry {name} is missing") from None
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None or max(bgr.shape[:2]) > MAX_SIDE:
            raise bad(f"{name} is not a key image picture")
        if not 0 <= z < image.n_slices:
            continue  # the image has fewer slices now: the picture no longer belongs to it
        try:
            items.append(KeyImage(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), z, caption))
        except WorkbenchError as exc:
            raise bad(f"{name}: {exc}") from None
    return items
