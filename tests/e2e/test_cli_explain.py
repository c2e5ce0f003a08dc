"""End to end: `workbench explain` on tiny generated plugins and PNG files -- the three files, their
geometry and contents, and one-line errors with exit status 2."""
from __future__ import annotations

import json

import cv2
import numpy as np
import onnx_factory as F
import pytest
import tifffile
from explain_models import region_classifier

from workbench.cli import main

pytestmark = pytest.mark.usefixtures("fresh_session_cache")


@pytest.fixture
def cls_plugin(tmp_path):
    manifest = {"id": "roi", "task": "classification",
                "input": {"color": "gray", "resize": "stretch", "size": [32, 32], "intensity": {"scale": 1 / 255}},
                "output": {"activation": "softmax", "labels": ["bright", "dark"]}}
    return F.write_plugin(tmp_path / "plugins" / "roi", region_classifier((8, 16, 16, 24), size=(32, 32)), manifest)


@pytest.fixture
def seg_plugin(tmp_path):
    manifest = {"id": "blobs", "task": "segmentation",
                "input": {"color": "gray", "resize": "none", "intensity": {"scale": 1 / 255}},
                "output": {"classes": [{"name": "background"}, {"name": "blob", "color": "#ff0000"}]}}
    return F.write_plugin(tmp_path / "plugins" / "blobs", F.threshold_segmenter(1), manifest)


def _scan(path, h=48, w=80):
    img = np.zeros((h, w), np.uint8)
    img[12:24, 40:60] = 230  # where the classifier looks (rows 8:16, cols 16:24 of its 32x32 input)
    img[30:40, 5:15] = 230  # a distractor it never reads
    cv2.imwrite(str(path), img)
    return path


@pytest.mark.parametrize("method", ["occlusion", "rise"])
def test_explain_classifier_writes_tiff_png_json(tmp_path, cls_plugin, method, capsys):
    img = _scan(tmp_path / "Doe^John_scan.png")
    out = tmp_path / "out"
    args = ["explain", "-m", str(cls_plugin), str(img), "--method", method, "-o", str(out)]
    args += ["--window", "4", "--stride", "2", "--baseline", "mean"] if method == "occlusion" else \
        ["--masks", "120", "--seed", "3", "--baseline", "mean"]
    assert main(args) == 0
    stem = "Doe^John_scan"
    data = json.loads((out / f"{stem}.json").read_text())
    assert data["method"] == method and data["top_class"]["label"] == "bright"
    assert data["plugin"]["id"] == "roi" and len(data["plugin"]["sha256"]) == 64
    assert data["target"]["label"] == "bright"
    assert 12 <= data["peak"]["y"] < 24 and 40 <= data["peak"]["x"] < 60
    runs = data["cost"]["model_runs"]
    assert runs == 1 + (120 if method == "rise" else data["parameters"]["positions"])
    assert data["cost"]["ms"] > 0 and data["cost"]["multiple_of_one_run"] > 0
    assert data["files"] == {"tiff": f"{stem}_saliency.tiff", "png": f"{stem}_saliency.png"}
    with tifffile.TiffFile(out / f"{stem}_saliency.tiff") as tif:
        sal = tif.asarray()
        description = " ".join(str(tag.value) for tag in tif.pages[0].tags.values())
    assert sal.dtype == np.float32 and sal.shape == (48, 80)
    assert np.unravel_index(np.argmax(sal), sal.shape)[0] in range(12, 24)
    assert "Doe" not in description and str(tmp_path) not in description  # no source path in the file
    assert str(tmp_path) not in json.dumps(data)  # file names only, never the source path
    png = cv2.imread(str(out / f"{stem}_saliency.png"))
    assert png.shape[1] >= 80 and png.shape[0] > 48  # the overlay plus its legend strip
    assert "peak at" in capsys.readouterr().out


def test_explain_segmenter_entropy_and_class_choice(tmp_path, seg_plugin):
    img = np.zeros((20, 30), np.uint8)
    img[:, 15:] = 255
    img[5:10, 5:25] = 128  # ~0.5 after scaling: the threshold segmenter's logits are ~0 there
    cv2.imwrite(str(tmp_path / "s.png"), img)
    assert main(["explain", "-m", str(seg_plugin), str(tmp_path / "s.png"), "-o", str(tmp_path / "o"),
                 "--report"]) == 0
    html = (tmp_path / "o" / "s_saliency_report.html").read_text()
    assert "Uncertainty report" in html and "not a calibrated probability" in html
    assert (tmp_path / "o" / "s_saliency_report.pdf").read_bytes().startswith(b"%PDF")
    data = json.loads((tmp_path / "o" / "s.json").read_text())
    assert data["method"] == "entropy" and data["cost"]["model_runs"] == 1
    ent = tifffile.imread(tmp_path / "o" / "s_saliency.tiff")
    assert ent[5:10, 5:25].min() > 0.9 and ent[12:, :].max() < 0.2
    assert {r["name"] for r in data["summary"]} == {"background", "blob"}


@pytest.mark.parametrize("extra,message", [
    (["--method", "occlusion"], "--method occlusion: blobs is a segmentation plugin; use entropy, margin or tta"),
    (["--class", "blob"], "--class blob: a class is chosen only for classification plugins"),
])
def test_explain_errors_segmenter(tmp_path, seg_plugin, capsys, extra, message):
    img = _scan(tmp_path / "a.png")
    assert main(["explain", "-m", str(seg_plugin), str(img), "-o", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"workbench: error: {message}"]


def test_explain_unknown_class_is_one_line(tmp_path, cls_plugin, capsys):
    img = _scan(tmp_path / "a.png")
    assert main(["explain", "-m", str(cls_plugin), str(img), "--class", "cat", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["workbench: error: --class cat: not a class of roi (classes: bright, dark)"]
    assert not (tmp_path / "o").exists()


def test_explain_gradcam_on_a_plugin_that_declares_it(tmp_path, cls_plugin, capsys):
    import io

    from explain_models import cam_classifier

    buf = io.BytesIO()
    np.save(buf, np.eye(2, dtype=np.float32) * 4.0)
    manifest = {"id": "cam", "task": "classification",
                "input": {"color": "gray", "resize": "stretch", "size": [32, 32], "intensity": {"scale": 1 / 255}},
                "output": {"name": "logits", "activation": "softmax", "labels": ["left", "right"]},
                "explain": {"feature_map": "features", "class_weights": "w.npy"}}
    cam = F.write_plugin(tmp_path / "cam", cam_classifier((4, 12, 4, 12), (18, 28, 20, 30)), manifest,
                         files={"w.npy": buf.getvalue()})
    img = np.zeros((64, 48), np.uint8)
    img[8:24, 6:18] = 250
    cv2.imwrite(str(tmp_path / "c.png"), img)
    out = tmp_path / "o"
    assert main(["explain", "-m", str(cam), str(tmp_path / "c.png"), "--method", "gradcam", "-o", str(out)]) == 0
    data = json.loads((out / "c.json").read_text())
    assert data["method"] == "gradcam" and data["cost"]["model_runs"] == 1
    assert 8 <= data["peak"]["y"] < 24 and 6 <= data["peak"]["x"] < 18
    # a plugin without the declaration: one line, exit 2
    assert main(["explain", "-m", str(cls_plugin), str(tmp_path / "c.png"), "--method", "gradcam",
                 "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith("declares no feature map and class weights (explain: in "
                                                    "plugin.yaml); use occlusion or rise")
