"""The custom-decoder hook (issue 21): manifest fields, the context, return validation per task, trust
records and the settings file's unknown keys."""
from __future__ import annotations

import json

import numpy as np
import onnx_factory as F
import pytest

from workbench.core.errors import InferenceError, PluginError
from workbench.core.image import ImageVolume
from workbench.core.settings import Settings, load_settings, settings_path
from workbench.inference.run import predict
from workbench.inference.spec import load_plugin
from workbench.inference.trust import content_hash, trust_plugin, trust_state
from workbench.io.settings_file import save_settings

pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def _plugin(tmp_path, task, code, output=None, name="hook", outputs=None):
    manifest = {"id": name, "task": task, "input": {"color": "gray", "size": [8, 8]},
                "output": {"decoder": "dec:decode", **(output or {})}}
    proto = F.constant_output([1, 1, 8, 8], outputs or {"845": np.arange(6, dtype=np.float32).reshape(1, 6)})
    return F.write_plugin(tmp_path / name, proto, manifest, files={"dec.py": code})


def _trusted(folder) -> Settings:
    settings = Settings()
    trust_plugin(load_plugin(folder), settings)
    return settings


def _gray(h=8, w=8, n=1):
    return ImageVolume(np.zeros((n, h, w), np.uint8))


def test_numeric_output_name_format_optional_and_params_in_context(tmp_path):
    code = ("import numpy as np\nSEEN = {}\n"
            "def decode(outputs, ctx):\n"
            "    SEEN.update(params=ctx.params, names=sorted(outputs), hw=ctx.model_hw, src=ctx.source_hw,\n"
            "                labels=ctx.labels, slice=ctx.slice_index)\n"
            "    return []\n")
    folder = _plugin(tmp_path, "detection", code,
                     {"name": 845, "labels": ["x"], "params": {"strides": [8, 16], "anchors": {"p3": [1, 2]}}})
    spec = load_plugin(folder)
    assert spec.output.name == "845" and spec.output.format is None  # no dummy built-in format needed
    result = predict(folder, _gray(20, 10, n=3), slices=[2], settings=_trusted(folder))
    assert result.detections == []
    import sys

    seen = next(m for k, m in sys.modules.items() if k.startswith("workbench_plugin_hook")).SEEN
    assert seen == {"params": {"strides": [8, 16], "anchors": {"p3": [1, 2]}}, "names": ["845"], "hw": (8, 8),
                    "src": (20, 10), "labels": ["x"], "slice": 2}


def test_detection_without_format_or_decoder_still_refused(tmp_path):
    manifest = {"id": "nofmt", "task": "detection", "output": {"labels": ["x"]}}
    folder = F.write_plugin(tmp_path / "nofmt", F.identity([1, 3, 8, 8]), manifest)
    with pytest.raises(PluginError, match="output.format: required for detection without output.decoder"):
        load_plugin(folder)


@pytest.mark.parametrize("task,code,expect", [
    ("classification", "def decode(o, ctx):\n    return [0.1, 0.9]\n", None),
    ("classification", "def decode(o, ctx):\n    return [0.1, 0.2, 0.7]\n", "returned 3 scores for 2 labels"),
    ("classification", "def decode(o, ctx):\n    return 'cat'\n", "returned str; expected a (C,) array of scores"),
    ("classification", "import numpy as np\ndef decode(o, ctx):\n    return np.float32(1)\n",
     "returned float32; expected a (C,) array of scores"),
    ("classification", "import numpy as np\ndef decode(o, ctx):\n    return np.array(1.0)\n",
     "returned ndarray () float64; expected a (C,) array of scores"),
    ("restoration", "import numpy as np\ndef decode(o, ctx):\n    return np.full(ctx.source_hw, 300.4)\n", None),
    ("restoration", "import numpy as np\ndef decode(o, ctx):\n    return np.zeros((4, 4))\n",
     "returned ndarray (4, 4) float64; expected (8, 12) or (8, 12, C)"),
    ("detection", "from workbench.inference.results import Detection\n"
                  "def decode(o, ctx):\n    return [Detection(0, '', 0.5, (5, 1, 2, 3))]\n",
     "Detection 0 has box (5, 1, 2, 3); expected finite [x1, y1, x2, y2] with x1 <= x2"),
    ("detection", "def decode(o, ctx):\n    return [None]\n",
     "returned a list whose item 0 is None; expected Detection"),
    ("detection", "import numpy as np\nfrom workbench.inference.results import DetectionCandidates\n"
                  "def decode(o, ctx):\n    return DetectionCandidates(np.zeros((2, 4)), np.array([1.0, np.nan]))\n",
     "with NaN or Inf values"),
])
def test_return_values_are_validated_per_task(tmp_path, task, code, expect):
    output = {"labels": ["a", "b"]} if task == "classification" else {}
    folder = _plugin(tmp_path, task, code, output)
    settings = _trusted(folder)
    if expect is None:
        result = predict(folder, _gray(8, 12), settings=settings)
        if task == "classification":
            assert result.top[0].label == "b"
        else:  # float values cast to the input's dtype (uint8: clipped, rounded)
            assert result.image.data.dtype == np.uint8 and int(result.image.data.max()) == 255
        return
    with pytest.raises(InferenceError) as info:
        predict(folder, _gray(8, 12), settings=settings)
    message = str(info.value)
    assert "plugin.yaml: output.decoder dec:decode of plugin hook: " in message and expect in message
    assert "\n" not in message


def test_finished_detections_get_slice_and_label(tmp_path):
    code = ("from workbench.inference.results import Detection\n"
            "def decode(o, ctx):\n    return [Detection(1, '', 0.5, (1, 2, 3, 4))]\n")
    folder = _plugin(tmp_path, "detection", code, {"labels": ["a", "b"]})
    result = predict(folder, _gray(n=2), slices=[1], settings=_trusted(folder))
    det = result.detections[0]
    assert det.label == "b" and det.slice_index == 1 and det.box == (1.0, 2.0, 3.0, 4.0)


def test_import_failure_names_the_file(tmp_path):
    folder = _plugin(tmp_path, "detection", "raise RuntimeError('boom at import')\n")
    with pytest.raises(PluginError, match=r"output.decoder: importing dec.py failed: RuntimeError: boom at import"):
        predict(folder, _gray(), settings=_trusted(folder))


def test_trust_records_content_not_id(tmp_path):
    folder = _plugin(tmp_path, "detection", "def decode(o, ctx):\n    return []\n")
    spec = load_plugin(folder)
    settings = Settings()
    assert trust_state(spec, settings) == "untrusted"
    record, added = trust_plugin(spec, settings)
    assert added and record.sha256 == content_hash(spec).sha256 and record.folder == str(spec.folder)
    stored = json.loads(settings_path().read_text())  # written (atomically) at once
    assert stored["trusted_code"][0]["sha256"] == record.sha256
    assert trust_plugin(spec, settings) == (record, False)
    assert trust_state(spec, settings) == "trusted"
    (folder / "notes.txt").write_text("not part of the content")
    assert trust_state(spec, settings) == "trusted"
    (folder / "model.onnx.data").write_bytes(b"external weights")  # ONNX external data is part of the model
    assert trust_state(spec, settings) == "changed"
    (folder / "model.onnx.data").unlink()
    assert trust_state(spec, settings) == "trusted"
    (folder / "plugin.yaml").write_text((folder / "plugin.yaml").read_text() + "\n# edited\n")
    assert trust_state(load_plugin(folder), settings) == "changed"


def test_decoder_runs_from_the_hashed_source_without_bytecode_cache(tmp_path):
    folder = _plugin(tmp_path, "detection", "def decode(o, ctx):\n    return []\n", name="nocache")
    predict(folder, _gray(), settings=_trusted(folder))
    assert not (folder / "__pycache__").exists()


def test_unknown_settings_key_is_reported_once_with_the_file(capsys):
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"trusted_plugin": ["x"], "theme": "light"}))
    settings = load_settings()
    load_settings()
    err = capsys.readouterr().err.splitlines()
    assert err == [f"workbench: warning: {path}: unknown setting 'trusted_plugin' is ignored; did you mean "
                   "'trusted_plugins'?"]
    assert settings.theme == "light"
    save_settings(settings)  # the misspelt key is kept for the user to fix, not dropped
    assert json.loads(path.read_text())["trusted_plugin"] == ["x"]


def test_classification_scores_keep_one_length_across_slices(tmp_path):
    code = "def decode(o, ctx):\n    return [0.5] * (2 + ctx.slice_index)\n"
    folder = _plugin(tmp_path, "classification", code)
    with pytest.raises(InferenceError, match=r"of plugin hook on slice 1: returned scores \(3,\), \(2,\) before"):
        predict(folder, _gray(n=2), settings=_trusted(folder))

    # another image may give another shape (restoration of another size)
    code = "import numpy as np\ndef decode(o, ctx):\n    return np.zeros(ctx.source_hw, np.uint8)\n"
    folder = _plugin(tmp_path, "restoration", code, name="resto")
    from workbench.inference.run import Engine

    engine = Engine(folder, settings=_trusted(folder))
    assert predict(engine, _gray(8, 8)).image.data.shape == (1, 8, 8)
    assert predict(engine, _gray(6, 10)).image.data.shape == (1, 6, 10)
