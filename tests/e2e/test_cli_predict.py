"""End to end: `workbench predict / batch / models / doctor` on tiny generated plugins and PNG files."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import onnx_factory as F
import pytest
import yaml

from workbench.cli import main

SEG = {"id": "blobs", "task": "segmentation",
       "input": {"color": "gray", "resize": "stretch", "size": [64, 64], "intensity": {"scale": 1 / 255}},
       "output": {"classes": [{"name": "background"}, {"name": "blob", "color": "#ff0000"}]}}


pytestmark = pytest.mark.usefixtures("fresh_session_cache")


@pytest.fixture
def seg_plugin(tmp_path):
    sample = np.zeros((64, 64), np.uint8)
    sample[10:30, 10:30] = 255
    return F.write_plugin(tmp_path / "plugins" / "blobs", F.threshold_segmenter(1), SEG, files={"sample.png": sample})


def _png(path, h=48, w=80, box=(8, 24, 16, 56), value=220, color=False):
    img = np.zeros((h, w), np.uint8)
    img[box[0]:box[1], box[2]:box[3]] = value
    if color:
        img = np.dstack([img, img // 2, img // 3])
        cv2.imwrite(str(path), img[..., ::-1])
    else:
        cv2.imwrite(str(path), img)
    return path


def test_predict_segmentation_writes_json_mask_overlay(tmp_path, seg_plugin, capsys):
    img = _png(tmp_path / "scan.png")
    assert main(["predict", "-m", str(seg_plugin), str(img), "-o", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "scan.json").read_text())
    assert data["task"] == "segmentation" and data["provider"] == "CPUExecutionProvider"
    assert data["plugin"]["id"] == "blobs" and len(data["plugin"]["sha256"]) == 64
    assert data["image"]["shape"] == [48, 80]
    assert set(data["timing_ms"]) == {"preprocess", "inference", "postprocess"}
    assert data["segmentation"]["mask"] == "scan_mask.png"
    blob = data["segmentation"]["classes"][0]
    assert blob["name"] == "blob" and blob["value"] == 1 and abs(blob["pixels"] - 16 * 40) <= 60
    mask = cv2.imread(str(tmp_path / "out" / "scan_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (48, 80) and mask.dtype == np.uint8 and mask[16, 36] == 1 and mask[40, 5] == 0
    overlay = cv2.imread(str(tmp_path / "out" / "scan_overlay.png"))
    assert overlay.shape == (48, 80, 3)
    assert "scan.png: blob:" in capsys.readouterr().out


def test_predict_by_installed_id_and_restoration_bit_depth(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(tmp_path / "plugins"))
    manifest = {"id": "brighten", "task": "restoration",
                "input": {"color": "rgb", "resize": "tile", "tile": {"size": 32, "overlap": 8},
                          "intensity": {"scale": 1 / 255}}, "output": {"range": [0, 1]}}
    F.write_plugin(tmp_path / "plugins" / "brighten", F.affine(["N", 3, "H", "W"], 1.0, 0.1), manifest)
    png8 = _png(tmp_path / "rgb.png", color=True)
    png16 = tmp_path / "deep.tif"
    import tifffile

    tifffile.imwrite(png16, np.full((40, 50), 30000, np.uint16))
    assert main(["predict", "-m", "brighten", str(png8), str(png16), "-o", str(tmp_path / "out")]) == 0
    out8 = cv2.imread(str(tmp_path / "out" / "rgb_restored.png"), cv2.IMREAD_UNCHANGED)
    assert out8.dtype == np.uint8 and out8.shape == (48, 80, 3)
    assert int(out8[0, 0, 0]) == round(0.1 * 255)  # black + 0.1 of the range
    out16 = tifffile.imread(tmp_path / "out" / "deep_restored.tif")
    assert out16.dtype == np.uint16 and out16.shape == (40, 50)
    # the plugin's 1/255 scale saturates 30000 at the top of its output range [0, 1], i.e. raw 255: the
    # declared intensity chain is inverted exactly, in the input's dtype
    assert int(out16[0, 0]) == 255
    data = json.loads((tmp_path / "out" / "deep.json").read_text())
    assert data["restoration"]["output"] == "deep_restored.tif"


def test_batch_with_summary_csv_and_a_bad_file(tmp_path, seg_plugin, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        _png(folder / f"img{i}.png", box=(8, 24, 16 + i, 56))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (folder / "notes.txt").write_text("ignored")
    code = main(["batch", "-m", str(seg_plugin), str(folder), "-o", str(tmp_path / "out")])
    assert code == 2  # one image failed; the others are done
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    assert [r["image"] for r in rows] == ["broken.png"] + [f"img{i}.png" for i in range(5)]
    assert rows[0]["status"] == "error" and rows[0]["error"]
    assert all(r["status"] == "ok" and r["mask"] == r["image"].replace(".png", "_mask.png") for r in rows[1:])
    assert all((tmp_path / "out" / f"img{i}.json").is_file() for i in range(5))
    err = capsys.readouterr().err
    assert "broken.png" in err and "Traceback" not in err


def test_models_list_and_check(tmp_path, seg_plugin, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(tmp_path / "plugins"))
    bad = F.write_plugin(tmp_path / "plugins" / "bad", F.threshold_segmenter(1), {**SEG, "id": "bad"})
    (bad / "plugin.yaml").write_text("schema_version: 1\nid: bad\n")
    assert main(["models", "list"]) == 0
    out = capsys.readouterr()
    assert "blobs" in out.out and "segmentation" in out.out
    assert "bad/plugin.yaml" in out.err and "required field is missing" in out.err
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["id"] for p in listed["plugins"]] == ["blobs"] and len(listed["errors"]) == 1
    assert main(["models", "check", str(seg_plugin)]) == 0
    out = capsys.readouterr().out
    assert "sha256    ok" in out and "graph     ok" in out and "smoke run ok  sample.png: blob:" in out


@pytest.mark.parametrize("breakage, message", [
    ("sha", "model.sha256: model.onnx has sha256"),
    ("outside", "model.file: '../x.onnx' resolves outside the plugin folder"),
    ("missing", "model.file: 'model.onnx' not found"),
    ("yaml", "malformed YAML"),
    ("size", "input.size: graph expects [64, 64]"),
])
def test_bad_plugins_exit_2_with_one_line(tmp_path, capsys, breakage, message):
    folder = F.write_plugin(tmp_path / "p", F.threshold_segmenter(1, size=[64, 64]), SEG)
    manifest = yaml.safe_load((folder / "plugin.yaml").read_text())
    if breakage == "sha":
        manifest["model"]["sha256"] = "f" * 64
    elif breakage == "outside":
        (tmp_path / "x.onnx").write_bytes((folder / "model.onnx").read_bytes())
        manifest["model"]["file"] = "../x.onnx"
    elif breakage == "missing":
        (folder / "model.onnx").unlink()
    elif breakage == "size":
        manifest["input"]["size"] = [32, 48]
    text = yaml.safe_dump(manifest) if breakage != "yaml" else "id: [\n"
    (folder / "plugin.yaml").write_text(text)
    img = _png(tmp_path / "a.png")
    for argv in (["predict", "-m", str(folder), str(img), "-o", str(tmp_path / "o")], ["models", "check", str(folder)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("workbench: error: ") and message in err[0], err


def test_bad_runs_exit_2(tmp_path, capsys):
    # an Inf pixel makes the identity model output Inf (the warm-up on zeros passed): refused, one line
    folder = F.write_plugin(tmp_path / "p", F.affine(["N", 1, "H", "W"], 1.0, 0.0),
                            {**SEG, "input": {"color": "gray", "resize": "none"}})
    npy = tmp_path / "inf.npy"
    np.save(npy, np.array([[np.inf, 1.0]], np.float32))
    assert main(["predict", "-m", str(folder), str(npy), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "contains NaN or Inf" in err[0]
    assert main(["predict", "-m", "no-such-plugin", str(npy), "-o", str(tmp_path / "o")]) == 2
    assert "unknown plugin 'no-such-plugin'" in capsys.readouterr().err
    assert main(["predict", "-m", str(folder), str(npy), "-o", str(tmp_path / "o"), "--report"]) == 2
    assert "contains NaN or Inf" in capsys.readouterr().err  # a failed image gets no report
    assert not list((tmp_path / "o").glob("*_report.*"))
    assert main(["predict", "-m", str(folder), str(npy), "-o", str(tmp_path / "o"), "--provider", "cuda"]) == 2
    assert "CUDAExecutionProvider is not available" in capsys.readouterr().err


def test_doctor(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime packages : onnxruntime" in out and "smoke run            : CPUExecutionProvider: ok" in out
    assert main(["doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []
