"""The bundled similar-case encoder earns its place: its retrieval table, recomputed from the shipped ONNX
through the app's engine (``Embedder``: plugin.yaml preprocessing, session, pooling, normalisation) on the
held-out set of models/similar_encoder/common.py, against the histogram + HOG baseline computed here.

The training run fed onnxruntime directly with the same preprocessing re-implemented in numpy
(``common.preprocess``); the tolerance (0.03) covers the resize filter and thread-count differences.
Held-out data: MNI152 planes of bands never trained on (models/similar_encoder/heldout_slices.npz), and
scikit-image / pydicom files that are installed with the test dependencies. Runtime: a few seconds.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the evaluation helpers live in models/ (training code, not installed)
    sys.path.insert(0, str(REPO))

from models.similar_encoder import common as C  # noqa: E402
from workbench.core.image import ImageVolume  # noqa: E402
from workbench.core.settings import Settings  # noqa: E402
from workbench.inference.embedding import Embedder  # noqa: E402
from workbench.inference.spec import load_plugin  # noqa: E402

PLUGIN = REPO / "plugins" / "similar-encoder"
TOL = 0.03


@pytest.fixture(scope="module")
def heldout():
    return C.heldout_set()


@pytest.fixture(scope="module")
def engine_vectors(heldout):
    images, modalities, _, _ = heldout
    emb = Embedder(PLUGIN, provider="cpu", settings=Settings())
    return np.stack([emb.embed_slice(ImageVolume(im[np.newaxis], modality=mod), 0)
                     for im, mod in zip(images, modalities)])


def test_manifest_is_an_embedding_plugin():
    spec = load_plugin(PLUGIN)
    assert spec.task == "embedding" and spec.embedding is not None and spec.embedding.l2_normalize
    assert spec.input.intensity.percentile == list(C.PERCENTILE) and spec.input.size == [C.SIZE, C.SIZE]
    assert spec.meta["intended_use"] == "research; not for diagnosis"


def test_heldout_set_is_what_the_card_counts(heldout):
    images, modalities, groups, names = heldout
    meta = load_plugin(PLUGIN).meta["metrics"]
    assert len(images) == meta["n_heldout"] and len(names) == meta["n_groups"]
    # 8-bit, 16-bit and HU inputs are all in it (the plugin's percentile window handles each)
    dtypes = {im.dtype for im in images}
    assert {np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)} <= dtypes
    assert "CT" in modalities and float(min(im.min() for im in images if im.dtype == np.float32)) < -500


def test_engine_reproduces_the_card_and_beats_the_baseline(heldout, engine_vectors):
    images, _, groups, names = heldout
    meta = load_plugin(PLUGIN).meta["metrics"]
    got = C.split_metrics(engine_vectors, groups, names)
    assert got["all"]["recall_at_1"] == pytest.approx(meta["heldout_recall_at_1"], abs=TOL)
    assert got["all"]["recall_at_5"] == pytest.approx(meta["heldout_recall_at_5"], abs=TOL)
    assert got["all"]["mAP"] == pytest.approx(meta["heldout_mAP"], abs=TOL)
    base = C.split_metrics(np.stack([C.baseline_descriptor(im) for im in images]), groups, names)
    assert base["all"]["mAP"] == pytest.approx(meta["baseline_hist_hog_mAP"], abs=1e-3)
    assert got["all"]["mAP"] > base["all"]["mAP"]
    assert got["all"]["recall_at_1"] > base["all"]["recall_at_1"]
    assert got["all"]["recall_at_5"] >= base["all"]["recall_at_5"]


def test_vectors_are_unit_length_and_invariant_to_storage_units(heldout):
    """The same picture as uint8, as uint16 (x 257) and as float HU-like values (x 4 - 1000) gives the same
    vector: the declared percentile window makes the encoder blind to how the values are stored."""
    emb = Embedder(PLUGIN, provider="cpu", settings=Settings())
    img8 = heldout[0][0]
    variants = [ImageVolume(img8[np.newaxis]), ImageVolume((img8.astype(np.uint16) * 257)[np.newaxis]),
                ImageVolume((img8.astype(np.float32) * 4 - 1000)[np.newaxis], modality="CT")]
    vecs = np.stack([emb.embed_slice(v, 0) for v in variants])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert float((vecs @ vecs[0]).min()) > 0.999


def test_training_script_runs_a_few_steps(tmp_path):
    """The recipe still trains and exports (torch and nilearn: training environments only; CI skips)."""
    pytest.importorskip("torch")
    pytest.importorskip("nilearn")
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "models.similar_encoder.train", "--minutes", "0.05", "--batch", "8",
                           "--export-only", "--out-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "finished: " in proc.stdout and (tmp_path / "model.onnx").is_file() and (tmp_path / "weights.pt").is_file()
    vec = Embedder(PLUGIN, provider="cpu", settings=Settings())  # the shipped plugin is untouched
    assert vec.spec.sha256 == load_plugin(PLUGIN).model.sha256
