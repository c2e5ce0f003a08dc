"""``task: embedding`` (issue 18): run an encoder plugin and turn its output into one vector per slice.

    embedder = Embedder("my-encoder")
    vectors = embedder.embed(image)          # (n_slices, D) float32, unit length by default

The image goes through the plugin's declared preprocessing (:func:`~workbench.inference.preprocess.prepare_plane`:
colour, resize, intensity window/percentile/standardize, 8/16-bit and HU handling), exactly as for the other
tasks; the ``embedding:`` block of ``plugin.yaml`` (:class:`~workbench.inference.spec.EmbeddingSpec`) says
how the named output becomes a vector.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from ..core.errors import InferenceError, PluginError
from ..core.image import ImageVolume
from ..core.settings import Settings, load_settings
from .preprocess import prepare_plane
from .registry import find_plugin
from .session import LoadedModel, get_session
from .spec import EmbeddingSpec, PluginSpec


def to_vector(output: np.ndarray, embedding: EmbeddingSpec, *, name: str = "output") -> np.ndarray:
    """One graph output of batch 1 -> a float32 vector (pooled, optionally L2-normalised).

    Parameters
    ----------
    output : ndarray
        ``(1, D)`` / ``(D,)`` for ``pool: none``; ``(1, C, h, w)`` or ``(1, h, w, C)`` for ``pool: avg``.
    embedding : EmbeddingSpec
    name : str
        The output's name, for the error message.

    Returns
    -------
    ndarray, float32, shape (D,)

    Raises
    ------
    InferenceError
        The shape does not fit the declared pooling, or the vector is not finite.
    """
    arr = np.asarray(output, dtype=np.float32)
    if embedding.pool == "avg":
        if arr.ndim != 4 or arr.shape[0] != 1:
            raise InferenceError(f"output {name!r} has shape {list(arr.shape)}; pool: avg expects a feature map "
                                 f"(1, C, h, w) or (1, h, w, C)")
        axes = (2, 3) if embedding.layout == "NCHW" else (1, 2)
        vec = arr.mean(axis=axes, dtype=np.float64)[0].astype(np.float32)
    else:
        squeezed = arr.reshape(-1) if arr.ndim <= 1 or (arr.shape[0] == 1 and arr.ndim == 2) else None
        if squeezed is None:
            raise InferenceError(f"output {name!r} has shape {list(arr.shape)}; an embedding is (1, D) -- for a "
                                 "feature map declare embedding.pool: avg")
        vec = squeezed
    if not np.all(np.isfinite(vec)):
        raise InferenceError(f"output {name!r} holds NaN or infinite values")
    if embedding.l2_normalize:
        norm = float(np.linalg.norm(vec))
        # an all-zero vector (a blank image through a ReLU encoder) stays zero: it matches nothing
        vec = vec / norm if norm > 0 else vec
    return vec.astype(np.float32, copy=False)


class Embedder:
    """An embedding plugin bound to a ready ONNX Runtime session; reusable across images."""

    def __init__(self, plugin: str | Path | PluginSpec, *, provider: str = "auto",
                 settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.spec: PluginSpec = find_plugin(plugin, self.settings)
        if self.spec.task != "embedding":
            raise PluginError(f"{self.spec.id} is a {self.spec.task} model; search needs a task: embedding "
                              "encoder (docs/SEARCH.md)", path=None)
        self.model: LoadedModel = get_session(self.spec, provider, self.settings)
        self.output = self.spec.output.name or self.model.output_names[0]
        if self.output not in self.model.output_names:
            raise self.spec.error("output.name", f"{self.output!r} is not an output of the graph "
                                                 f"({', '.join(self.model.output_names)})")

    @property
    def identity(self) -> str:
        """What makes vectors comparable: the plugin id, version and model checksum."""
        return f"{self.spec.id}@{self.spec.version}:{self.spec.sha256}"

    def embed_slice(self, image: ImageVolume, index: int) -> np.ndarray:
        """The vector of one slice (float32, ``(D,)``).

        Raises
        ------
        InferenceError
        """
        info = self.model.input
        try:
            plane = prepare_plane(self.spec, image, index, graph_hw=(info.height, info.width), dtype=info.dtype)
            out = self.model.run(plane.tensor, [self.output])[self.output]  # type: ignore[arg-type]
            assert self.spec.embedding is not None  # set by load_plugin for task: embedding
            return to_vector(out, self.spec.embedding, name=self.output)
        except InferenceError as exc:
            raise InferenceError(exc.reason, path=image.path or "image") from exc

    def embed(self, image: ImageVolume, slices: Iterable[int] | None = None) -> np.ndarray:
        """Vectors of ``slices`` (default: all), stacked ``(n, D)``."""
        chosen = list(range(image.n_slices)) if slices is None else [int(s) for s in slices]
        return np.stack([self.embed_slice(image, i) for i in chosen])
