"""``workbench search``: rank the indexed vectors by cosine similarity to a query image (or a region of it).

Libraries of :data:`~workbench.similar.ann.MIN_VECTORS` vectors or more are searched through the
approximate index next to the file (:mod:`.ann`, usearch HNSW) when it matches the store's generation;
otherwise -- small libraries, a missing or stale ``.ann`` file, usearch not installed -- every stored
vector is scored exactly with one matrix-vector product in numpy (``cosine_top_k``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..core.errors import WorkbenchError
from ..core.image import ImageVolume
from ..inference.embedding import Embedder
from .store import IndexStore, SearchIndexError


@dataclass(frozen=True)
class Hit:
    """One result: the stored image (and slice) and its cosine similarity to the query, in [-1, 1]."""

    rank: int
    score: float
    path: str
    slice: int
    modality: str | None
    identity: dict[str, str] | None = None  # only when the index was built with --identity

    def as_dict(self) -> dict:
        out = {"rank": self.rank, "score": round(self.score, 6), "path": self.path, "slice": self.slice,
               "modality": self.modality}
        if self.identity:
            out["identity"] = self.identity
        return out


def cosine_top_k(matrix: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine scores of the ``k`` rows of ``matrix`` most similar to ``query``, best first.

    Rows and query are normalised here, so encoders without ``l2_normalize`` still get cosine scores; a
    zero row scores 0.
    """
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    qn = float(np.linalg.norm(q))
    norms = np.linalg.norm(matrix, axis=1)
    scores = (matrix @ q) / np.maximum(norms * qn, 1e-12)
    k = min(k, scores.shape[0])
    top = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
    order = top[np.lexsort((top, -scores[top]))]  # by score, ties by stored order (stable output)
    return order, scores[order]


def parse_roi(text: str) -> tuple[int, int, int, int]:
    """``X0,Y0,X1,Y1`` (pixels, x to the right, y down, end exclusive) -> a tuple; one-line error otherwise."""
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise WorkbenchError(f"--roi {text}: expected X0,Y0,X1,Y1 (four integers)") from None
    if x1 <= x0 or y1 <= y0 or x0 < 0 or y0 < 0:
        raise WorkbenchError(f"--roi {text}: needs 0 <= X0 < X1 and 0 <= Y0 < Y1")
    return x0, y0, x1, y1


def crop_roi(image: ImageVolume, index: int, roi: tuple[int, int, int, int]) -> ImageVolume:
    """Slice ``index`` of ``image`` cut to ``roi`` (x0, y0, x1, y1), as a one-slice volume with the same
    modality and window (so the encoder's preprocessing treats it like the whole image)."""
    x0, y0, x1, y1 = roi
    h, w = image.data.shape[1:3]
    if x1 > w or y1 > h:
        raise WorkbenchError(f"--roi {x0},{y0},{x1},{y1}: outside the {w}x{h} image", path=image.path)
    if (x1 - x0) < 8 or (y1 - y0) < 8:
        raise WorkbenchError(f"--roi {x0},{y0},{x1},{y1}: smaller than 8x8 pixels", path=image.path)
    data = np.ascontiguousarray(image.data[index:index + 1, y0:y1, x0:x1])
    return replace(image, data=data, metadata=dict(image.metadata))


def search_vector(store: IndexStore, db: Path, query: np.ndarray, k: int) -> tuple[list[Hit], str]:
    """The ``k`` stored vectors nearest to ``query`` and how they were found (``"approximate"`` through the
    current ``.ann`` file, else ``"exact"``)."""
    from . import ann

    approx = ann.load(store, db)
    if approx is not None:
        keys, scores = approx.search(query, k)
        found = store.entries([int(key) for key in keys])
        pairs = [(found[int(key)], float(s)) for key, s in zip(keys, scores) if int(key) in found]
        how = "approximate"
    else:
        entries, matrix = store.load_vectors()
        if not entries:
            return [], "exact"
        if query.shape[0] != matrix.shape[1]:
            raise SearchIndexError(f"stored vectors have {matrix.shape[1]} values, the encoder gives "
                                   f"{query.shape[0]}", path=db)
        order, top = cosine_top_k(matrix, query, k)
        pairs = [(entries[i], float(s)) for i, s in zip(order, top)]
        how = "exact"
    return [Hit(r + 1, s, e.path, e.slice, e.modality, store.identity(e.path))
            for r, (e, s) in enumerate(pairs)], how


def open_for_search(db: str | Path, encoder: str | Path | None = None) -> tuple[IndexStore, Embedder]:
    """Open ``db`` and the encoder it was built with (or ``encoder``, which must be the same model).

    Raises
    ------
    WorkbenchError
    """
    from .build import check_encoder

    db = Path(db)
    store = IndexStore(db)
    try:
        ref = encoder if encoder is not None else store.get_meta("encoder_ref")
        if ref is None:
            raise SearchIndexError("the index is empty (no encoder recorded)", path=db)
        embedder = Embedder(ref)
        check_encoder(store, embedder, db)
    except BaseException:
        store.close()
        raise
    return store, embedder


def search_image(image: ImageVolume, db: str | Path, *, k: int = 10, encoder: str | Path | None = None,
                 slice_index: int | None = None, roi: tuple[int, int, int, int] | None = None) -> list[Hit]:
    """The ``k`` indexed images most similar to slice ``slice_index`` of ``image`` (default: the middle one),
    or to the region ``roi`` (x0, y0, x1, y1) of that slice. What the CLI and the GUI dock both call.

    Raises
    ------
    WorkbenchError
    """
    if k < 1:
        raise WorkbenchError(f"-k {k}: must be >= 1")
    index = image.n_slices // 2 if slice_index is None else slice_index
    if not 0 <= index < image.n_slices:
        raise WorkbenchError(f"--slice {index}: out of range 0..{image.n_slices - 1}", path=image.path)
    db = Path(db)
    store, embedder = open_for_search(db, encoder)
    with store:
        if roi is not None:
            query = embedder.embed_slice(crop_roi(image, index, roi), 0)
        else:
            query = embedder.embed_slice(image, index)
        return search_vector(store, db, query, k)[0]


def search(image_path: str | Path, db: str | Path, *, k: int = 10, encoder: str | Path | None = None,
           slice_index: int | None = None, roi: tuple[int, int, int, int] | None = None) -> list[Hit]:
    """The ``k`` indexed images most similar to ``image_path`` (see :func:`search_image`).

    Parameters
    ----------
    image_path : path
    db : path
        An index built by :func:`~workbench.similar.build.index_folder`.
    k : int
    encoder : str or path, optional
        Default: the encoder the index was built with (it must be the same model).
    slice_index : int, optional
        The query slice of a volume (default: the middle one).
    roi : (x0, y0, x1, y1), optional
        Query by this region of the slice only.

    Raises
    ------
    WorkbenchError
    """
    from ..io import read_image

    if k < 1:
        raise WorkbenchError(f"-k {k}: must be >= 1")
    IndexStore(db).close()  # a missing or foreign index is refused before the image is read
    return search_image(read_image(image_path), db, k=k, encoder=encoder, slice_index=slice_index, roi=roi)
