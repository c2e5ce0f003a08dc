"""Train, evaluate and export the click-to-segment plugin: ``python -m models.click.train``.

A prompt-channel model (docs/PLUGINS.md, "Promptable segmentation", single graph) on the letterboxed crop
around the clicks, with the image, include and exclude click maps (distance cones) and the previous mask as
four input channels; it returns mask logits. Inside the graph (net.py), a parameter-free stage adds the
intensity distance to the clicked pixels and its fuzzy connectedness to the clicks (a soft region grow) as
extra channels of a small U-Net. Trained with simulated clicks (first click at the object's interior point
farthest from its border, next clicks at the centre of the largest error region) on synthetic textured
shapes inserted into scikit-image samples, the coins of coins.png and MNI152 tissue components, in 8 and
16 bit. Half of the correction samples use the network's own previous prediction (iterative training), the
others a perturbed ground truth. Evaluation: models/click/evaluate.py on held-out images.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from workbench.inference.promptable.prompts import Click, Prompt
from workbench.inference.promptable.simulate import _depth, first_click, next_click

from ..common.runner import Recipe
from .common import SIZE, model_input, normalize
from .data import TrainScenes

# imported now, not when the run ends: a training run evaluates and publishes with the code it started with
# (an edit during the last run broke its final evaluation)
from .evaluate import evaluate
from .net import ClickNet
from .plugin import write_card, write_plugin

WIDTHS = (16, 32, 48, 64)


EXACT_FIRST = 0.8  # share of first clicks exactly at the protocol's point (else a deep interior pixel)
FIRST_ONLY = 0.5  # share of samples with a first click alone


def jittered_first(rng, gt: np.ndarray) -> Click:
    # the protocol's first click is the object's deepest point: seeing it exactly most of the time lets the
    # model learn that prior (which of the nested objects under the click is meant: the brain or its white
    # matter), while the jittered rest keeps it working for a user's less central click
    if rng.random() < EXACT_FIRST:
        return first_click(gt)
    d = _depth(gt)
    ys, xs = np.nonzero(d >= 0.4 * d.max())
    i = int(rng.integers(len(ys)))
    return Click(float(xs[i]), float(ys[i]), True)


def perturb(rng, gt: np.ndarray) -> np.ndarray:
    """A plausible wrong previous mask: dilated or eroded, plus a false-positive blob, minus a bite."""
    import cv2

    m = gt.astype(np.uint8)
    extent = max(2, int(np.sqrt(gt.sum()) * rng.uniform(0.05, 0.3)))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * extent + 1, 2 * extent + 1))
    if rng.random() < 0.5:
        m = cv2.dilate(m, k)
    else:
        m = cv2.erode(m, k)
    ys, xs = np.nonzero(gt)
    for sign in (1, 0):
        if rng.random() < 0.5:
            i = int(rng.integers(len(ys)))
            r = int(extent * rng.uniform(1, 3))
            cv2.circle(m, (int(xs[i] + rng.normal() * r), int(ys[i] + rng.normal() * r)), r, sign, -1)
    if not m.any():
        m = gt.astype(np.uint8)
    return m.astype(bool)


def consistent_clicks(rng, gt: np.ndarray, n: int) -> list[Click]:
    out = []
    for _ in range(n):
        inside = rng.random() < 0.6
        ys, xs = np.nonzero(gt if inside else ~gt)
        if len(ys) == 0:
            continue
        i = int(rng.integers(len(ys)))
        out.append(Click(float(xs[i]), float(ys[i]), inside))
    return out


class ClickModel(Recipe):
    plugin_id = "click"
    name = "click"
    minutes = 60.0
    batch = 8
    lr = 2e-3
    example_shape = (1, 4, SIZE, SIZE)

    def prepare(self):
        self.scenes = TrainScenes(self.rng)
        print(f"training scenes: {self.scenes.summary()}", flush=True)

    def build_net(self):
        net = ClickNet(WIDTHS)
        self.parameters = sum(p.numel() for p in net.parameters())
        return net

    def predict(self, net, plane, prompt, prev):
        x, box, lb = model_input(plane, prompt, prev)
        was = net.training
        net.eval()
        with torch.no_grad():
            logits = net(torch.from_numpy(x[None]))[0, 0].numpy()
        net.train(was)
        full = np.zeros(plane.shape[:2], bool)
        y0, x0, y1, x1 = box
        full[y0:y1, x0:x1] = lb.back(logits) > 0
        return full

    def sample(self, net):
        rng = self.rng
        img, gt = self.scenes.draw(rng)
        plane = normalize(img)
        u = rng.random()
        clicks = [jittered_first(rng, gt)]
        prev = None
        if u >= FIRST_ONLY:  # else a first click alone: IoU@1 is where region grow is hardest to beat
            if u < (1 + FIRST_ONLY) / 2:
                prev = perturb(rng, gt)
                clicks += consistent_clicks(rng, gt, int(rng.integers(0, 3)))
            else:  # the network's own mistakes, one or two rounds
                for _ in range(int(rng.integers(1, 3))):
                    prev = self.predict(net, plane, Prompt(list(clicks)), prev)
                    c = next_click(gt, prev)
                    if c is None:
                        break
                    clicks.append(c)
            c = next_click(gt, prev) if u < (1 + FIRST_ONLY) / 2 else None
            if c is not None:
                clicks.append(c)
        x, box, lb = model_input(plane, Prompt(clicks), prev)
        y0, x0, y1, x1 = box
        target = lb.image(gt[y0:y1, x0:x1].astype(np.float32))
        return x, (target > 0.5).astype(np.float32)[None]

    def loss(self, net):
        xs, ys = zip(*(self.sample(net) for _ in range(self.args.batch)))
        x, y = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))
        logits = net(x)
        bce = F.binary_cross_entropy_with_logits(logits, y)
        p = torch.sigmoid(logits)
        inter = (p * y).sum((1, 2, 3))
        dice = 1 - ((2 * inter + 1) / (p.sum((1, 2, 3)) + y.sum((1, 2, 3)) + 1)).mean()
        with torch.no_grad():
            pred = logits > 0
            yb = y > 0.5
            iou = ((pred & yb).sum((1, 2, 3)).float() / ((pred | yb).sum((1, 2, 3)).float().clamp(min=1))).mean()
        total = bce + dice
        return total, {"loss": float(total.detach()), "iou": float(iou)}

    def progress(self, ema, last):
        return f"loss={ema['loss']:.4f} train-iou={ema['iou']:.3f}"

    def finished(self, ema):
        return f"loss {ema['loss']:.4f}, train IoU {ema['iou']:.3f}"

    def measure(self, onnx_path):
        return evaluate(onnx_path, log=True)

    def train_summary(self, ema):
        from . import data

        return {"final_loss": round(ema["loss"], 4), "final_train_iou": round(ema["iou"], 4),
                "parameters": self.parameters, "first_click_only": FIRST_ONLY, "exact_first_click": EXACT_FIRST,
                "mix": {"synthetic": data.SYNTHETIC_SHARE, "coins": data.COINS_SHARE,
                        "mni": round(1 - data.SYNTHETIC_SHARE - data.COINS_SHARE, 4),
                        "mni_brain": data.BRAIN_SHARE, "mni_large": data.LARGE_SHARE}}

    write_plugin = staticmethod(write_plugin)
    write_card = staticmethod(write_card)


def main(argv=None):
    ClickModel().main(argv)


if __name__ == "__main__":
    main()
