"""Warm-start the denoiser from a shipped v1 ONNX file: ``python -m models.denoiser.warm_start OUT_DIR``.

v1 (9 conv layers of 48 channels) trained for 17 CPU minutes. v2 is deeper (``train.DEPTH`` layers): its
extra hidden layers start as identities (a 3x3 kernel with a centre 1 on the diagonal, zero bias), which is
exact after a ReLU because their input is non-negative, so v2 starts from v1's function and the next run
(``python -m models.denoiser.train --resume --out-dir OUT_DIR``) continues from there. Writes
``OUT_DIR/weights.pt`` and copies models/denoiser/metrics.json so that the run's ``train_runs`` history
includes v1's.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch

from ..common.data import REPO
from .train import DEPTH, Denoiser


def v1_convs(onnx_path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of the v1 graph's ``body`` convolutions, in order."""
    import onnx
    from onnx import numpy_helper

    init = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(onnx_path)).graph.initializer}
    idx = sorted({int(k.split(".")[1]) for k in init if k.startswith("body.")})
    return [(init[f"body.{i}.weight"], init[f"body.{i}.bias"]) for i in idx]


def warm_state(onnx_path: Path) -> dict:
    """A state dict of ``Denoiser()`` (depth ``DEPTH``) computing the same function as the v1 file."""
    convs = v1_convs(onnx_path)
    first, hidden, last = convs[0], convs[1:-1], convs[-1]
    net = Denoiser()
    body = [m for m in net.body if isinstance(m, torch.nn.Conv2d)]
    n_new = len(body) - 2
    if n_new < len(hidden):
        raise SystemExit(f"{onnx_path}: {len(hidden)} hidden layers, more than v2's {n_new}")
    # spread the identity layers evenly between v1's hidden layers
    slots = np.round(np.linspace(0, n_new - 1, len(hidden))).astype(int)
    with torch.no_grad():
        for m, (w, b) in zip((body[0], body[-1]), (first, last)):
            m.weight.copy_(torch.from_numpy(w))
            m.bias.copy_(torch.from_numpy(b))
        src = dict(zip(slots.tolist(), hidden))
        for k, m in enumerate(body[1:-1]):
            if k in src:
                m.weight.copy_(torch.from_numpy(src[k][0]))
                m.bias.copy_(torch.from_numpy(src[k][1]))
            else:
                m.weight.zero_()
                m.bias.zero_()
                for c in range(m.weight.shape[0]):
                    m.weight[c, c, 1, 1] = 1.0
    return net.state_dict()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--onnx", type=Path, default=REPO / "plugins" / "denoiser" / "model.onnx")
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(warm_state(args.onnx), args.out_dir / "weights.pt")
    metrics = REPO / "models" / "denoiser" / "metrics.json"
    if metrics.exists():
        shutil.copy(metrics, args.out_dir / "metrics.json")
    print(f"wrote {args.out_dir / 'weights.pt'} (depth {DEPTH}, from {args.onnx})")


if __name__ == "__main__":
    main()
