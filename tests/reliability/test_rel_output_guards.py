"""No output path may destroy an input, a session or a source image (issue 11, item 3); batch never reads
its own outputs. Each refusal: exit 2, one line naming the path, the file byte-identical afterwards."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import onnx_factory as F
import pytest
import skimage
from rel_helpers import assert_user_error, digest, fixtures, run_cli

from workbench.core.document import Document
from workbench.io import read_image, write_png
from workbench.session import save_session

COINS = Path(skimage.__file__).parent / "data" / "coins.png"
SEG = {"id": "blobs", "task": "segmentation",
       "input": {"color": "gray", "resize": "stretch", "size": [32, 32], "intensity": {"scale": 1 / 255}},
       "output": {"classes": [{"name": "background"}, {"name": "blob", "color": "#ff0000"}]}}


pytestmark = pytest.mark.usefixtures("fresh_session_cache")


@pytest.fixture
def img(tmp_path):
    return Path(shutil.copy(COINS, tmp_path / "coins.png"))


@pytest.fixture
def plugin(tmp_path):
    return F.write_plugin(tmp_path / "plugins" / "blobs", F.threshold_segmenter(1), SEG)


@pytest.fixture
def dicom_session(tmp_path):
    paths, _ = fixtures.write_dicom_series(tmp_path / "ct", n=3, rows=16, cols=12)
    doc = Document(read_image(tmp_path / "ct"))
    with doc.labels.edit("Brush") as e:
        e.assign((slice(0, 2), slice(2, 8), slice(2, 6)), 1)
    return save_session(doc, tmp_path / "ct.wbsession"), paths


def test_segment_refuses_to_overwrite_its_image(capsys, img):
    before = digest(img)
    code, _, err = run_cli(capsys, "segment", img, "--threshold", "otsu", "-o", img)
    assert_user_error(code, err, img, "--force")
    assert digest(img) == before
    # through a symlink too
    link = img.with_name("link.png")
    link.symlink_to(img)
    code, _, err = run_cli(capsys, "segment", img, "--threshold", "otsu", "-o", link)
    assert_user_error(code, err, link)
    assert digest(img) == before
    # --force: the user asked for it
    code, _, err = run_cli(capsys, "segment", img, "--threshold", "otsu", "-o", img, "--force")
    assert code == 0, err and digest(img) != before


def test_measure_csv_refuses_image_and_mask(capsys, tmp_path, img):
    mask = tmp_path / "mask.png"
    assert run_cli(capsys, "segment", img, "--threshold", "otsu", "-o", mask)[0] == 0
    for target in (img, mask):
        before = digest(target)
        code, _, err = run_cli(capsys, "measure", img, mask, "--csv", target)
        assert_user_error(code, err, target, "--csv")
        assert digest(target) == before


def test_export_refuses_source_dicom_session_and_its_own_session(capsys, tmp_path, dicom_session):
    session, paths = dicom_session
    for option, target in (("--mask", paths[0]), ("--measurements", session), ("--mask", session)):
        before = digest(target)
        code, _, err = run_cli(capsys, "export", session, option, target)
        assert_user_error(code, err, target, option)
        assert digest(target) == before
    # another existing session is protected as well, and a new file inside the DICOM folder is refused
    other = shutil.copy(session, tmp_path / "other.wbsession")
    code, _, err = run_cli(capsys, "export", session, "--measurements", other)
    assert_user_error(code, err, other)
    code, _, err = run_cli(capsys, "export", session, "--mask", tmp_path / "ct" / "seg.dcm")
    assert_user_error(code, err, "seg.dcm")
    assert not (tmp_path / "ct" / "seg.dcm").exists()
    # a SEG we wrote earlier may be replaced: that is re-exporting, not destroying a source
    out = tmp_path / "seg.dcm"
    assert run_cli(capsys, "export", session, "--mask", out)[0] == 0
    assert run_cli(capsys, "export", session, "--mask", out)[0] == 0


def test_predict_never_overwrites_an_input_named_like_an_output(capsys, tmp_path, plugin, img):
    # an input called coins_mask.png must survive a run on coins.png writing coins_mask.png beside it
    shadow = Path(shutil.copy(img, tmp_path / "coins_mask.png"))
    before = digest(shadow)
    code, _, err = run_cli(capsys, "predict", "-m", plugin, img, shadow, "-o", tmp_path)
    assert code == 2 and "Traceback" not in err
    assert "coins_mask.png" in err and "overwrite an input" in err
    assert digest(shadow) == before
    assert not (tmp_path / "coins.json").exists()  # all or nothing per image: no orphan JSON/overlay
    assert not (tmp_path / "coins_overlay.png").exists()


def test_batch_refuses_its_input_folder_and_never_reads_its_outputs(capsys, tmp_path, plugin):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        write_png(src / f"img{k}.png", (np.arange(32 * 32).reshape(32, 32) % 256).astype(np.uint8))
    code, _, err = run_cli(capsys, "batch", "-m", plugin, src, "-o", src)
    assert_user_error(code, err, src, "--force")
    assert sorted(p.name for p in src.iterdir()) == ["img0.png", "img1.png"]
    # an output folder inside the input folder, recursive: the second run reads only the two images
    out = src / "results"
    for _ in range(2):
        code, _, err = run_cli(capsys, "batch", "-m", plugin, src, "-o", out, "-r")
        assert code == 0, err
        rows = list(csv.DictReader((out / "summary.csv").open()))
        assert [r["image"] for r in rows] == ["img0.png", "img1.png"]
    # forced into the input folder itself: the next forced run still skips what the first one wrote
    for _ in range(2):
        code, _, err = run_cli(capsys, "batch", "-m", plugin, src, "-o", src, "--force")
        assert code == 0, err
        rows = list(csv.DictReader((src / "summary.csv").open()))
        assert [r["image"] for r in rows] == ["img0.png", "img1.png"]


def test_outputs_get_the_umask_permissions(capsys, tmp_path, img):
    import os

    old = os.umask(0o022)
    try:
        out = tmp_path / "m.png"
        assert run_cli(capsys, "segment", img, "--threshold", "otsu", "-o", out)[0] == 0
    finally:
        os.umask(old)
    from workbench.io.atomic import current_umask

    assert (out.stat().st_mode & 0o777) == (0o666 & ~current_umask())
    assert (out.stat().st_mode & 0o777) != 0o600 or current_umask() == 0o066
