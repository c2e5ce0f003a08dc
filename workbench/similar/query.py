"""``workbench search``: rank the indexed vectors by cosine similarity to a query image.

The search is exact (every stored vector is scored with one matrix-vector product in numpy): at 10^5
vectors of 256 floats that measured 80 ms (docs/BENCHMARKS.md), fine for a desktop archive. An
approximate index (usearch / hnswlib) is for a later session: it only pays beyond ~10^6 vectors and must
first be measured against this exact search (recall >= 0.95), see docs/SEARCH.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import WorkbenchError
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

    def as_dict(self) -> dict:
        return {"rank": self.rank, "score": round(self.score, 6), "path": self.path, "slice": self.slice,
                "modality": self.modality}


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


def search(image_path: str | Path, db: str | Path, *, k: int = 10, encoder: str | Path | None = None,
           slice_index: int | None = None) -> list[Hit]:
    """The ``k`` indexed images most similar to ``image_path``.

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

    Raises
    ------
    WorkbenchError
    """
    from ..io import read_image
    from .build import check_encoder

    if k < 1:
        raise WorkbenchError(f"-k {k}: must be >= 1")
    db = Path(db)
    with IndexStore(db) as store:
        ref = encoder if encoder is not None else store.get_meta("encoder_ref")
        if ref is None:
            raise SearchIndexError("the index is empty (no encoder recorded)", path=db)
        embedder = Embedder(ref)
        check_encoder(store, embedder, db)
        entries, matrix = store.load_vectors()
    image = read_image(image_path)
    index = image.n_slices // 2 if slice_index is None else slice_index
    if not 0 <= index < image.n_slices:
        raise WorkbenchError(f"--slice {index}: out of range 0..{image.n_slices - 1}", path=image_path)
    if not entries:
        return []
    query = embedder.embed_slice(image, index)
    if query.shape[0] != matrix.shape[1]:
        raise SearchIndexError(f"stored vectors have {matrix.shape[1]} values, the encoder gives "
                               f"{query.shape[0]}", path=db)
    order, scores = cosine_top_k(matrix, query, k)
    return [Hit(r + 1, float(s), entries[i].path, entries[i].slice, entries[i].modality)
            for r, (i, s) in enumerate(zip(order, scores))]
