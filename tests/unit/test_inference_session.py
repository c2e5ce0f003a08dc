"""Sessions: providers, options, cache, graph reading, and one-line errors for bad models/runs."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
import pytest
from onnx import helper

from workbench.core.errors import InferenceError, PluginError
from workbench.core.image import ImageVolume
from workbench.core.settings import Settings
from workbench.inference import session as S
from workbench.inference.run import predict
from workbench.inference.selftest import SMOKE_MODEL, diagnose, smoke_run
from workbench.inference.spec import load_plugin

SEG = {"id": "seg", "task": "segmentation", "input": {"color": "gray", "resize": "none"},
       "output": {"classes": [{"name": "bg"}, {"name": "fg"}]}}


pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def test_resolve_providers(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "AzureExecutionProvider", "CPUExecutionProvider"])
    plugin = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider", "DmlExecutionProvider"]
    assert S.resolve_providers(plugin, "auto") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert S.resolve_providers(["CPUExecutionProvider"], "auto") == ["CPUExecutionProvider"]
    assert S.resolve_providers(plugin, "cpu") == ["CPUExecutionProvider"]
    assert S.resolve_providers(["CPUExecutionProvider"], "cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(PluginError, match="--provider cuda: CUDAExecutionProvider is not available"):
        S.resolve_providers(plugin, "cuda")


def test_session_options_threads_and_no_spinning():
    opts = S.session_options(1)
    import onnxruntime

    assert opts.intra_op_num_threads == 1
    assert opts.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_provider_used_is_read_back_and_recorded(tmp_path, monkeypatch):
    folder = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1),
                            {**SEG, "runtime": {"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]}})
    result = predict(folder, ImageVolume(np.zeros((8, 8), np.float32)), settings=Settings())
    assert result.info.provider == "CPUExecutionProvider"  # CUDA not available here: filtered, CPU used
    assert result.info.sha256 == load_plugin(folder).sha256
    assert set(result.info.timing_ms) == {"preprocess", "inference", "postprocess"}


def test_sessions_are_lazy_cached_and_bounded(tmp_path, monkeypatch):
    import onnxruntime

    created = []
    real = onnxruntime.InferenceSession
    monkeypatch.setattr(onnxruntime, "InferenceSession", lambda *a, **k: created.append(a[0]) or real(*a, **k))
    specs = [load_plugin(F.write_plugin(tmp_path / f"p{i}", F.threshold_segmenter(1, threshold=i / 10),
                                        {**SEG, "id": f"p{i}"})) for i in range(S.MAX_CACHED_SESSIONS + 1)]
    assert created == []  # loading manifests creates nothing
    first = S.get_session(specs[0], settings=Settings())
    assert S.get_session(specs[0], settings=Settings()) is first and len(created) == 1
    for spec in specs[1:]:
        S.get_session(spec, settings=Settings())
    assert len(S.cached_sessions()) == S.MAX_CACHED_SESSIONS
    S.get_session(specs[0], settings=Settings())  # evicted (least recently used): created again
    assert len(created) == S.MAX_CACHED_SESSIONS + 2
    assert first.metadata["producer"] == "workbench-tests"


def test_unknown_custom_op_domain(tmp_path):
    proto = F.model([helper.make_node("FancyNorm", ["input"], ["output"], domain="com.acme")],
                    [F.vi("input", ["N", 1, "H", "W"])], [F.vi("output", ["N", 2, "H", "W"])], domains={"com.acme": 1})
    folder = F.write_plugin(tmp_path / "seg", proto, SEG)
    with pytest.raises(PluginError) as err:
        S.get_session(load_plugin(folder), settings=Settings())
    msg = str(err.value)
    assert "plugin.yaml: model.file:" in msg and "com.acme" in msg and "custom op" in msg and "\n" not in msg


def test_corrupt_model_file(tmp_path):
    folder = F.write_plugin(tmp_path / "seg", b"this is not a protobuf", SEG)
    with pytest.raises(PluginError, match="model.file: cannot load model.onnx"):
        S.get_session(load_plugin(folder), settings=Settings())


def test_nan_output_is_an_inference_error(tmp_path):
    folder = F.write_plugin(tmp_path / "seg", F.affine(["N", 1, "H", "W"], float("nan"), 0.0), SEG)
    with pytest.raises(InferenceError, match="output 'output' contains NaN or Inf"):
        S.get_session(load_plugin(folder), settings=Settings())  # already the warm-up run catches it
    folder = F.write_plugin(tmp_path / "inf", F.affine(["N", 1, "H", "W"], 1.0, 0.0), {**SEG, "id": "inf"})
    image = ImageVolume(np.array([[0.0, np.inf]], np.float32))
    with pytest.raises(InferenceError, match="contains NaN or Inf"):
        predict(folder, image, settings=Settings())


def test_model_failing_at_run_time(tmp_path):
    # Reshape to a fixed element count: fine for the 64x64 warm-up, fails on a 50x50 image
    nodes = [helper.make_node("Reshape", ["input", "shape"], ["flat"]),
             helper.make_node("Reshape", ["flat", "back"], ["output"])]
    proto = F.model(nodes, [F.vi("input", ["N", 1, "H", "W"])], [F.vi("output", [1, 2, 32, 64])],
                    [F.const("shape", np.array([1, 4096], np.int64)),
                     F.const("back", np.array([1, 2, 32, 64], np.int64))])
    folder = F.write_plugin(tmp_path / "seg", proto, SEG)
    with pytest.raises(InferenceError) as err:
        predict(folder, ImageVolume(np.zeros((50, 50), np.float32)), settings=Settings())
    assert str(err.value).startswith("seg: model failed at run time on input [1, 1, 50, 50]:")
    assert "\n" not in str(err.value)


def test_image_incompatible_with_input(tmp_path):
    folder = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1, size=[32, 32]), SEG)
    with pytest.raises(InferenceError, match="image of 40x40 pixels does not fit the model input 32x32"):
        predict(folder, ImageVolume(np.zeros((40, 40), np.float32)), settings=Settings())


def test_rank_5_input_refused(tmp_path):
    proto = F.identity(["N", 1, "D", "H", "W"])
    folder = F.write_plugin(tmp_path / "seg", proto, SEG)
    with pytest.raises(PluginError, match=r"input.name: graph input 'input' has shape .*a 4-D image tensor"):
        S.get_session(load_plugin(folder), settings=Settings())


def test_embedded_smoke_model_matches_factory_and_runs():
    assert SMOKE_MODEL == F.tiny_add_model().SerializeToString()
    run = smoke_run("CPUExecutionProvider")
    assert run.ok and run.used == "CPUExecutionProvider"


def test_diagnose_reports_packages_and_conflicts(monkeypatch):
    from workbench.inference import selftest

    report = diagnose()
    assert "onnxruntime" in report.packages and not report.conflict
    assert "CPUExecutionProvider" in report.providers and any(r.ok for r in report.smoke)
    monkeypatch.setattr(selftest, "installed_ort_packages", lambda: {"onnxruntime": "1.0", "onnxruntime-gpu": "1.0"})
    report = diagnose()
    assert report.conflict and any("several onnxruntime packages" in p for p in report.problems)
