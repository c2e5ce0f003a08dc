"""Bounds around inference (issue 11, items 4 and 5): a time limit per run, local providers only, numeric
outputs only, rank checks, external data under the checksum, a hash cache that cannot be fooled by mtime,
strict YAML."""
from __future__ import annotations

import hashlib
import os
import time

import hostile_models as H
import numpy as np
import onnx
import onnx_factory as F
import pytest
import yaml
from rel_helpers import assert_user_error, run_cli, run_subprocess

from workbench.core.settings import Settings
from workbench.inference.session import clear_session_cache
from workbench.io import write_png
from workbench.io.settings_file import save_settings

SEG = {"id": "seg", "task": "segmentation",
       "input": {"color": "gray", "resize": "stretch", "size": [16, 16], "intensity": {"scale": 1 / 255}},
       "output": {"classes": [{"name": "background"}, {"name": "thing"}]}}


pytestmark = pytest.mark.usefixtures("fresh_session_cache")


@pytest.fixture
def image(tmp_path):
    return write_png(tmp_path / "img.png", (np.arange(16 * 16).reshape(16, 16) % 256).astype(np.uint8))


def test_endless_loop_is_cancelled_by_the_time_limit(tmp_path, image):
    plugin = F.write_plugin(tmp_path / "loop", H.endless_loop(), SEG)
    config = tmp_path / "cfg"
    save_settings(Settings(inference_time_limit_s=1.5), config / "settings.json")
    t0 = time.monotonic()
    proc = run_subprocess("predict", "-m", plugin, image, "-o", tmp_path / "out", timeout=60,
                          env={"WORKBENCH_CONFIG_DIR": str(config)})
    elapsed = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "time limit of 1.5 s" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert "plugin.yaml" in lines[0] or str(plugin) in lines[0]
    assert elapsed < 45
    assert not (tmp_path / "out" / "img.json").exists()


def test_string_output_is_refused_naming_the_plugin(capsys, tmp_path, image):
    plugin = F.write_plugin(tmp_path / "strings", H.string_output(), SEG)
    code, _, err = run_cli(capsys, "predict", "-m", plugin, image, "-o", tmp_path / "out")
    line = assert_user_error(code, err, "plugin.yaml")
    assert "string" in line


def test_rank2_segmentation_output_is_refused(capsys, tmp_path, image):
    plugin = F.write_plugin(tmp_path / "rank2", H.rank2_output(), SEG)
    code, _, err = run_cli(capsys, "predict", "-m", plugin, image, "-o", tmp_path / "out")
    line = assert_user_error(code, err, "rank 2")
    assert "[1, 2]" in line


def test_nan_output_error_names_the_image(capsys, tmp_path, image):
    nan = F.affine([1, 2, 16, 16], 0.0, float("nan"))
    plugin = F.write_plugin(tmp_path / "nan", nan, {**SEG, "input": {**SEG["input"], "color": "gray"}})
    # the affine model keeps the channel count: feed 1 channel, output 1 channel + threshold
    plugin = F.write_plugin(tmp_path / "nan", F.affine([1, 1, 16, 16], 0.0, float("nan")), SEG)
    code, _, err = run_cli(capsys, "predict", "-m", plugin, image, "-o", tmp_path / "out")
    assert code == 2 and "Traceback" not in err
    assert "NaN" in err and "seg" in err


def test_remote_provider_is_never_asked_for(tmp_path):
    from workbench.inference.session import resolve_providers

    assert resolve_providers(["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    import onnxruntime

    if "AzureExecutionProvider" in onnxruntime.get_available_providers():
        assert resolve_providers(["AzureExecutionProvider"], extra=["AzureExecutionProvider"]) == \
            ["AzureExecutionProvider", "CPUExecutionProvider"]


def _external_plugin(tmp_path, weights_scale=1.0):
    """A small conv segmenter whose weights live in an external-data file weights.bin."""
    proto = F.conv_net(1, [8], 2, size=[16, 16])
    folder = tmp_path / "ext"
    folder.mkdir(exist_ok=True)
    onnx.save_model(proto, folder / "model.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=64)
    sha = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    manifest = {"schema_version": 1, "version": "1", "name": "ext", **SEG, "id": "ext",
                "model": {"file": "model.onnx", "sha256": sha}}
    (folder / "plugin.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return folder, manifest


def test_external_data_must_be_listed_and_match(capsys, tmp_path, image):
    from workbench.inference.guards import external_data_files

    folder, manifest = _external_plugin(tmp_path)
    assert external_data_files(folder / "model.onnx") == ["weights.bin"]
    # not listed: refused, and the message gives the line to add
    code, _, err = run_cli(capsys, "predict", "-m", folder, image, "-o", tmp_path / "out")
    line = assert_user_error(code, err, "plugin.yaml", "model.external_data", "weights.bin")
    digest = hashlib.sha256((folder / "weights.bin").read_bytes()).hexdigest()
    assert digest in line
    manifest["model"]["external_data"] = {"weights.bin": digest}
    (folder / "plugin.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    clear_session_cache()
    code, _, err = run_cli(capsys, "predict", "-m", folder, image, "-o", tmp_path / "out")
    assert code == 0, err
    # swap the weights (same size, same mtime restored): refused
    st = os.stat(folder / "weights.bin")
    data = bytearray((folder / "weights.bin").read_bytes())
    data[0] ^= 0xFF
    (folder / "weights.bin").write_bytes(bytes(data))
    os.utime(folder / "weights.bin", ns=(st.st_atime_ns, st.st_mtime_ns))
    clear_session_cache()
    code, _, err = run_cli(capsys, "predict", "-m", folder, image, "-o", tmp_path / "out2")
    assert_user_error(code, err, "weights.bin", "changed or corrupted")


def test_hash_cache_is_not_fooled_by_a_restored_mtime(tmp_path):
    from workbench.inference.checksum import file_sha256

    path = tmp_path / "m.onnx"
    path.write_bytes(b"a" * 100)
    first = file_sha256(path)
    st = os.stat(path)
    with open(path, "r+b") as fh:  # same inode, same size
        fh.write(b"b")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_sha256(path) != first


@pytest.mark.parametrize("text, needle", [
    ("schema_version: 1\nid: a\nid: b\n", "duplicate key 'id'"),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
    ("a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n", "nested deeper"),
])
def test_yaml_duplicates_and_depth_are_refused(capsys, tmp_path, text, needle):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "plugin.yaml").write_text(text, encoding="utf-8")
    code, _, err = run_cli(capsys, "models", "check", folder)
    line = assert_user_error(code, err, "plugin.yaml")
    assert needle in line


def test_fifo_as_plugin_sample_or_image_does_not_hang(tmp_path, image):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    proc = run_subprocess("info", fifo, timeout=30)
    assert proc.returncode == 2 and "FIFO" in proc.stderr and str(fifo) in proc.stderr, proc.stderr
    plugin = F.write_plugin(tmp_path / "s", F.threshold_segmenter(1, size=[16, 16]), {**SEG, "sample": "pipe.png"})
    os.mkfifo(plugin / "pipe.png")
    proc = run_subprocess("models", "check", plugin, timeout=60)
    assert proc.returncode == 2 and "FIFO" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_models_import_copies_external_data_under_the_checksum(capsys, tmp_path, image):
    src = tmp_path / "src"
    src.mkdir()
    onnx.save_model(F.conv_net(1, [8], 2, size=[16, 16]), src / "model.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="w.bin", size_threshold=64)
    code, _, err = run_cli(capsys, "models", "import", src / "model.onnx", "-o", tmp_path / "plugin")
    assert code == 0, err
    manifest = yaml.safe_load((tmp_path / "plugin" / "plugin.yaml").read_text())
    digest = hashlib.sha256((src / "w.bin").read_bytes()).hexdigest()
    assert manifest["model"]["external_data"] == {"w.bin": digest}
    clear_session_cache()
    code, _, err = run_cli(capsys, "predict", "-m", tmp_path / "plugin", image, "-o", tmp_path / "out")
    assert code == 0, err
