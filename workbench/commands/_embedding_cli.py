"""``workbench models check`` for ``task: embedding`` plugins (issue 18): load, embed the sample, print the vector."""
from __future__ import annotations

import argparse
import time

import numpy as np

from ..core.errors import WorkbenchError
from ..core.image import ImageVolume
from ..core.settings import Settings
from ..inference.spec import PluginSpec


def check_embedding(spec: PluginSpec, args: argparse.Namespace, settings: Settings) -> int:
    """Smoke-run an encoder on its sample (or a synthetic image of its input size); 0 when it gives a finite vector."""
    from ..inference.embedding import Embedder

    embedder = Embedder(spec, provider=args.provider, settings=settings)
    info = embedder.model.input
    shape = ["?" if d is None else d for d in info.shape]
    print(f"graph     ok  input {info.name!r} {shape} {info.dtype.name} {info.layout}; embedding output "
          f"{embedder.output!r}")
    print(f"session   ok  {embedder.model.provider}, loaded + warm-up {embedder.model.load_ms:.0f} ms")
    sample = spec.sample_path
    if sample is not None:
        from ..io import read_image

        image = read_image(sample, max_pixels=settings.max_pixels)
        what = sample.name
    else:
        h = info.height or 64
        w = info.width or 64
        yy, xx = np.mgrid[0:h, 0:w]
        plane = ((np.sin(xx / 7.0) + np.cos(yy / 5.0) + 2) * 63).astype(np.uint8)
        image = ImageVolume(np.repeat(plane[..., None], 3, axis=2)[None] if spec.input.channels == 3 else plane)
        what = f"synthetic {h}x{w} image (no sample in the plugin folder)"
    t0 = time.perf_counter()
    try:
        vec = embedder.embed_slice(image, image.n_slices // 2)
    except WorkbenchError as exc:
        raise WorkbenchError(f"smoke run on {what} failed: {exc}") from exc
    ms = (time.perf_counter() - t0) * 1000.0
    print(f"smoke run ok  {what}: vector of {vec.shape[0]} values, norm {float(np.linalg.norm(vec)):.4g} "
          f"({ms:.1f} ms)")
    return 0
