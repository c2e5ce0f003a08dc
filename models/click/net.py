"""The click network (torch; training only): a U-Net on the prompt channels plus intensity-similarity and
fuzzy-connectedness maps computed inside the graph.

The exported graph keeps the plugin's four-channel input (image, include disks, exclude disks, previous
mask). Its first, parameter-free stage derives in the graph

- how far each pixel's intensity lies from the mean intensity under the include disks and under the
  exclude disks, and soft thresholds of those distances at a few tolerances;
- the fuzzy connectedness of each pixel to the clicks (Udupa & Samarasekera 1996): the best path, over
  8-connected paths from a click, of the weakest similarity along it, computed by ``ITERATIONS`` steps of
  ``g = max(g, min(maxpool3x3(g), similarity))`` -- a soft, differentiable region grow.

Those are the cues region growing lives on; handing them to the network rather than having a small net on a
one-thread CPU budget learn global comparisons and connectivity from scratch is what lets it start where
region grow stands, while the convolutions add what region grow lacks (edges, shape, texture, the previous
mask, exclude clicks). The idea is the geodesic click maps of DeepIGeoS (Wang et al. 2018), in the graph.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..common.nets import UNet
from .common import CONNECT, EXTRA, ITERATIONS, SOFT_TOLERANCES


def prompt_features(x: torch.Tensor) -> torch.Tensor:
    """``(N, 4, H, W)`` prompt input (image, include and exclude click maps of the ``distance`` encoding,
    previous mask) -> ``(N, EXTRA, H, W)``: ``|I - mean_inc|``, ``|I - mean_exc|`` (1 when there is no
    such click), their Gaussian soft thresholds, and the fuzzy connectedness of the ``CONNECT``
    thresholds to their clicks (propagated at half resolution -- max-pooled, so that a ribbon one model
    pixel wide stays connected -- and brought back to full resolution under the full-resolution map)."""
    img = x[:, 0:1]
    dists, sims, csims, cseeds = [], [], [], []
    for ch in (1, 2):
        w = x[:, ch:ch + 1]
        # the distance cones to the 4th power: the mean is the clicked pixels' own, not the disk's (a
        # click on a ribbon two pixels wide would otherwise average in its neighbours)
        wk = w ** 4
        s = wk.sum((2, 3), keepdim=True)
        has = (s > 0).to(x.dtype)
        mean = (img * wk).sum((2, 3), keepdim=True) / s.clamp(min=1e-6)
        d = (img - mean).abs() * has + (1 - has)
        dists.append(d)
        sims += [torch.exp(-(d / t) ** 2) * has for t in SOFT_TOLERANCES]
        for which, t in CONNECT:
            if which == ch - 1:
                csims.append(torch.exp(-(d / t) ** 2) * has)
                cseeds.append(w)
    sim = torch.cat(csims, 1)
    low = F.max_pool2d(sim, 2)
    g = F.max_pool2d(torch.cat(cseeds, 1), 2) * low
    for _ in range(ITERATIONS):
        g = torch.maximum(g, torch.minimum(F.max_pool2d(g, 3, 1, 1), low))
    g = torch.minimum(F.interpolate(g, scale_factor=2.0, mode="nearest"), sim)
    return torch.cat(dists + sims + [g], 1)


class ClickNet(nn.Module):
    """``UNet(4 + EXTRA -> 1)`` on the input and its prompt features; returns mask logits."""

    def __init__(self, widths=(16, 32, 48, 64)):
        super().__init__()
        self.unet = UNet(4 + EXTRA, 1, widths)

    def forward(self, x):
        with torch.no_grad():  # parameter-free: nothing to learn, no graph to keep
            feats = prompt_features(x)
        return self.unet(torch.cat([x, feats], 1))
