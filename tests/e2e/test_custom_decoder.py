"""Custom decoders end to end (issue 21): the worked example of docs/PLUGINS.md through `workbench models
trust` and `workbench predict`, raw candidates vs finished results, trust by content hash, and every way a
decoder can fail (one line, exit 2; in batch the other images still done)."""
from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx_factory as F
import pytest
import yaml

from workbench.cli import main
from workbench.core.settings import load_settings, settings_path
from workbench.inference.session import clear_session_cache

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "anchor-free-detector"
EXPECTED = [("small", [16.0, 64.0, 32.0, 80.0]), ("large", [64.0, 16.0, 96.0, 48.0])]


pytestmark = pytest.mark.usefixtures("fresh_session_cache")


def _build_example(dest: Path) -> Path:
    """Copy the shipped example and run its build script (model.onnx, sample.png, sha256 in plugin.yaml)."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("model.onnx", "sample.png", "__pycache__"))
    mod_spec = importlib.util.spec_from_file_location("afd_build", dest / "build_model.py")
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    module.main(dest)
    return dest


@pytest.fixture
def example(tmp_path):
    return _build_example(tmp_path / "anchor-free")


def _detections(out_dir: Path, stem: str = "sample") -> list[tuple[str, list[float]]]:
    data = json.loads((out_dir / f"{stem}.json").read_text())
    return [(d["label"], [round(v, 3) for v in d["box"]]) for d in data["detection"]["detections"]]


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _set_decoder(folder: Path, decoder: str) -> None:
    manifest = folder / "plugin.yaml"
    data = yaml.safe_load(manifest.read_text())
    data["output"]["decoder"] = decoder
    manifest.write_text(yaml.safe_dump(data, sort_keys=False))


def test_worked_example_end_to_end(example, tmp_path, capsys):
    out = tmp_path / "out"
    # untrusted: refused before any session, naming the command and the settings file
    assert main(["predict", "-m", str(example), str(example / "sample.png"), "-o", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"workbench models trust {example}" in line and str(settings_path()) in line
    assert "plugin.yaml: output.decoder: decoder:decode is code shipped with the plugin" in line
    assert not out.exists()

    assert main(["models", "trust", str(example)]) == 0
    said = capsys.readouterr().out
    assert "decoder.py" in said and "will run with your rights" in said and str(settings_path()) in said
    record = load_settings().trusted_code[0]
    assert record.id == "anchor-free-example" and record.folder == str(example)
    assert {"decoder.py", "plugin.yaml", "model.onnx"} <= set(record.files)

    assert main(["predict", "-m", str(example), str(example / "sample.png"), "-o", str(out)]) == 0
    assert _detections(out) == EXPECTED  # letterboxed 0.5x and padded: mapped back to image pixels exactly
    assert (out / "sample_overlay.png").is_file()
    assert main(["models", "check", str(example)]) == 0
    assert "smoke run ok  sample.png: 2 detections" in capsys.readouterr().out


def test_raw_candidates_equal_finished_results(example, tmp_path):
    # the same model, decoded once by the engine's pipeline (DetectionCandidates) and once by the decoder
    # itself (threshold + NMS + boxes_to_source in decoder.py): identical detections
    image = tmp_path / "many.png"
    img = np.zeros((96, 128, 3), np.uint8)
    img[16:48, 64:96, 0] = 255    # large, aligned with a stride-16 cell
    img[0:32, 0:32, 0] = 150      # large, weaker (p = 0.59 > 0.5)
    img[64:96, 96:128, 0] = 100   # too weak: below score_threshold
    img[60:84, 20:44, 1] = 255    # small, not aligned: partial cells with scores around the threshold
    img[40:56, 36:52, 1] = 200
    cv2.imwrite(str(image), img[..., ::-1])
    assert main(["models", "trust", str(example)]) == 0
    assert main(["predict", "-m", str(example), str(image), "-o", str(tmp_path / "raw")]) == 0
    _set_decoder(example, "decoder:decode_finished")
    assert main(["models", "trust", str(example)]) == 0  # plugin.yaml changed: trust again
    clear_session_cache()
    assert main(["predict", "-m", str(example), str(image), "-o", str(tmp_path / "done")]) == 0
    raw = json.loads((tmp_path / "raw" / "many.json").read_text())["detection"]["detections"]
    done = json.loads((tmp_path / "done" / "many.json").read_text())["detection"]["detections"]
    assert len(raw) >= 3 and {d["label"] for d in raw} == {"large", "small"}
    assert raw == done


def test_raw_candidates_equal_builtin_yolov8(tmp_path):
    # a custom decoder handing yolov8 rows to the engine as candidates == the built-in yolov8 format
    cand = np.array([[10, 10, 8, 8, 0.9, 0.05],     # a, kept
                     [11, 11, 8, 8, 0.8, 0.10],     # a, suppressed by the first (IoU 0.62)
                     [11, 11, 8, 8, 0.10, 0.70],    # b at the same place: class-aware NMS keeps it
                     [40, 30, 20, 10, 0.2, 0.3],    # b, 0.3 >= score_threshold 0.25
                     [50, 50, 6, 6, 0.1, 0.2]],     # below threshold
                    np.float32)
    rows = cand.T[np.newaxis].copy()  # [1, 4+C, N]
    code = ("from workbench.inference.decoders import DetectionCandidates\n"
            "def decode(outputs, ctx):\n"
            "    r = outputs[ctx.params['output']][0].T\n"
            "    return DetectionCandidates(boxes=r[:, :4], scores=r[:, 4:], box_format='cxcywh')\n")
    base = {"task": "detection", "input": {"color": "rgb", "size": [64, 64], "resize": "letterbox"}}
    builtin = F.write_plugin(tmp_path / "builtin", F.constant_output([1, 3, 64, 64], {"845": rows}),
                             {**base, "id": "builtin", "output": {"format": "yolov8", "labels": ["a", "b"]}})
    custom = F.write_plugin(tmp_path / "custom", F.constant_output([1, 3, 64, 64], {"845": rows}),
                            {**base, "id": "custom", "output": {"decoder": "dec:decode", "labels": ["a", "b"],
                                                                "params": {"output": "845"}}},
                            files={"dec.py": code})
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.zeros((128, 128, 3), np.uint8))  # 2x: boxes scaled back
    assert main(["models", "trust", str(custom)]) == 0
    assert main(["predict", "-m", str(builtin), str(img), "-o", str(tmp_path / "b")]) == 0
    assert main(["predict", "-m", str(custom), str(img), "-o", str(tmp_path / "c")]) == 0
    b = json.loads((tmp_path / "b" / "x.json").read_text())["detection"]["detections"]
    c = json.loads((tmp_path / "c" / "x.json").read_text())["detection"]["detections"]
    assert [d["label"] for d in b] == ["a", "b", "b"] and b == c


def test_trust_is_keyed_by_content_and_revoked_when_code_changes(example, tmp_path, capsys):
    img = str(example / "sample.png")
    assert main(["models", "trust", str(example)]) == 0
    assert main(["predict", "-m", str(example), img, "-o", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    decoder = example / "decoder.py"
    decoder.write_text(decoder.read_text() + "\nimport os  # edited after trusting\n")
    clear_session_cache()
    assert main(["predict", "-m", str(example), img, "-o", str(tmp_path / "b")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "its files changed since you trusted it" in line and f"workbench models trust {example}" in line
    # a new .py file next to the decoder changes the content too (it could be imported)
    assert main(["models", "trust", str(example)]) == 0
    (example / "helper.py").write_text("X = 1\n")
    assert main(["predict", "-m", str(example), img, "-o", str(tmp_path / "c")]) == 2
    assert main(["models", "trust", str(example)]) == 0
    assert len(load_settings().trusted_code) == 1  # the folder's older record was replaced
    assert main(["predict", "-m", str(example), img, "-o", str(tmp_path / "d")]) == 0
    # another folder claiming the same id with other code is not trusted (issue 11: not keyed by id)
    impostor = tmp_path / "impostor"
    shutil.copytree(example, impostor)
    (impostor / "decoder.py").write_text("def decode(outputs, ctx):\n    return []\n")
    capsys.readouterr()
    assert main(["predict", "-m", str(impostor), img, "-o", str(tmp_path / "e")]) == 2
    assert "it runs only after you trust the plugin" in _one_error_line(capsys.readouterr().err)
    # untrust withdraws it
    assert main(["models", "untrust", str(example)]) == 0
    assert "trust withdrawn" in capsys.readouterr().out and load_settings().trusted_code == []
    clear_session_cache()
    assert main(["predict", "-m", str(example), img, "-o", str(tmp_path / "f")]) == 2


def test_trust_refuses_plugins_without_code_and_bad_models(tmp_path, example, capsys):
    seg = {"id": "plain", "task": "segmentation", "input": {"color": "gray", "size": [8, 8]}}
    plain = F.write_plugin(tmp_path / "plain", F.threshold_segmenter(1), seg)
    assert main(["models", "trust", str(plain)]) == 2
    assert "has no output.decoder" in _one_error_line(capsys.readouterr().err)
    (example / "model.onnx").write_bytes((example / "model.onnx").read_bytes() + b"\0")
    assert main(["models", "trust", str(example)]) == 2
    assert "model.sha256" in _one_error_line(capsys.readouterr().err)
    assert load_settings().trusted_code == []


DET_FAILURES = {
    "raise": ("def decode(outputs, ctx):\n    return 1 / 0\n", "raised ZeroDivisionError: division by zero"),
    "none": ("def decode(outputs, ctx):\n    return None\n",
             "returned None; expected a list of Detection or a DetectionCandidates"),
    "dict": ("def decode(outputs, ctx):\n    return {'boxes': []}\n",
             "returned dict; expected a list of Detection or a DetectionCandidates"),
    "array": ("import numpy as np\ndef decode(outputs, ctx):\n    return np.zeros((3, 3))\n",
              "returned ndarray (3, 3) float64; expected a list of Detection"),
    "candidates-shape": ("import numpy as np\nfrom workbench.inference.results import DetectionCandidates\n"
                         "def decode(outputs, ctx):\n"
                         "    return DetectionCandidates(boxes=np.zeros((5, 3)), scores=np.ones(5))\n",
                         "returned DetectionCandidates.boxes ndarray (5, 3) float32; expected (N, 4)"),
    "sys-exit": ("import sys\ndef decode(outputs, ctx):\n    sys.exit(3)\n", "raised SystemExit: 3"),
}


@pytest.mark.parametrize("mode", list(DET_FAILURES))
def test_decoder_failures_exit_2_with_one_line(example, tmp_path, capsys, mode):
    code, problem = DET_FAILURES[mode]
    (example / "decoder.py").write_text(code)
    assert main(["models", "trust", str(example)]) == 0
    capsys.readouterr()
    assert main(["predict", "-m", str(example), str(example / "sample.png"), "-o", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("workbench: error: ") and "plugin.yaml: output.decoder" in line
    assert "output.decoder decoder:decode of plugin anchor-free-example: " + problem in line
    assert not (tmp_path / "o" / "sample.json").exists()


SEG_FAILURES = {
    "mask-shape": ("import numpy as np\ndef decode(outputs, ctx):\n    return np.zeros((3, 3), np.uint8)\n",
                   "returned ndarray (3, 3) uint8; expected an integer mask of shape (20, 30)"),
    "mask-float": ("import numpy as np\ndef decode(outputs, ctx):\n    return np.zeros(ctx.source_hw)\n",
                   "returned ndarray (20, 30) float64; a mask holds integer class values, not floats"),
    "ctx-error": ("def decode(outputs, ctx):\n    raise ctx.error('output 845 has 7 channels')\n",
                  "output 845 has 7 channels"),
}


@pytest.mark.parametrize("mode", list(SEG_FAILURES))
def test_segmentation_decoder_wrong_returns(tmp_path, capsys, mode):
    code, problem = SEG_FAILURES[mode]
    seg = {"id": "seg-custom", "task": "segmentation", "input": {"color": "gray", "size": [8, 8]},
           "output": {"decoder": "dec:decode", "name": 845}}
    folder = F.write_plugin(tmp_path / "seg", F.identity([1, 1, 8, 8], name_out="845"), seg,
                            files={"dec.py": code})
    img = tmp_path / "g.png"
    cv2.imwrite(str(img), np.zeros((20, 30), np.uint8))
    assert main(["models", "trust", str(folder)]) == 0
    capsys.readouterr()
    assert main(["predict", "-m", str(folder), str(img), "-o", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "output.decoder dec:decode of plugin seg-custom: " + problem in line


def test_batch_other_images_unaffected(example, tmp_path, capsys):
    code = (EXAMPLE / "decoder.py").read_text() + (
        "\n_raw = decode\n\ndef decode(outputs, ctx):\n"
        "    if 'bad' in str(ctx.image.path):\n        raise RuntimeError('cannot decode this one')\n"
        "    return _raw(outputs, ctx)\n")
    (example / "decoder.py").write_text(code)
    assert main(["models", "trust", str(example)]) == 0
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "bad.png", "c.png"):
        shutil.copy(example / "sample.png", src / name)
    capsys.readouterr()
    assert main(["batch", "-m", str(example), str(src), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    failed = [line for line in err.splitlines() if line.startswith("workbench: error:")]
    assert len(failed) == 1 and "bad.png" in failed[0]
    assert "output.decoder decoder:decode of plugin anchor-free-example: raised RuntimeError: cannot decode" \
           in failed[0]
    rows = {r["image"]: r for r in csv.DictReader((tmp_path / "out" / "summary.csv").open())}
    assert rows["bad.png"]["status"] == "error" and rows["a.png"]["status"] == rows["c.png"]["status"] == "ok"
    assert _detections(tmp_path / "out", "a") == _detections(tmp_path / "out", "c") == EXPECTED
    assert not (tmp_path / "out" / "bad.json").exists()


def test_installed_plugin_is_trusted_by_id_command(tmp_path, monkeypatch, capsys):
    root = tmp_path / "plugins"
    _build_example(root / "anchor-free")
    monkeypatch.setenv("WORKBENCH_PLUGINS_DIR", str(root))
    img = str(root / "anchor-free" / "sample.png")
    assert main(["predict", "-m", "anchor-free-example", img, "-o", str(tmp_path / "o")]) == 2
    assert "run `workbench models trust anchor-free-example`" in _one_error_line(capsys.readouterr().err)
    assert main(["models", "trust", "anchor-free-example"]) == 0
    assert main(["predict", "-m", "anchor-free-example", img, "-o", str(tmp_path / "o")]) == 0
    assert _detections(tmp_path / "o") == EXPECTED
