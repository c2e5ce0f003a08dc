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

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from workbench.inference.promptable.prompts import Click, Prompt
from workbench.inference.promptable.simulate import _depth, first_click, next_click

from ..common.runner import Recipe, shown
from .common import SIZE, model_input, normalize
from .data import TrainScenes

# imported now, not when the run ends: a training run evaluates and publishes with the code it started with
# (an edit during the last run broke its final evaluation)
from .evaluate import evaluate
from .net import ClickNet
from .plugin import write_card, write_plugin

WIDTHS = (16, 32, 48, 64)


EXACT_FIRST = 0.8  # share of first clicks exactly at the protocol's point (else a deep interior pixel)
FIRST_ONLY = 0.6  # share of samples with a first click alone (v2: 0.5)


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

    def parser(self):
        ap = super().parser()
        ap.add_argument("--warm-start", type=Path, default=None, metavar="ONNX",
                        help="start from this exported model (batch norms folded; see warm_start) instead of from "
                             "scratch: writes weights.pt into the work folder, then trains as --resume does")
        return ap

    def train(self, work, folder):
        if self.args.warm_start is not None:
            warm_start(self.args.warm_start, work / "weights.pt")
            self.args.resume = True
        super().train(work, folder)

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

        warm = {"warm_start": shown(self.args.warm_start)} if self.args.warm_start is not None else {}
        return {**warm, "final_loss": round(ema["loss"], 4), "final_train_iou": round(ema["iou"], 4),
                "parameters": self.parameters, "first_click_only": FIRST_ONLY, "exact_first_click": EXACT_FIRST,
                "mix": {"synthetic": data.SYNTHETIC_SHARE, "coins": data.COINS_SHARE,
                        "mni": round(1 - data.SYNTHETIC_SHARE - data.COINS_SHARE, 4),
                        "mni_brain": data.BRAIN_SHARE, "mni_large": data.LARGE_SHARE,
                        "mni_axial": data.AXIAL_SHARE, "mni_native_scale": data.NATIVE_SHARE,
                        "mni_clean": data.CLEAN_SHARE}}

    write_plugin = staticmethod(write_plugin)
    write_card = staticmethod(write_card)


def main(argv=None):
    ClickModel().main(argv)



def warm_start(onnx_path=None, out=None, *, samples: int = 32) -> None:
    """Write a ``weights.pt`` from a shipped model.onnx (whose export folded each batch norm into its
    convolution), for ``--resume``: the convolutions get the folded weights and each batch norm is set to
    give back, in training mode, what the folded convolution gave (gamma = the batch standard deviation,
    beta = the batch mean of its output on training samples), as models/focal_spot/train.py does, so that
    training continues from the shipped model (v2's weights.pt was not kept).
    ``python -c "from models.click.train import warm_start; warm_start(out='DIR/weights.pt')"``
    """
    import onnx
    from onnx import numpy_helper

    from ..common.data import REPO

    onnx_path = Path(onnx_path or REPO / "plugins" / "click" / "model.onnx")
    out = Path(out or REPO / "models" / "click" / "weights.pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(onnx_path)).graph.initializer}
    net = ClickNet(WIDTHS)
    folded = sorted((n for n in inits if n.startswith("onnx::Conv_")), key=lambda n: int(n.rsplit("_", 1)[1]))
    pairs = []  # (conv, batch norm) in forward order: down blocks, then the fuse blocks
    for block in list(net.unet.down) + list(net.unet.fuse):
        layers = list(block)
        pairs += [(a, b) for a, b in zip(layers, layers[1:])
                  if isinstance(a, torch.nn.Conv2d) and isinstance(b, torch.nn.BatchNorm2d)]
    assert len(folded) == 2 * len(pairs), (len(folded), len(pairs))
    state = net.state_dict()
    for k in ("up.0", "up.1", "up.2", "head"):
        for p in ("weight", "bias"):
            state[f"unet.{k}.{p}"] = torch.from_numpy(inits[f"unet.{k}.{p}"].copy()).reshape(
                state[f"unet.{k}.{p}"].shape)
    net.load_state_dict(state)
    rng = np.random.default_rng(3)
    scenes = TrainScenes(rng)
    xs = []
    for _ in range(samples):
        img, gt = scenes.draw(rng)
        prev = perturb(rng, gt) if rng.random() < 0.5 else None
        clicks = [jittered_first(rng, gt)] + (consistent_clicks(rng, gt, 2) if prev is not None else [])
        xs.append(model_input(normalize(img), Prompt(clicks), prev)[0])
    x = torch.from_numpy(np.stack(xs))
    with torch.no_grad():
        for (conv, _bn), (wn, bn_name) in zip(pairs, zip(folded[::2], folded[1::2])):
            conv.weight.copy_(torch.from_numpy(inits[wn].copy()))
            conv.bias.copy_(torch.from_numpy(inits[bn_name].copy()))
        # calibrate in forward order: each batch norm sees the already calibrated layers before it
        for conv, bn in pairs:
            seen = {}
            h = conv.register_forward_hook(lambda mod, i, o, d=seen: d.setdefault("z", o))
            net.eval()
            net(x)
            h.remove()
            z = seen["z"]
            mu, sd = z.mean((0, 2, 3)), z.var((0, 2, 3), unbiased=False).add(bn.eps).sqrt()
            bn.weight.copy_(sd)
            bn.bias.copy_(mu)
            bn.running_mean.copy_(mu)
            bn.running_var.copy_(sd * sd - bn.eps)
        import onnxruntime as ort

        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        ref = np.concatenate([sess.run(None, {"input": x[i:i + 1].numpy()})[0] for i in range(4)])
        got = net(x[:4]).numpy()
    err = float(np.abs(got - ref).max())
    print(f"warm start from {onnx_path}: max |logit difference| {err:.2e} on 4 training samples", flush=True)
    assert err < 1e-2, err
    torch.save(net.state_dict(), out)


if __name__ == "__main__":
    main()
