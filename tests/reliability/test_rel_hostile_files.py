"""The hostile corpus of issue 11 (item 5), built here: each file gives exit 2 and one line naming it, no
traceback, no hang (subprocesses under a timeout), no half-written output; folders with loops, dangling
links, FIFOs and non-UTF-8 names are listed with notes; a full disk in batch leaves no orphans."""
from __future__ import annotations

import csv
import errno
import os

import numpy as np
import onnx_factory as F
import pytest
from rel_helpers import assert_user_error, fixtures, run_cli, run_subprocess

from workbench.io import write_png

SEG = {"id": "seg", "task": "segmentation",
       "input": {"color": "gray", "resize": "stretch", "size": [16, 16], "intensity": {"scale": 1 / 255}},
       "output": {"classes": [{"name": "background"}, {"name": "thing"}]}}


pytestmark = pytest.mark.usefixtures("fresh_session_cache")


@pytest.fixture
def plugin(tmp_path):
    return F.write_plugin(tmp_path / "plugins" / "seg", F.threshold_segmenter(1, size=[16, 16]), SEG)


def _img(path, value=0):
    return write_png(path, ((np.arange(16 * 16).reshape(16, 16) + value) % 256).astype(np.uint8))


def _corpus(tmp_path):
    """(path, words the one line must contain)."""
    import pydicom

    items = []
    s = tmp_path / "structured.npy"
    np.save(s, np.zeros((4, 4), dtype=[("a", "f4"), ("b", "i4")]))
    items.append((s, "structured"))
    u = tmp_path / "strings.npy"
    np.save(u, np.array([["ab", "cd"], ["e", "f"]]))
    items.append((u, "string"))
    c = tmp_path / "complex.npy"
    np.save(c, np.zeros((4, 4), np.complex64))
    items.append((c, "complex"))
    paths, _ = fixtures.write_dicom_series(tmp_path / "nan", n=2, rows=8, cols=8)
    ds = pydicom.dcmread(paths[0])
    ds.RescaleIntercept = "NaN"
    ds.save_as(paths[0])
    items.append((tmp_path / "nan", "RescaleIntercept"))
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    items.append((loop, "symlink loop"))
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "nowhere.png")
    items.append((dangling, "dangling"))
    items.append((tmp_path / "missing.png", "no such file"))
    fifo = tmp_path / "fifo.dcm"
    os.mkfifo(fifo)
    items.append((fifo, "FIFO"))
    if os.path.exists("/dev/urandom"):
        items.append((os.fsdecode("/dev/urandom"), "character device"))
    return items


def test_hostile_inputs_one_line_each(capsys, tmp_path):
    for path, needle in _corpus(tmp_path):
        code, _, err = run_cli(capsys, "info", path)
        line = assert_user_error(code, err, path)
        assert needle in line, line


def test_fifo_and_device_in_a_subprocess_never_hang(tmp_path):
    fifo = tmp_path / "scan.png"
    os.mkfifo(fifo)
    for target in (fifo, "/dev/urandom"):
        proc = run_subprocess("info", target, timeout=30)
        assert proc.returncode == 2 and str(target) in proc.stderr and "Traceback" not in proc.stderr


def test_fifo_inside_a_dicom_folder_is_skipped(capsys, tmp_path):
    fixtures.write_dicom_series(tmp_path / "ct", n=3, rows=8, cols=8)
    os.mkfifo(tmp_path / "ct" / "zz.dcm")
    (tmp_path / "ct" / "link").symlink_to(tmp_path / "ct")  # a loop back to the folder itself
    (tmp_path / "ct" / "gone.dcm").symlink_to(tmp_path / "nothing")
    code, out, err = run_cli(capsys, "info", tmp_path / "ct")
    assert code == 0, err
    assert "3 x 8 x 8" in out


def test_degenerate_geometry_refused_by_the_nifti_writer(capsys, tmp_path):
    import pydicom

    paths, _ = fixtures.write_dicom_series(tmp_path / "dup", n=3, rows=8, cols=8)
    first = pydicom.dcmread(paths[0])
    for p in paths[1:]:
        ds = pydicom.dcmread(p)
        ds.ImagePositionPatient = first.ImagePositionPatient
        ds.save_as(p)
    out = tmp_path / "m.nii.gz"
    code, _, err = run_cli(capsys, "segment", tmp_path / "dup", "--threshold", "otsu", "-o", out)
    assert_user_error(code, err, out, "degenerate")
    assert not out.exists()
    code, _, err = run_cli(capsys, "segment", tmp_path / "dup", "--threshold", "otsu", "-o", tmp_path / "m.tif")
    assert code == 0, err


@pytest.mark.parametrize("field, value", [
    ("size", [200000, 200000]), ("multiple_of", 10 ** 9), ("tile", {"size": 10 ** 6, "overlap": 8}),
])
def test_sizes_implied_by_the_manifest_are_checked_before_allocating(capsys, tmp_path, field, value):
    manifest = {**SEG, "input": {**SEG["input"], field: value}}
    if field == "tile":
        manifest["input"]["resize"] = "tile"
    folder = F.write_plugin(tmp_path / "big", F.threshold_segmenter(1), manifest)
    code, _, err = run_cli(capsys, "models", "check", folder)
    line = assert_user_error(code, err, "plugin.yaml", f"input.{field}")
    assert "GiB" in line


@pytest.mark.parametrize("option", ["--dilate", "--smooth", "--close"])
def test_huge_radius_is_refused(capsys, tmp_path, option):
    img = _img(tmp_path / "a.png")
    code, _, err = run_cli(capsys, "segment", img, "--threshold", "otsu", option, "1e12px", "-o", tmp_path / "m.png")
    assert_user_error(code, err, "radius")
    assert not (tmp_path / "m.png").exists()


def test_batch_folder_with_loops_dangling_links_fifos_and_bad_names(tmp_path, plugin):
    src = tmp_path / "in"
    src.mkdir()
    _img(src / "a.png")
    bad = os.path.join(os.fsencode(src), b"caf\xe9-\xff.png")  # Latin-1 bytes: not UTF-8
    _img(os.fsdecode(bad), 7)
    (src / "loop.png").symlink_to(src / "loop.png")
    (src / "gone.png").symlink_to(tmp_path / "nothing.png")
    (src / "sub").symlink_to(src)  # a folder loop for -r
    os.mkfifo(src / "pipe.png")
    out = tmp_path / "out"
    proc = run_subprocess("batch", "-m", plugin, src, "-o", out, "-r", timeout=90,
                          env={"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": ""})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("loop.png", "gone.png", "pipe.png"):
        assert name in proc.stderr  # one note each
    rows = list(csv.DictReader((out / "summary.csv").open(encoding="utf-8")))
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert any("\ufffd" in r["image"] for r in rows)


def test_full_disk_in_batch_leaves_no_orphans_and_writes_the_summary(capsys, tmp_path, plugin, monkeypatch):
    from workbench.export import prediction

    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        _img(src / f"img{k}.png", k)
    real = prediction.write_overlay_png

    def full_disk(path, rgb):
        if "img1" in str(path):
            raise prediction.ExportError(f"cannot write ({os.strerror(errno.ENOSPC)})", path=path)
        return real(path, rgb)

    monkeypatch.setattr(prediction, "write_overlay_png", full_disk)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "batch", "-m", plugin, src, "-o", out)
    assert code == 2 and "Traceback" not in err and "img1" in err
    rows = {r["image"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert rows["img1.png"]["status"] == "error" and "No space left" in rows["img1.png"]["error"]
    assert rows["img0.png"]["status"] == rows["img2.png"]["status"] == "ok"
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith("img1")], names  # no orphan mask / json of the failed image
    # no temporary files (.workbench-batch.json is the run record that --resume reads, not a temporary)
    assert not [n for n in names if n.startswith(".") and n != ".workbench-batch.json"], names


def test_third_party_warnings_go_to_our_log_not_stderr(tmp_path):
    import struct

    import nibabel as nib

    path = tmp_path / "q.nii"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.int16), np.eye(4)), path)
    raw = bytearray(path.read_bytes())
    raw[76:80] = struct.pack("<f", 0.5)  # pixdim[0] (qfac) invalid: nibabel logs a fix on its own handler
    path.write_bytes(bytes(raw))
    config = tmp_path / "cfg"
    proc = run_subprocess("info", path, timeout=60, env={"WORKBENCH_CONFIG_DIR": str(config)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
    # and an error after a library warning is still the only line
    missing = tmp_path / "nope.nii"
    proc = run_subprocess("info", missing, timeout=60, env={"WORKBENCH_CONFIG_DIR": str(config)})
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
