"""Saliency and uncertainty on models built here whose answer is known: the pointing game (the peak lies in
the only region the classifier reads), entropy high exactly where the logits are ambiguous, TTA
disagreement exactly where the model is not flip-equivariant, and the cost counted at the session."""
from __future__ import annotations

import dataclasses
import threading

import numpy as np
import onnx_factory as F
import pytest
from explain_models import ramp_segmenter, region_classifier

from workbench.core.errors import CancelledError
from workbench.core.image import ImageVolume
from workbench.inference.explain import ExplainError, explain, run_explain
from workbench.inference.explain.occlusion import window_starts
from workbench.inference.run import Engine

pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def classifier_plugin(tmp_path, region, *, size=("H", "W"), resize="none", batch="N", name="roi-cls"):
    manifest = {"id": name, "task": "classification",
                "input": {"layout": "NCHW", "color": "gray", "resize": resize, "dtype": "float32",
                          **({"size": list(size)} if resize != "none" else {})},
                "output": {"activation": "softmax", "labels": ["bright", "dark"]}}
    return F.write_plugin(tmp_path / name, region_classifier(region, size=size, batch=batch), manifest)


def distractor_image(h: int, w: int, bright: tuple[int, int, int, int]) -> np.ndarray:
    """Dark image, bright in ``bright`` (y0, y1, x0, x1) and in random distractor blobs elsewhere."""
    rng = np.random.default_rng(3)
    img = np.zeros((h, w), np.float32)
    for _ in range(6):
        y, x = int(rng.integers(0, h - 6)), int(rng.integers(0, w - 6))
        img[y:y + 6, x:x + 6] = 1.0
    y0, y1, x0, x1 = bright
    img[y0:y1, x0:x1] = 1.0
    return img


class CountingSession:
    """Wraps an onnxruntime session; counts session.run calls and images (batch rows) through it."""

    def __init__(self, inner):
        self.inner, self.calls, self.images = inner, 0, 0

    def run(self, names, feeds):
        self.calls += 1
        self.images += int(next(iter(feeds.values())).shape[0])
        return self.inner.run(names, feeds)

    def __getattr__(self, item):
        return getattr(self.inner, item)


def counted(engine: Engine) -> CountingSession:
    counter = CountingSession(engine.model.session)
    engine.model = dataclasses.replace(engine.model, session=counter)
    return counter


def inside(peak: dict, box: tuple[int, int, int, int]) -> bool:
    y0, y1, x0, x1 = box
    return y0 <= peak["y"] < y1 and x0 <= peak["x"] < x1


@pytest.mark.parametrize("method,params", [("occlusion", {"window": 6, "stride": 3, "baseline": "mean"}),
                                           ("occlusion", {"window": 0.2, "stride": 0.1, "baseline": "blur",
                                                          "blur_sigma": 8}),
                                           ("rise", {"n_masks": 300, "seed": 1, "cells": 8, "baseline": "mean"})])
def test_pointing_game_native_geometry(tmp_path, method, params):
    region = (20, 32, 36, 48)
    engine = Engine(classifier_plugin(tmp_path, region))
    counter = counted(engine)
    img = distractor_image(64, 64, region)
    expl = run_explain(engine, ImageVolume(img[None]), method=method, **params)
    assert expl.map.shape == (64, 64) and expl.map.dtype == np.float32
    assert inside(expl.peak, region), expl.peak
    assert expl.target["label"] == "bright" and expl.top["label"] == "bright"
    # the cost is exactly the declared number of model runs, counted at the session
    declared = 1 + (params["n_masks"] if method == "rise" else expl.parameters["positions"])
    assert counter.images == expl.cost.model_runs == declared
    assert counter.calls == expl.cost.session_calls < declared  # dynamic batch: batched
    # pixels the model never reads get (almost) nothing
    outside = np.ones_like(expl.map, bool)
    outside[max(0, region[0] - 12):region[1] + 12, max(0, region[2] - 12):region[3] + 12] = False
    assert np.abs(expl.map[outside]).max() < 0.25 * expl.map.max()


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
@pytest.mark.parametrize("method", ["occlusion", "rise"])
def test_pointing_game_maps_back_through_resize(tmp_path, resize, method):
    """Fixed 32x32 input: the map is computed on the model input and mapped back to the 40x80 image."""
    engine_region_model = (10, 13, 4, 10) if resize == "letterbox" else (2, 8, 24, 30)
    engine = Engine(classifier_plugin(tmp_path, engine_region_model, size=(32, 32), resize=resize))
    geo = engine.prepare_plane(ImageVolume(np.zeros((1, 40, 80), np.float32)), 0).geometry
    sy, sx = geo.scale
    y0, y1, x0, x1 = engine_region_model
    img_box = (int((y0 - geo.pad[0]) / sy), int(np.ceil((y1 - geo.pad[0]) / sy)),
               int((x0 - geo.pad[1]) / sx), int(np.ceil((x1 - geo.pad[1]) / sx)))
    img = distractor_image(40, 80, img_box)
    params = {"window": 4, "stride": 2, "baseline": "mean"} if method == "occlusion" else \
        {"n_masks": 300, "seed": 2, "cells": 8, "baseline": "mean"}
    expl = run_explain(engine, ImageVolume(img[None]), method=method, **params)
    assert expl.map.shape == (40, 80)
    assert inside(expl.peak, img_box), (expl.peak, img_box)


def test_fixed_batch_runs_one_image_per_call_and_class_on_request(tmp_path):
    region = (4, 12, 4, 12)
    engine = Engine(classifier_plugin(tmp_path, region, batch=1))
    counter = counted(engine)
    img = distractor_image(32, 32, region)
    expl = run_explain(engine, ImageVolume(img[None]), method="rise", target="DARK", n_masks=40, seed=0)
    assert expl.target["label"] == "dark" and expl.top["label"] == "bright"
    assert counter.calls == counter.images == expl.cost.model_runs == 41
    # explaining the other class of a 2-class softmax points the other way: the region lowers it
    assert expl.map[region[0]:region[1], region[2]:region[3]].mean() < 0
    again = run_explain(engine, ImageVolume(img[None]), method="rise", target="dark", n_masks=40, seed=0,
                        batch_size=7)
    np.testing.assert_allclose(again.map, expl.map, rtol=1e-5, atol=1e-7)  # (N, seed) fixes the map


def test_cancel_and_progress(tmp_path):
    engine = Engine(classifier_plugin(tmp_path, (4, 12, 4, 12)))
    cancel = threading.Event()
    gen = explain(engine, ImageVolume(np.ones((1, 32, 32), np.float32)), method="rise", n_masks=64,
                  batch_size=8, cancel=cancel)
    steps = [next(gen), next(gen)]
    assert steps[0][1] == 64 and steps[1][0] == 8
    cancel.set()
    with pytest.raises(CancelledError):
        while True:
            next(gen)


def test_errors_are_one_line(tmp_path):
    engine = Engine(classifier_plugin(tmp_path, (4, 12, 4, 12)))
    img = ImageVolume(np.ones((1, 32, 32), np.float32))
    with pytest.raises(ExplainError, match="--class cat: not a class of roi-cls .classes: bright, dark"):
        run_explain(engine, img, method="occlusion", target="cat")
    with pytest.raises(ExplainError, match="classification plugin; use occlusion or rise"):
        run_explain(engine, img, method="entropy")
    with pytest.raises(ExplainError, match="--window 0"):
        run_explain(engine, img, method="occlusion", window=0)
    assert window_starts(10, 4, 3) == [0, 3, 6] and window_starts(10, 4, 4) == [0, 4, 6]


# -- segmentation ---------------------------------------------------------------------------------
def segmenter_plugin(tmp_path, proto, name="seg"):
    manifest = {"id": name, "task": "segmentation",
                "input": {"layout": "NCHW", "color": "gray", "resize": "none", "dtype": "float32"},
                "output": {"layout": "NCHW", "activation": "softmax",
                           "classes": [{"name": "background"}, {"name": "object", "color": "#ff0000"}]}}
    return F.write_plugin(tmp_path / name, proto, manifest)


def ambiguous_image(size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    img = np.zeros((size, size), np.float32)
    img[:, size // 2:] = 1.0  # certain background left, certain object right
    amb = np.zeros((size, size), bool)
    amb[4:10, 2:12] = True
    img[amb] = 0.5  # logits exactly ambiguous here (plus the small ramp)
    return img, amb


def test_entropy_and_margin_high_exactly_where_logits_are_ambiguous(tmp_path):
    engine = Engine(segmenter_plugin(tmp_path, F.threshold_segmenter(size=["H", "W"])))
    img, amb = ambiguous_image()
    counter = counted(engine)
    ent = run_explain(engine, ImageVolume(img[None]), method="entropy")
    assert ent.map.shape == (16, 16)
    assert ent.map[amb].min() > 0.99 and ent.map[~amb].max() < 0.1
    assert counter.images == ent.cost.model_runs == 1
    mar = run_explain(engine, ImageVolume(img[None]), method="margin", threshold=0.5)
    assert mar.map[amb].min() > 0.99 and mar.map[~amb].max() < 0.1
    rows = {r["name"]: r for r in mar.summary}
    assert sum(r["pixels"] for r in rows.values()) == img.size
    assert rows["object"]["uncertain_fraction"] < 1.0 and rows["background"]["mean_uncertainty"] >= 0.0
    n_uncertain = sum(r["uncertain_fraction"] * r["pixels"] for r in rows.values())
    assert round(n_uncertain) == amb.sum()


def test_tta_disagreement_where_the_model_is_not_flip_equivariant(tmp_path):
    engine = Engine(segmenter_plugin(tmp_path, ramp_segmenter()))
    img, amb = ambiguous_image()
    counter = counted(engine)
    tta = run_explain(engine, ImageVolume(img[None]), method="tta", flips=["h", "v"])
    # the h flip reverses the ramp (label changes in the ambiguous box), the v flip does not
    np.testing.assert_allclose(tta.map[amb], 1 / 3, atol=1e-6)
    assert tta.map[~amb].max() == 0.0
    assert counter.images == tta.cost.model_runs == 3 and counter.calls == 2  # original + one batch
    with pytest.raises(ExplainError, match="--flips x"):
        run_explain(engine, ImageVolume(img[None]), method="tta", flips=["x"])
    with pytest.raises(ExplainError, match="segmentation plugin; use entropy, margin or tta"):
        run_explain(engine, ImageVolume(img[None]), method="rise")
