"""plugin.yaml validation, checksum and discovery."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx_factory as F
import pytest
import yaml

from workbench.core.errors import PluginError
from workbench.core.settings import Settings
from workbench.inference import registry
from workbench.inference.checksum import file_sha256, verify_sha256
from workbench.inference.registry import discover_plugins, find_plugin
from workbench.inference.session import get_session
from workbench.inference.spec import load_plugin

SEG = {"id": "seg", "task": "segmentation",
       "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 255}},
       "output": {"classes": [{"name": "background"}, {"name": "fg", "color": "#ff0000"}]}}


pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def _edit(folder: Path, **changes) -> None:
    path = folder / "plugin.yaml"
    data = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = data
        keys = dotted.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if value is None:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    path.write_text(yaml.safe_dump(data))


def test_valid_plugin_loads_with_defaults(tmp_path):
    folder = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1), SEG)
    spec = load_plugin(folder)
    assert spec.id == "seg" and spec.task == "segmentation"
    assert spec.input.layout == "NCHW" and spec.input.multiple_of == 1
    assert spec.runtime.providers[-1] == "CPUExecutionProvider"
    assert spec.model_path == (folder / "model.onnx").resolve()
    assert load_plugin(folder / "plugin.yaml").id == "seg"  # the yaml path works too


@pytest.mark.parametrize("change, field", [
    ({"input__resize": "squash"}, "input.resize"),
    ({"input__mutiple_of": 32}, "input.mutiple_of"),
    ({"id": "Bad_Id"}, "id"),
    ({"task": "tracking"}, "task"),
    ({"input__size": [256]}, "input.size"),
    ({"input__intensity__window": [400, -1000]}, "input.intensity.window"),
    ({"output__classes": [{"name": "a", "color": "red"}]}, "output.classes.0.color"),
    ({"name": None}, "name"),
])
def test_schema_errors_name_file_and_field(tmp_path, change, field):
    folder = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1), SEG)
    _edit(folder, **change)
    with pytest.raises(PluginError) as err:
        load_plugin(folder)
    msg = str(err.value)
    assert "\n" not in msg
    assert "plugin.yaml" in msg and f": {field}:" in msg


def test_malformed_yaml_is_one_line_with_line_number(tmp_path):
    folder = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1), SEG)
    (folder / "plugin.yaml").write_text("id: seg\ninput: [1, 2\n  task: x\n")
    with pytest.raises(PluginError, match=r"plugin.yaml: malformed YAML: line \d+"):
        load_plugin(folder)
    (folder / "plugin.yaml").write_text("- just\n- a list\n")
    with pytest.raises(PluginError, match="malformed YAML: expected a mapping"):
        load_plugin(folder)


def test_model_file_outside_folder_and_missing(tmp_path):
    folder = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1), SEG)
    (tmp_path / "elsewhere.onnx").write_bytes(b"x")
    _edit(folder, model__file="../elsewhere.onnx")
    with pytest.raises(PluginError, match=r"model.file: '../elsewhere.onnx' resolves outside the plugin folder"):
        load_plugin(folder)
    _edit(folder, model__file="missing.onnx")
    with pytest.raises(PluginError, match=r"model.file: 'missing.onnx' not found"):
        load_plugin(folder)


def test_labels_file(tmp_path):
    manifest = {"id": "cls", "task": "classification", "input": {"color": "rgb", "size": [8, 8]},
                "output": {"labels_file": "labels.txt"}}
    folder = F.write_plugin(tmp_path / "cls", F.classifier(3, 3, size=[8, 8]), manifest,
                            files={"labels.txt": "good\nnoisy\n\nblurred\n"})
    assert load_plugin(folder).labels == ["good", "noisy", "blurred"]
    (folder / "labels.txt").unlink()
    with pytest.raises(PluginError, match="output.labels_file: 'labels.txt' not found"):
        load_plugin(folder)


def test_task_rules(tmp_path):
    det = {"id": "det", "task": "detection", "input": {"color": "rgb", "size": [32, 32]}, "output": {}}
    folder = F.write_plugin(tmp_path / "det", F.identity([1, 3, 32, 32]), det)
    with pytest.raises(PluginError, match="output.format: required for detection"):
        load_plugin(folder)
    _edit(folder, output__format="boxes_scores")
    with pytest.raises(PluginError, match="output.boxes: boxes_scores needs"):
        load_plugin(folder)
    _edit(folder, output__format="yolov8", input__resize="tile")
    with pytest.raises(PluginError, match="input.resize: tile is only for segmentation and restoration"):
        load_plugin(folder)


def test_sha256_mismatch_refused_before_any_session(tmp_path, monkeypatch):
    folder = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1), SEG, sha256="0" * 64)
    spec = load_plugin(folder)  # discovery does not hash
    created = []
    import onnxruntime

    real = onnxruntime.InferenceSession
    monkeypatch.setattr(onnxruntime, "InferenceSession", lambda *a, **k: created.append(1) or real(*a, **k))
    with pytest.raises(PluginError, match=r"model.sha256: model.onnx has sha256 [0-9a-f]{64}, the manifest says 0{64}"):
        get_session(spec, settings=Settings())
    assert created == []
    # the same file with the right checksum passes and creates exactly one session
    _edit(folder, model__sha256=hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest())
    get_session(load_plugin(folder), settings=Settings())
    assert created == [1]


def test_sha256_cached_and_detects_changes(tmp_path):
    folder = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1), SEG)
    spec = load_plugin(folder)
    verify_sha256(spec)
    assert file_sha256(spec.model_path) == spec.sha256
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data) + b"\0")  # size changes -> new cache key
    with pytest.raises(PluginError, match="model.sha256"):
        verify_sha256(spec)


def test_graph_mismatch_messages(tmp_path):
    seg = {**SEG, "input": {**SEG["input"], "resize": "stretch", "size": [256, 256]}}
    folder = F.write_plugin(tmp_path / "seg", F.threshold_segmenter(1, size=[240, 320]), seg)
    with pytest.raises(PluginError, match=r"plugin.yaml: input.size: graph expects \[240, 320\]"):
        get_session(load_plugin(folder), settings=Settings())
    rgb = {**SEG, "input": {**SEG["input"], "color": "rgb"}}
    folder = F.write_plugin(tmp_path / "rgb", F.threshold_segmenter(1), rgb)
    with pytest.raises(PluginError, match=r"input.color: rgb gives 3 channel\(s\), graph expects 1"):
        get_session(load_plugin(folder), settings=Settings())
    nhwc = {**SEG, "input": {**SEG["input"], "color": "rgb"}}
    folder = F.write_plugin(tmp_path / "nhwc", F.threshold_segmenter(3, layout="NHWC", size=[16, 16]), nhwc)
    with pytest.raises(PluginError, match="input.layout: graph input shape .* looks NHWC"):
        get_session(load_plugin(folder), settings=Settings())
    named = {**SEG, "input": {**SEG["input"], "name": "image"}}
    folder = F.write_plugin(tmp_path / "named", F.threshold_segmenter(1), named)
    with pytest.raises(PluginError, match=r"input.name: graph has no input 'image' \(inputs: 'input'\)"):
        get_session(load_plugin(folder), settings=Settings())
    out = {**SEG, "output": {**SEG["output"], "name": "probs"}}
    folder = F.write_plugin(tmp_path / "out", F.threshold_segmenter(1), out)
    with pytest.raises(PluginError, match=r"output.name: graph has no output 'probs' \(outputs: 'output'\)"):
        get_session(load_plugin(folder), settings=Settings())
    typed = {**SEG, "input": {**SEG["input"], "dtype": "uint8"}}
    folder = F.write_plugin(tmp_path / "typed", F.threshold_segmenter(1), typed)
    with pytest.raises(PluginError, match="input.dtype: graph expects float32, the manifest says uint8"):
        get_session(load_plugin(folder), settings=Settings())


def test_discovery_order_duplicates_and_broken(tmp_path, monkeypatch):
    bundled, extra = tmp_path / "bundled", tmp_path / "extra"
    F.write_plugin(bundled / "seg", F.threshold_segmenter(1), SEG)
    F.write_plugin(extra / "seg", F.threshold_segmenter(1), {**SEG, "version": "2.0.0"})
    F.write_plugin(extra / "other", F.threshold_segmenter(1), {**SEG, "id": "other"})
    broken = F.write_plugin(extra / "broken", F.threshold_segmenter(1), {**SEG, "id": "broken"})
    (broken / "plugin.yaml").write_text("id: [unclosed\n")
    (extra / "not-a-plugin").mkdir()
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(bundled))
    found = discover_plugins(Settings(plugin_dirs=[str(extra)]), entry_points=False)
    assert [(p.id, p.version, p.source) for p in found.plugins] == [("seg", "1.0.0", "bundled"),
                                                                       ("other", "1.0.0", "settings")]
    messages = [str(e) for e in found.errors]
    assert len(messages) == 2
    assert any("broken" in m and "malformed YAML" in m for m in messages)
    assert any("id: 'seg' already provided by" in m for m in messages)


def test_user_dir_and_find_plugin(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(tmp_path / "none"))
    user = registry.user_plugins_dir()
    F.write_plugin(user / "seg", F.threshold_segmenter(1), SEG)
    assert find_plugin("seg", Settings()).source == "user"
    assert find_plugin(str(user / "seg"), Settings()).source == "path"
    with pytest.raises(PluginError, match=r"unknown plugin 'nope' \(installed: seg\)"):
        find_plugin("nope", Settings())


def test_entry_points(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(tmp_path / "none"))
    root = tmp_path / "pkgplugins"
    F.write_plugin(root / "seg", F.threshold_segmenter(1), SEG)

    class EP:
        def __init__(self, name, target):
            self.name, self.value, self._t = name, f"pkg:{name}", target

        def load(self):
            if isinstance(self._t, Exception):
                raise self._t
            return self._t

    eps = [EP("good", lambda: [str(root)]), EP("bad", ImportError("no module named pkg"))]
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: eps if group == "workbench.plugins" else [])
    found = discover_plugins(Settings())
    assert [(p.id, p.source) for p in found.plugins] == [("seg", "entry-point")]
    assert len(found.errors) == 1 and "entry point 'bad'" in str(found.errors[0])


def test_entry_point_to_a_namespace_package(tmp_path, monkeypatch):
    """An entry point naming a namespace package (``__file__`` None, plugins in its folders) is a root; it
    was reported as a broken entry point (the module's __file__ was read even when it had a __path__)."""
    import types

    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(tmp_path / "none"))
    root = tmp_path / "nspkg"
    F.write_plugin(root / "seg", F.threshold_segmenter(1), SEG)
    package = types.ModuleType("nspkg")
    package.__file__ = None
    package.__path__ = [str(root)]

    class EP:
        name, value = "ns", "nspkg"

        def load(self):
            return package

    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: [EP()] if group == "workbench.plugins"
                        else [])
    found = discover_plugins(Settings())
    assert [(p.id, p.source) for p in found.plugins] == [("seg", "entry-point")]
    assert found.errors == []


def test_bundled_dir_default_is_repo_plugins(monkeypatch):
    monkeypatch.delenv("WORKBENCH_PLUGINS_DIR", raising=False)
    assert registry.bundled_plugins_dir() == Path(registry.__file__).resolve().parents[2] / "plugins"


def test_repo_bundled_plugins_validate():
    """Every plugin shipped in <repo>/plugins passes the validator (skipped until they exist)."""
    root = Path(registry.__file__).resolve().parents[2] / "plugins"
    folders = [p for p in root.iterdir() if (p / "plugin.yaml").is_file()] if root.is_dir() else []
    if not folders:
        pytest.skip("no bundled plugins yet")
    for folder in folders:
        spec = load_plugin(folder)
        verify_sha256(spec)
        # the declared input dtype is the one the ONNX graph takes (np.dtype(...) alone is always truthy)
        onnx = pytest.importorskip("onnx")
        inputs = onnx.load(str(spec.model_path)).graph.input
        graph_input = next((i for i in inputs if i.name == spec.input.name), inputs[0])
        expected = onnx.helper.tensor_dtype_to_np_dtype(graph_input.type.tensor_type.elem_type)
        assert np.dtype(spec.input.dtype) == expected, (spec.id, spec.input.dtype, expected)
