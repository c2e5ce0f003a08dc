"""Checksums of a plugin's model files: the sha256 of ``model.file`` and of every external-data file the
graph loads, verified before a session is created; hashes cached by file identity."""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from ..core.errors import PluginError
from .spec import PluginSpec, _inside

_HASH_CACHE: dict[tuple, str] = {}
_HASH_LOCK = threading.Lock()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, cached so that re-opening a plugin costs nothing.

    The cache key is (path, device, inode, size, mtime, ctime): replacing the file (new inode), rewriting
    it in place (mtime) or restoring its old mtime with ``touch -d`` / ``os.utime`` (which sets ctime)
    all miss the cache and re-hash. Only FIFOs/devices are refused before opening (they would hang).
    """
    from ..io.folders import require_regular

    path = Path(path)
    st = require_regular(path, error=PluginError, what="model file")
    key = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _HASH_LOCK:
        if key in _HASH_CACHE:
            return _HASH_CACHE[key]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _HASH_LOCK:
        _HASH_CACHE[key] = value
    return value


def verify_sha256(spec: PluginSpec) -> None:
    """Refuse a model whose file does not match ``model.sha256``.

    Raises
    ------
    PluginError
        ``plugins/x/plugin.yaml: model.sha256: model.onnx has sha256 ab12..., the manifest says cd34...``
    """
    path = spec.model_path
    if not path.is_file():
        raise spec.error("model.file", f"{spec.model.file!r} not found in the plugin folder")
    actual = file_sha256(path)
    if actual != spec.model.sha256:
        raise spec.error("model.sha256", f"{spec.model.file} has sha256 {actual}, the manifest says "
                                         f"{spec.model.sha256} (file changed or corrupted)")
    verify_external_data(spec)


def model_files(spec: PluginSpec) -> list[Path]:
    """Every file the graph loads: the model and its external-data files (resolved, inside the folder).

    Raises
    ------
    PluginError
        The model is not a readable ONNX file, or an external-data location leaves the plugin folder.
    """
    from .guards import external_data_files

    path = spec.model_path
    try:
        names = external_data_files(path)
    except (ValueError, OSError) as exc:
        raise spec.error("model.file", f"{spec.model.file} is not a readable ONNX file ({exc})") from exc
    files = [path]
    for name in names:
        target = path.parent / name
        if Path(name).is_absolute() or not _inside(spec.folder, target):
            raise spec.error("model.external_data", f"{spec.model.file} loads {name!r}, outside the plugin folder")
        files.append(target.resolve())
    return files


def verify_external_data(spec: PluginSpec) -> None:
    """Every external-data file the graph loads must be listed in ``model.external_data`` with its sha256,
    and match it (swapping the weights file must not change results silently).

    Raises
    ------
    PluginError
    """
    files = model_files(spec)[1:]
    listed = {str(Path(k)): v for k, v in spec.model.external_data.items()}
    base = spec.model_path.parent
    missing = []
    for target in files:
        rel = os.path.relpath(target, base)
        if not target.is_file():
            raise spec.error("model.external_data", f"{spec.model.file} loads {rel!r}, which is missing")
        actual = file_sha256(target)
        expected = listed.get(str(Path(rel)))
        if expected is None:
            missing.append(f"{rel}: {actual}")
        elif actual != expected:
            raise spec.error("model.external_data", f"{rel} has sha256 {actual}, the manifest says {expected} "
                                                    "(file changed or corrupted)")
    if missing:
        raise spec.error("model.external_data", f"{spec.model.file} loads external data not covered by a "
                                                f"checksum; add to plugin.yaml model.external_data: "
                                                f"{{{', '.join(missing)}}}")
