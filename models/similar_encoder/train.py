"""Train, evaluate and export the similar-case encoder plugin: ``python -m models.similar_encoder.train``.

Self-supervised contrastive learning (SimCLR's NT-Xent loss): two random views of one training image --
or of two MNI152 planes at most 2 mm apart in the same orientation and contrast -- must be each other's
nearest neighbour among all views of the batch. Views are random crops, flips, small rotations, gamma,
contrast, blur and noise (common.degrade), then the plugin's own preprocessing (percentile window, stretch
to 96x96). A small CNN (eight 3x3 conv layers, four of them stride 2, batch norm, global average pooling)
gives the 256-d vector the plugin exports; a 2-layer projection head used only by the loss is dropped at export, as in SimCLR.

Evaluated on the held-out retrieval set (common.heldout_set: MNI positions grouped by position, degraded
variants of held-out images grouped by source) against the histogram + HOG baseline in the same run.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..common.data import load_gray, skimage_data_dir
from ..common.export import onnx_latency_ms, ort_session, plugin_spec, write_plugin_yaml
from ..common.runner import Recipe
from . import common as C

PLUGIN_ID = "similar-encoder"
VERSION = "1.0.0"
TEMPERATURE = 0.2
MNI_SHARE = 0.6  # share of the pairs drawn from MNI planes (the rest: scikit-image / pydicom images)
MAX_SIDE = 256  # training sources are shrunk to this (views end at 96 px; rotation cost scales with area)


def cbr(cin, cout, stride=1):
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class Encoder(nn.Module):
    """96x96 -> 256-d: the exported graph returns the pooled features; ``project`` is for the loss only."""

    def __init__(self, dim: int = C.DIM):
        super().__init__()
        self.features = nn.Sequential(
            *cbr(1, 24, 2),                    # 48
            *cbr(24, 48, 2), *cbr(48, 48),     # 24
            *cbr(48, 96, 2), *cbr(96, 96),     # 12
            *cbr(96, 160, 2), *cbr(160, 160),  # 6
            *cbr(160, dim),
        )
        self.project = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 128))

    def forward(self, x):
        return self.features(x).mean((2, 3))


def nt_xent(z: torch.Tensor, temperature: float) -> tuple[torch.Tensor, float]:
    """SimCLR's loss for ``z`` = ``[a_0..a_n-1, b_0..b_n-1]`` (rows i and i+n are a positive pair); also
    the share of views whose nearest other view is their partner."""
    z = F.normalize(z, dim=1)
    n = z.shape[0] // 2
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    acc = (sim.argmax(1) == target).float().mean().item()
    return F.cross_entropy(sim, target), acc


def shrink(x: np.ndarray) -> np.ndarray:
    import cv2

    s = MAX_SIDE / max(x.shape)
    if s >= 1:
        return x.astype(np.float32)
    return cv2.resize(x.astype(np.float32), (round(x.shape[1] * s), round(x.shape[0] * s)),
                      interpolation=cv2.INTER_AREA)


def training_sources() -> list[np.ndarray]:
    """scikit-image samples and pydicom files of the training list, as floats in [0, 1]."""
    out = [shrink(load_gray(n)) for n in C.TRAIN_GRAY if (skimage_data_dir() / n).exists()]
    for name in C.TRAIN_DCM:
        raw, _ = C.read_dicom_raw(name)
        lo, hi = np.percentile(raw.astype(np.float64), [0.5, 99.5])
        out.append(shrink(np.clip((raw - lo) / max(hi - lo, 1e-6), 0, 1)))
    return out


def encode_onnx(sess, images: list[np.ndarray]) -> np.ndarray:
    """Vectors of raw images through the exported graph with the plugin's preprocessing (common.preprocess)."""
    return np.stack([sess.run(None, {"input": C.preprocess(im)[None, None]})[0][0] for im in images])


def write_plugin(folder, sha, metrics):
    from skimage import io

    with np.load(C.HELDOUT_NPZ) as f:
        io.imsave(str(folder / "sample.png"), f["axial_84"], check_contrast=False)
    spec = plugin_spec(
        PLUGIN_ID, VERSION, sha, name="Similar-case encoder", task="embedding",
        description="A 256-d vector per grayscale image or slice for similar-case search (workbench index / "
                    "search): images close in this space look alike in layout and structure, across noise, "
                    "contrast, gamma, small crops, rotations and flips.",
        input_spec={
            "name": "input", "layout": "NCHW", "color": "gray", "size": [C.SIZE, C.SIZE], "resize": "stretch",
            "intensity": {"percentile": list(C.PERCENTILE)}, "dtype": "float32",
        },
        output_spec={"name": "output"},
        meta={
            "training_data": "self-supervised (SimCLR) on MNI152 T1/GM/WM planes of all orientations outside "
                             "held-out bands, scikit-image samples and pydicom's MR_small / image_dfl",
            "metrics": {
                "heldout_recall_at_1": metrics["model"]["all"]["recall_at_1"],
                "heldout_recall_at_5": metrics["model"]["all"]["recall_at_5"],
                "heldout_mAP": metrics["model"]["all"]["mAP"],
                "baseline_hist_hog_recall_at_1": metrics["baseline"]["all"]["recall_at_1"],
                "baseline_hist_hog_recall_at_5": metrics["baseline"]["all"]["recall_at_5"],
                "baseline_hist_hog_mAP": metrics["baseline"]["all"]["mAP"],
                "n_heldout": metrics["n_heldout"], "n_groups": metrics["n_groups"],
            },
            "latency_ms_96x96_1thread": metrics["latency_ms_96x96_1thread"],
        },
        retrain="models.similar_encoder.train",
    )
    keys = list(spec)
    spec["embedding"] = {"pool": "none", "l2_normalize": True}
    # the embedding block right after output (the contract's reading order)
    spec = {k: spec[k] for k in keys[:keys.index("output") + 1] + ["embedding"] + keys[keys.index("output") + 1:]}
    write_plugin_yaml(folder, spec)


def _row(name: str, m: dict) -> str:
    return f"| {name} | {m['recall_at_1']:.3f} | {m['recall_at_5']:.3f} | {m['mAP']:.3f} |"


def write_card(folder, metrics) -> None:
    """plugins/similar-encoder/README.md: the model card, with this run's figures."""
    t = metrics["train"]
    runs = metrics.get("train_runs", [t])
    log = "; ".join(f"run {i + 1}: {r['steps']} steps in {r['seconds']} s, final NT-Xent loss (EMA) "
                    f"{r['final_loss_ema']}, pair accuracy (EMA) {r['final_pair_acc_ema']}"
                    for i, r in enumerate(runs))
    m, b = metrics["model"], metrics["baseline"]
    table = "\n".join([
        "| descriptor | recall@1 | recall@5 | mAP |", "|---|---|---|---|",
        _row("**similar-encoder**, all queries", m["all"]), _row("histogram + HOG, all queries", b["all"]),
        _row("similar-encoder, MNI position groups", m["mni_positions"]),
        _row("histogram + HOG, MNI position groups", b["mni_positions"]),
        _row("similar-encoder, source groups", m["sources"]), _row("histogram + HOG, source groups", b["sources"]),
    ])
    text = f"""# Similar-case encoder — model card

Turns a grayscale image or one slice of a volume into a 256-d unit vector for similar-case search
(`workbench index FOLDER --db LIB.wbindex -m similar-encoder`, then `workbench search IMAGE --db LIB.wbindex`;
docs/SEARCH.md). Research use, not for diagnosis.

## What "similar" means for it
Two images score high (cosine close to 1) when they show the same structure in the same layout: the same
anatomy at nearby positions (a few mm apart) in the same orientation, or the same picture after the
changes the encoder was trained to ignore -- crops keeping >= 55 % of the area, horizontal flips, rotations
up to 10 degrees, gamma 0.67-1.5, contrast and brightness, blur (sigma <= 1.5 px) and Gaussian noise
(sigma <= 5 % of the range). It knows nothing about diagnosis, pathology or patients: "similar" is visual
similarity at 96x96 px, learned without labels.

## Data
Self-supervised, no labels. Training: nilearn's MNI152 2009a template (T1 and the grey/white-matter
probability maps, 1 mm) as axial, coronal and sagittal planes every 2 mm outside three held-out bands;
scikit-image's samples except the held-out ones; pydicom's `MR_small.dcm` and `image_dfl.dcm`.
Held out (never trained on as an image): the MNI axial slab z = 72..95 (shared by every bundled model),
the coronal band y = 100..123 and the sagittal band x = 56..79 (voxel indices, each with a 4-voxel margin
also excluded); scikit-image's camera, moon, phantom, coins and text; pydicom's `CT_small.dcm` (16-bit,
read in Hounsfield units) and `examples_overlay.dcm` (16-bit MR).

## Method
SimCLR's NT-Xent loss (temperature {TEMPERATURE}): each batch holds two views of {t['batch'] // 2} sources,
{int(MNI_SHARE * 100)} % of them MNI planes whose second view is a plane up to 2 mm away (same
orientation and contrast), so that position -- not the exact plane -- is what the views share. A small CNN
(eight 3x3 conv layers with batch norm and ReLU, four of them stride 2, 24 to 256 channels, global average
pooling; {metrics['parameters'] / 1e6:.2f} M parameters, {metrics['onnx_kb']} kB ONNX) gives the exported vector; a
2-layer projection head used only by the loss is dropped at export. AdamW, warm-up + cosine, one CPU
thread, fixed seeds. Training log: {log}.

Preprocessing, declared in plugin.yaml so that the app does the same for any input: gray (RGB via luma),
the plane's 1st-99th percentile window mapped to [0, 1] (so 8-bit, 16-bit and CT in Hounsfield units all
arrive in the same range), stretched to 96x96.

## Held-out retrieval (same run)
{metrics['n_heldout']} images in {metrics['n_groups']} groups: 9 MNI position groups (3 positions in each
held-out band, each position = 3 neighbouring planes x 2 degraded variants) and 7 source groups (8 degraded
variants of each held-out image, in its own dtype and units). Every image queries all the others by cosine
similarity; relevant = same group. recall@k: share of queries with a relevant image among the first k.
Baseline, computed in the same run on the same preprocessed 96x96 images: a 32-bin intensity histogram +
HOG (scikit-image, 9 orientations, 12 px cells, 2x2 blocks), each L2-normalised.

{table}

Latency: {metrics['latency_ms_96x96_1thread']} ms per image on one CPU thread (onnxruntime).
`tests/unit/test_similar_encoder.py` re-runs the shipped model through the app's engine (`Embedder`) on the
same held-out set and checks these figures within 0.03 and that the encoder beats the baseline.

## Limitations
- 2-D only: a volume is searched slice by slice; no 3-D context.
- 96x96 px: fine detail (small lesions, texture at native resolution) is averaged away; two images that
  differ only in a small region score close.
- Trained on one template brain and a few dozen photographs and samples: real clinical archives (other
  body parts, modalities, scanners, pathology) are outside its training data. Scores are only comparable
  within one index built with this encoder.
- Percentile windowing discards absolute intensity: a CT in a lung window and in a bone window of the same
  slice are mapped alike only if their percentiles match; inverted images (MONOCHROME1) are not normalised.

## Retrain
`pip install -e .[train]` then `python -m models.similar_encoder.train` (see models/README.md). It rewrites
model.onnx, plugin.yaml (sha256, metrics) and this card.
"""
    (folder / "README.md").write_text(text, encoding="utf-8")


class SimilarEncoder(Recipe):
    """The encoder: SimCLR pairs, NT-Xent, held-out retrieval against histogram + HOG."""

    plugin_id, name = PLUGIN_ID, "similar_encoder"
    minutes, batch, lr = 55.0, 64, 2e-3
    warmup = 0.05
    example_shape = (1, 1, C.SIZE, C.SIZE)
    write_plugin, write_card = staticmethod(write_plugin), staticmethod(write_card)

    def prepare(self):
        self.runs = C.mni_train_planes()
        self.flat_runs = [run for rr in self.runs.values() for run in rr]
        self.sources = training_sources()
        n_planes = sum(len(r) for r in self.flat_runs)
        print(f"training: {n_planes} MNI planes in {len(self.flat_runs)} runs, {len(self.sources)} other images",
              flush=True)

    def build_net(self):
        return Encoder()

    def pair(self):
        rng = self.rng
        if rng.random() < MNI_SHARE:
            run = self.flat_runs[rng.integers(len(self.flat_runs))]
            i = int(rng.integers(len(run)))
            j = int(np.clip(i + rng.integers(-1, 2), 0, len(run) - 1))
            a, b = run[i], run[j]
        else:
            a = b = self.sources[rng.integers(len(self.sources))]
        return C.preprocess(C.degrade(a, rng)), C.preprocess(C.degrade(b, rng))

    def loss(self, net):
        pairs = [self.pair() for _ in range(self.args.batch // 2)]
        x = np.stack([p[0] for p in pairs] + [p[1] for p in pairs])[:, None]
        z = net.project(net(torch.from_numpy(x)))
        loss, acc = nt_xent(z, TEMPERATURE)
        return loss, {"loss": loss.item(), "acc": acc}

    def progress(self, ema, last):
        return f"loss(ema)={ema['loss']:.4f} pair acc(ema)={ema['acc']:.3f}"

    def finished(self, ema):
        return f"loss(ema)={ema['loss']:.4f} pair acc(ema)={ema['acc']:.3f}"

    def measure(self, onnx_path):
        images, _, groups, names = C.heldout_set()
        sess = ort_session(onnx_path)
        model_v = encode_onnx(sess, images)
        base_v = np.stack([C.baseline_descriptor(im) for im in images])
        net = self.build_net()
        return {
            "n_heldout": len(images), "n_groups": len(names), "groups": names,
            "model": C.split_metrics(model_v, groups, names),
            "baseline": C.split_metrics(base_v, groups, names),
            "latency_ms_96x96_1thread": onnx_latency_ms(onnx_path, np.zeros((1, 1, C.SIZE, C.SIZE), np.float32)),
            "parameters": sum(p.numel() for p in net.features.parameters()),
            "onnx_kb": round(onnx_path.stat().st_size / 1024),
        }

    def train_summary(self, ema):
        return {"final_loss_ema": round(ema["loss"], 4), "final_pair_acc_ema": round(ema["acc"], 3),
                "batch": self.args.batch}


def main(argv=None):
    """``python -m models.similar_encoder.train [options]`` (see ``--help``)."""
    SimilarEncoder().main(argv)


if __name__ == "__main__":
    main()
