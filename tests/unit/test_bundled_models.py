"""The bundled model plugins earn their place: re-evaluate every shipped ONNX on held-out data.

Each test runs the plugin through the app's own engine (``workbench.inference.run.Engine``: the plugin.yaml
preprocessing, session, decoder and geometry mapping the user gets), recomputes the figure its model card
(``plugins/<id>/README.md``, mirrored in ``plugin.yaml`` ``meta.metrics``) states on the same held-out data,
asserts it within the stated tolerance, and that it beats the classical baseline (recomputed here where that
is cheap, else the baseline figure measured in the training run).

The tolerances cover the only differences from the training-run evaluation, which fed onnxruntime directly:
the engine's thread count (float summation order) and, for the denoiser, its mirror-padding of images
smaller than one tile. Held-out data: scikit-image's camera and moon (and, for the denoiser and the focal-spot
detector, astronaut), pydicom's CT_small (and examples_overlay, an MR slice), and the MNI152 slab stored in
models/common/heldout_mni_slab.npz; none of it was trained on. Runtime: about 40 s.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the evaluation helpers live in models/ (training code, not installed)
    sys.path.insert(0, str(REPO))

from workbench.core.image import ImageVolume  # noqa: E402
from workbench.core.settings import Settings  # noqa: E402
from workbench.inference.run import Engine  # noqa: E402
from workbench.inference.spec import load_plugin  # noqa: E402

PLUGINS = REPO / "plugins"
BUNDLED = ("brain-tissue", "denoiser", "quality", "focal-spot")


def _engine(plugin_id: str, **output_overrides) -> Engine:
    spec = load_plugin(PLUGINS / plugin_id)
    if output_overrides:
        spec.output = spec.output.model_copy(update=output_overrides)
    return Engine(spec, provider="cpu", settings=Settings())


def _volume(plane: np.ndarray) -> ImageVolume:
    return ImageVolume(np.ascontiguousarray(plane)[np.newaxis])


def _metrics(plugin_id: str) -> dict:
    return load_plugin(PLUGINS / plugin_id).meta["metrics"]


# -- contract ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("plugin_id", BUNDLED)
def test_manifest_pins_the_model_file(plugin_id):
    spec = load_plugin(PLUGINS / plugin_id)
    assert spec.id == plugin_id
    assert spec.meta["intended_use"] == "research; not for diagnosis"
    data = spec.model_path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == spec.model.sha256
    assert len(data) <= 10 * 1024 * 1024
    assert spec.sample_path is not None and spec.sample_path.is_file()
    assert (PLUGINS / plugin_id / "README.md").is_file()


@pytest.mark.parametrize("plugin_id", BUNDLED)
def test_onnx_is_float32_opset17_with_dynamic_size(plugin_id):
    import onnx

    model = onnx.load(str(PLUGINS / plugin_id / "model.onnx"))
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert opset >= 17
    (inp,) = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = inp.type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[:2]] == [1, 1]
    assert all(d.dim_param for d in dims[2:]), "height and width must be dynamic"
    for init in model.graph.initializer:
        assert init.data_type == onnx.TensorProto.FLOAT or init.data_type == onnx.TensorProto.INT64


# -- brain tissue -----------------------------------------------------------------------------------
def test_brain_tissue_dice_on_the_held_out_slab():
    from models.brain_tissue.common import degrade, dice_per_class, multi_otsu_baseline
    from models.common.data import mni_heldout_slab

    card = _metrics("brain-tissue")
    _, t1, labels = mni_heldout_slab()
    engine = _engine("brain-tissue")
    truth = labels.ravel()
    for sigma255, suffix in ((0, ""), (15, "_noisy15")):
        stack = np.stack([degrade(im, sigma255 / 255, seed=1000 + i) for i, im in enumerate(t1)])
        result = next_result(engine, ImageVolume(stack))
        assert result.mask.shape == stack.shape
        model = dice_per_class(result.mask.ravel(), truth)
        base = dice_per_class(np.stack([multi_otsu_baseline(im) for im in stack]).ravel(), truth)
        for c, name in ((1, "csf"), (2, "gm"), (3, "wm")):
            key = f"{name}{suffix}"
            assert model[c] == pytest.approx(card[f"heldout_dice_{key}"], abs=0.01), key
            assert base[c] == pytest.approx(card[f"baseline_multiotsu_dice_{key}"], abs=0.005), key
            # where the card claims the model wins, it must still win against the recomputed baseline; on
            # noisy slices (the app's first-run sample) it must win for grey and white matter in any case
            if card[f"heldout_dice_{key}"] > card[f"baseline_multiotsu_dice_{key}"] or (suffix and c > 1):
                assert model[c] > base[c], f"{key}: model {model[c]:.4f} <= multi-Otsu {base[c]:.4f}"


def next_result(engine: Engine, image: ImageVolume):
    gen = engine.execute(image)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


# -- denoiser -----------------------------------------------------------------------------------------
def test_denoiser_psnr_on_held_out_images():
    from models.denoiser.common import KINDS, SIGMAS, add_noise, heldout_images, nlm_baseline, psnr

    card = _metrics("denoiser")
    engine = _engine("denoiser")
    images = heldout_images()
    for s in SIGMAS:
        scores, nlm = {}, []
        for k, (name, clean) in enumerate(images.items()):
            noisy = add_noise(clean, s, seed=100 * s + k)
            out = next_result(engine, _volume(noisy)).image.data[0].astype(np.float32)
            assert out.shape == clean.shape
            scores[name] = psnr(clean, out)
            if s == SIGMAS[0]:
                nlm.append(psnr(clean, nlm_baseline(noisy)))
        for group, suffix in (("mean", ""), ("natural", "_natural"), ("medical", "_medical")):
            stated = card[f"heldout_psnr_sigma{s}{suffix}"]
            mean = np.mean([v for n, v in scores.items() if group == "mean" or KINDS[n] == group])
            assert mean == pytest.approx(stated["model"], abs=0.15), (s, group)
            # the card states where the model wins and where it does not: check the claims it makes
            for baseline in ("nlm", "tv"):
                if stated["model"] > stated[baseline]:
                    assert mean > stated[baseline], (s, group, baseline)
        if s == SIGMAS[0]:  # NLM recomputed here at the hardest level for the model
            assert np.mean(nlm) == pytest.approx(card[f"heldout_psnr_sigma{s}"]["nlm"], abs=0.05)
        # and in any case the model must remove most of the noise
        noisy_psnr = np.mean([psnr(c, add_noise(c, s, seed=100 * s + k)) for k, c in enumerate(images.values())])
        assert np.mean(list(scores.values())) > noisy_psnr + 5.0


# -- quality ------------------------------------------------------------------------------------------
def test_quality_accuracy_on_held_out_degradations():
    from models.quality.common import heldout_set

    card = _metrics("quality")
    engine = _engine("quality")
    images, labels = heldout_set()
    assert len(images) == card["n_heldout"]
    pred = np.array([next_result(engine, _volume(im)).top[0].index for im in images])
    acc = float((pred == labels).mean())
    assert acc == pytest.approx(card["heldout_accuracy"], abs=0.02)
    assert acc > card["baseline_heuristic_accuracy"]


# -- focal spot ---------------------------------------------------------------------------------------
def test_focal_spot_ap50_on_held_out_insertions():
    from models.focal_spot.common import at_threshold, average_precision, heldout_set, recall_at_fp

    card = _metrics("focal-spot")
    display = load_plugin(PLUGINS / "focal-spot").output.score_threshold
    # AP integrates over all scores: lower the app's display threshold to the evaluation's 0.01
    engine = _engine("focal-spot", score_threshold=0.01)
    data = heldout_set()
    dets = []
    for img, _, _ in data:
        result = next_result(engine, _volume(img))
        boxes = np.array([d.box for d in result.detections], np.float32).reshape(-1, 4)
        dets.append((boxes, np.array([d.score for d in result.detections], np.float32),
                     np.array([d.index for d in result.detections], np.int64)))
    gts = [(b, c) for _, b, c in data]
    ap = average_precision(dets, gts)
    assert sum(len(b) for _, b, _ in data) == card["n_heldout_spots"]
    assert ap["map50"] == pytest.approx(card["heldout_map50"], abs=0.03)
    assert ap["map50"] > max(card["baseline_blob_log_map50"], card["baseline_dog_map50"])
    recall = recall_at_fp(dets, gts, 1.0)["recall"]
    assert recall == pytest.approx(card["heldout_recall_at_1fp"], abs=0.03)
    assert recall > card["baseline_dog_recall_at_1fp"]
    # what a user sees at the plugin's display threshold
    shown = at_threshold(dets, gts, display)
    assert shown["recall"] == pytest.approx(card["heldout_recall_at_threshold"], abs=0.03)
    assert shown["fp_per_image"] == pytest.approx(card["heldout_fp_per_image_at_threshold"], abs=0.15)


# -- first-run sample ---------------------------------------------------------------------------------
@pytest.mark.parametrize("plugin_id", BUNDLED)
def test_every_plugin_runs_on_the_first_run_sample(plugin_id):
    """``./scripts/run`` opens assets/samples/mri_t1_noisy.png: each bundled plugin must give a sensible
    answer on it."""
    from workbench.io import read_image

    image = read_image(REPO / "assets" / "samples" / "mri_t1_noisy.png")
    result = next_result(_engine(plugin_id), image)
    if plugin_id == "brain-tissue":
        values, counts = np.unique(result.mask, return_counts=True)
        assert set(values.tolist()) == {0, 1, 2, 3}
        assert counts[3] > counts[1]  # more white matter than CSF on this mid-ventricular slice
    elif plugin_id == "denoiser":
        from skimage.restoration import estimate_sigma

        before = estimate_sigma(image.data[0].astype(np.float64))
        after = estimate_sigma(result.image.data[0].astype(np.float64))
        assert result.image.data.shape == image.data.shape
        assert after < 0.5 * before
    elif plugin_id == "quality":
        assert result.top[0].label == "noisy"
    else:
        # the sample has no inserted spot: at the display threshold, few (ideally no) detections
        assert len(result.detections) <= 3
