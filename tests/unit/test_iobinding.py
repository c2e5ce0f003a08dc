"""IO binding (inference/iobinding.py) on CPU memory gives exactly what plain session.run gives, reuses
its buffers across same-shaped tiles, and plugs under LoadedModel unchanged."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
import onnxruntime as ort
import pytest

from workbench.core.image import ImageVolume
from workbench.core.settings import Settings
from workbench.inference import session as S
from workbench.inference.iobinding import BoundSession, bind_on_device
from workbench.inference.run import Engine, predict

SEG = {"id": "seg", "task": "segmentation", "input": {"color": "gray", "resize": "none"},
       "output": {"classes": [{"name": "bg"}, {"name": "fg"}]}}


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), sess_options=S.session_options(1),
                                providers=["CPUExecutionProvider"])


def test_bound_session_equals_plain_run_over_tiles_and_shape_changes():
    plain = _session(F.threshold_segmenter(1))
    bound = BoundSession(_session(F.threshold_segmenter(1)), ("cpu", 0))
    name = plain.get_inputs()[0].name
    rng = np.random.default_rng(0)
    first = None
    shapes = [(1, 1, 16, 16)] * 4 + [(1, 1, 8, 24)] * 2 + [(1, 1, 16, 16)]
    for shape in shapes:
        x = rng.random(shape, dtype=np.float32)
        want = plain.run(None, {name: x})
        got = bound.run(None, {name: x})
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
        if first is None:
            first = (got[0].copy(), got[0])
    np.testing.assert_array_equal(first[0], first[1])  # a returned array is never overwritten by later runs
    assert bound.runs == 7 and bound.reused == 4  # 3 reuses in the first 16x16 run of 4, 1 in the 8x24 pair
    assert bound.get_inputs()[0].name == name  # everything else is the session's


def test_tiled_restoration_through_the_binding_equals_plain(tmp_path):
    """The real tile loop (Engine -> LoadedModel.run -> session.run) with the binding under it."""
    manifest = {"id": "den", "task": "restoration",
                "input": {"color": "gray", "resize": "tile", "tile": {"size": 32, "overlap": 8}}, "output": {}}
    folder = F.write_plugin(tmp_path / "den", F.conv_net(1, [4], 1), manifest)
    img = ImageVolume(np.random.default_rng(2).normal(100, 30, (1, 75, 61)).astype(np.float32))
    S.clear_session_cache()
    engine = Engine(folder, provider="cpu", settings=Settings())
    want = predict(engine, img).image.data
    engine.model.session = BoundSession(engine.model.session, ("cpu", 0))
    got = predict(engine, img).image.data
    np.testing.assert_array_equal(got, want)
    assert engine.model.session.runs >= 9 and engine.model.session.reused == engine.model.session.runs - 1
    S.clear_session_cache()


def test_bind_on_device_leaves_cpu_sessions_alone():
    sess = _session(F.threshold_segmenter(1))
    assert bind_on_device(sess) is sess


@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(),
                    reason="needs onnxruntime-gpu and an NVIDIA device")
def test_bound_session_on_cuda():
    try:
        sess = ort.InferenceSession(F.threshold_segmenter(1).SerializeToString(),
                                    providers=["CUDAExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - the build lists CUDA but this machine cannot run it
        pytest.skip(f"CUDA session could not be created: {exc}")
    if sess.get_providers()[0] != "CUDAExecutionProvider":
        pytest.skip("CUDAExecutionProvider fell back to CPU (no driver/device)")
    bound = bind_on_device(sess)
    assert isinstance(bound, BoundSession) and bound.device == "cuda"
    x = np.random.default_rng(1).random((1, 1, 32, 32), dtype=np.float32)
    name = sess.get_inputs()[0].name
    for _ in range(3):
        np.testing.assert_allclose(bound.run(None, {name: x})[0], sess.run(None, {name: x})[0], rtol=1e-5)
    assert bound.reused == 2
