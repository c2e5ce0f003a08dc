"""The approximate vector index next to an index file: ``LIBRARY.wbindex.ann`` (usearch HNSW graph).

SQLite (:mod:`.store`) stays the only source of truth; this file is derived from it and can always be
rebuilt (``workbench index`` does so at the end of a run that changed anything). Its header
(``LIBRARY.wbindex.ann.json``) records the store's ``generation`` and encoder at build time and the graph
file it belongs to: a file from any other generation (a run killed after committing vectors but before
rebuilding, a copy of an older file) is never used, and search falls back to the exact numpy scan (``cosine_top_k``),
which gives the right answer at any size. Small libraries (fewer than :data:`MIN_VECTORS`) never get
one: the exact scan takes about 2 ms at 10^4 vectors (docs/BENCHMARKS.md).

Why usearch (measured against hnswlib, docs/BENCHMARKS.md): the same recall and file size, wheels for
every desktop platform (hnswlib 0.8.0 is a source package that needs a C++ compiler at install time and had
no release since 2023), half-precision storage, and memory-mapped loading (a search opens a 10^5-vector
file without reading it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_bytes
from .store import IndexStore

MIN_VECTORS = 20_000  # below this the exact scan is as fast and needs no second file
CONNECTIVITY = 16  # HNSW M: neighbours per node
EXPANSION_ADD = 128  # ef_construction
EXPANSION_SEARCH = 128  # ef at query time: recall@10 0.92 at 64, 0.99 at 128 on 10^5 clustered vectors (BENCHMARKS)
SCALAR = "f16"  # half the file of f32 at the same recall (measured)


def ann_path(db: str | Path) -> Path:
    """Where the approximate index of ``db`` lives (usearch's own file format, memory-mapped at search)."""
    db = Path(db)
    return db.with_name(db.name + ".ann")


def header_path(db: str | Path) -> Path:
    """The JSON header that says which store generation ``ann_path(db)`` was built from."""
    db = Path(db)
    return db.with_name(db.name + ".ann.json")


def _stamp(path: Path) -> list[int]:
    """What identifies one written file: inode, size and mtime (a rebuild replaces the inode)."""
    st = path.stat()
    return [int(st.st_ino), int(st.st_size), int(st.st_mtime_ns)]


@dataclass
class AnnIndex:
    """A loaded approximate index: search returns vector row ids of the store and cosine scores."""

    index: object  # usearch.index.Index
    generation: int

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(row ids, cosine scores)`` of the ``k`` nearest stored vectors, best first."""
        found = self.index.search(np.asarray(query, dtype=np.float32).reshape(-1), k,  # type: ignore[attr-defined]
                                  threads=1)
        return np.asarray(found.keys, dtype=np.int64), 1.0 - np.asarray(found.distances, dtype=np.float64)


def available() -> bool:
    """Whether usearch is installed (a missing native wheel only costs speed: search stays exact)."""
    try:
        import usearch.index  # noqa: F401
    except ImportError:
        return False
    return True


def build(store: IndexStore, db: str | Path, *, threads: int = 0) -> Path | None:
    """Rebuild ``LIBRARY.wbindex.ann`` from every vector of ``store`` (None and the files removed when the
    library is below :data:`MIN_VECTORS` or usearch is missing). ``threads``: 0 = all cores.

    Written in this order: the graph (temp + ``os.replace``), then the header naming the store's generation
    and the graph file's inode/size/mtime (temp + ``os.replace``). A kill between the two leaves a header
    that names another file: :func:`load` then refuses both, and search is exact until the next build.
    """
    path, head = ann_path(db), header_path(db)
    if store.counts()[1] < MIN_VECTORS or not available():
        head.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        return None
    keys, matrix = store.keyed_vectors()
    from usearch.index import Index

    index = Index(ndim=int(matrix.shape[1]), metric="cos", dtype=SCALAR, connectivity=CONNECTIVITY,
                  expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
    index.add(keys, matrix, threads=threads)
    _write(index, store, db)
    return path


def update(store: IndexStore, db: str | Path, removed: list[int], added: list[int], *, threads: int = 0
           ) -> Path | None:
    """Apply one ``index`` run's changes to a graph that matched the store when the run began: remove the
    row ids ``removed``, add the vectors of ``added``, write graph and header as :func:`build` does.
    Falls back to :func:`build` when there is no graph to update (or the library crossed the threshold)."""
    path = ann_path(db)
    if store.counts()[1] < MIN_VECTORS or not available() or not path.is_file():
        return build(store, db, threads=threads)
    from usearch.index import Index

    index = Index.restore(str(path))  # a full load (a memory-mapped view is read-only)
    if index is None:
        return build(store, db, threads=threads)
    gone = [k for k in removed if index.contains(k)]
    if gone:
        index.remove(np.asarray(gone, dtype=np.int64))
    if added:
        index.add(np.asarray(added, dtype=np.int64), store.vectors_of(added), threads=threads)
    if index.size != store.counts()[1]:  # out of step after all: the store is the truth
        return build(store, db, threads=threads)
    _write(index, store, db)
    return path


def _write(index, store: IndexStore, db: str | Path) -> None:
    """The graph (temp + replace), then its header (temp + replace): see :func:`build`."""
    path = ann_path(db)
    data = index.save()  # no path: the serialised graph as a buffer
    assert data is not None
    atomic_write_bytes(path, bytes(data))
    header = {"generation": store.generation(), "encoder": store.get_meta("encoder"), "count": int(index.size),
              "file": _stamp(path)}
    atomic_write_bytes(header_path(db), json.dumps(header).encode())


def load(store: IndexStore, db: str | Path) -> AnnIndex | None:
    """The approximate index of ``db`` (memory-mapped) when it exists and its header matches the store's
    generation and encoder and names this very file, else None (the caller scans exactly). A damaged or
    foreign file is treated like a missing one: it is derived data, rebuilt by the next ``index`` run."""
    path, head = ann_path(db), header_path(db)
    if not path.is_file() or not head.is_file() or not available():
        return None
    try:
        header = json.loads(head.read_text())
        if (header.get("generation") != store.generation() or header.get("encoder") != store.get_meta("encoder")
                or header.get("file") != _stamp(path)):
            return None
        from usearch.index import Index

        index = Index.restore(str(path), view=True)
    except (OSError, ValueError, RuntimeError):  # unreadable or truncated by hand: rebuildable, not fatal
        return None
    if index is None or index.size != header.get("count"):
        return None
    index.expansion_search = EXPANSION_SEARCH  # type: ignore[misc]  # a setter at run time, read-only in the stub
    return AnnIndex(index, int(header["generation"]))


def selftest(*, vectors: int = 256, ndim: int = 32) -> str:
    """One line for ``workbench doctor``: whether usearch loads and finds each of ``vectors`` random unit
    vectors as its own nearest neighbour in a small in-memory HNSW graph built as :func:`build` builds one.

    Why: a missing or broken native wheel is silent by design (search falls back to the exact scan), so a
    packaged build or an odd workstation would never show it otherwise; the packaged build's smoke test
    reads this line.
    """
    try:
        import usearch
        from usearch.index import Index
    except ImportError as exc:
        return f"usearch not installed ({exc}): libraries of >= {MIN_VECTORS} vectors are searched exactly"
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((vectors, ndim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    keys = np.arange(vectors, dtype=np.int64)
    try:
        index = Index(ndim=ndim, metric="cos", dtype=SCALAR, connectivity=CONNECTIVITY,
                      expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
        index.add(keys, matrix, threads=1)
        restored = Index.restore(bytes(index.save()))  # type: ignore[arg-type]  # save() without a path: a buffer
        found = restored.search(matrix, 1, threads=1) if restored is not None else None
    except (RuntimeError, ValueError, TypeError) as exc:
        return f"usearch {usearch.__version__}: FAILED ({exc}): search falls back to the exact scan"
    if found is None:
        return (f"usearch {usearch.__version__}: FAILED (a saved graph did not load): "
                "search falls back to the exact scan")
    hits = int(np.count_nonzero(np.asarray(found.keys).reshape(-1) == keys))
    status = "ok" if hits >= vectors * 0.99 else "FAILED"
    return (f"usearch {usearch.__version__}: {status} (HNSW {SCALAR} build, save, load and search: "
            f"{hits}/{vectors} vectors found themselves)")
