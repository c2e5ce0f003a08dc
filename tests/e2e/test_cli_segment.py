"""`workbench segment` / `workbench measure` end to end: the CLI chain equals the functions called directly."""
import json
from pathlib import Path

import numpy as np
import pytest
import skimage

from workbench import processing as P
from workbench.cli import main
from workbench.io import read_image, write_tiff

COINS = Path(skimage.__file__).parent / "data" / "coins.png"


def run_cli(*argv, capsys=None):
    code = main([str(a) for a in argv])
    out = capsys.readouterr() if capsys is not None else None
    return code, out


def test_segment_chain_equals_direct_calls(tmp_path, capsys):
    out = tmp_path / "mask.png"
    code, io = run_cli("segment", COINS, "--threshold", "otsu", "--islands", "min:50", "--fill-holes",
                       "--dilate", "1px", "--islands", "largest", "-o", out, capsys=capsys)
    assert code == 0, io.err
    img = read_image(COINS).data[0]
    m = P.apply_threshold(img, method="otsu")
    m = P.remove_small(m, min_size=50)
    m = P.fill_holes(m)
    m = P.dilate(m, 1, units="px")
    m = P.keep_largest(m)
    written = read_image(out).data[0]
    np.testing.assert_array_equal(written, m.astype(np.uint8))
    assert f"{int(m.sum())} pixels" in io.out


def test_steps_apply_in_command_line_order(tmp_path, capsys):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run_cli("segment", COINS, "--threshold", "otsu", "--dilate", "3px", "--islands", "largest",
                   "-o", a, capsys=capsys)[0] == 0
    assert run_cli("segment", COINS, "--threshold", "otsu", "--islands", "largest", "--dilate", "3px",
                   "-o", b, capsys=capsys)[0] == 0
    assert not np.array_equal(read_image(a).data, read_image(b).data)


def test_grow_and_range_threshold_on_a_stack_with_spacing(tmp_path, capsys):
    vol = np.zeros((5, 30, 40), np.uint16)
    vol[1:4, 5:20, 5:25] = 1000
    vol[2, 10, 10] = 1200
    src = write_tiff(tmp_path / "vol.tif", vol, spacing=(2.0, 0.5, 0.5))
    out = tmp_path / "grown.tif"
    code, io = run_cli("segment", src, "--threshold", "500:", "--grow", "10,10,2:300", "-o", out,
                       "--value", "7", capsys=capsys)
    assert code == 0, io.err
    got = read_image(out).data
    ref = P.region_grow(vol, [(2, 10, 10)], tolerance=300, within=P.threshold_range(vol, 500, None))
    np.testing.assert_array_equal(got, ref.astype(np.uint8) * 7)
    assert "mm³" in io.out or "mm" in io.out


@pytest.mark.parametrize("args,message", [
    (["--grow", "10,20:abc"], "--grow 10,20:abc: tolerance is not a number"),
    (["--grow", "1000,20:5"], "seed is outside the image"),
    (["--grow", "1,2,3:5"], "Z must be 0"),
    (["--threshold", "300:100"], "low bound 300 is above"),
    (["--threshold", "magic"], "expected one of"),
    (["--islands", "biggest"], "expected largest"),
    (["--fill-holes"], "needs a mask"),
    (["--threshold", "otsu", "--dilate", "2"], "spacing of the image is unknown"),
    (["--threshold", "otsu", "--dilate", "two"], "expected a radius"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    code, io = run_cli("segment", COINS, *args, "-o", tmp_path / "m.png", capsys=capsys)
    assert code == 2
    lines = io.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], io.err
    assert not (tmp_path / "m.png").exists()


def test_missing_image_and_no_steps(tmp_path, capsys):
    assert run_cli("segment", tmp_path / "nope.png", "--threshold", "otsu", "-o", tmp_path / "m.png",
                   capsys=capsys)[0] == 2
    assert run_cli("segment", COINS, "-o", tmp_path / "m.png", capsys=capsys)[0] == 2


def test_measure_table_json_csv(tmp_path, capsys):
    mask = tmp_path / "mask.png"
    assert run_cli("segment", COINS, "--threshold", "otsu", "--islands", "largest", "-o", mask,
                   capsys=capsys)[0] == 0
    code, io = run_cli("measure", COINS, mask, "--json", "--csv", tmp_path / "m.csv", capsys=capsys)
    assert code == 0, io.err
    doc = json.loads(io.out)
    img = read_image(COINS).data[0]
    m = read_image(mask).data[0]
    (ref,) = P.measure_labels(m, img)
    assert doc["spacing"] is None and len(doc["labels"]) == 1
    got = doc["labels"][0]
    assert got["pixels"] == ref.pixels == int((m == 1).sum())
    assert got["mean"] == pytest.approx(float(img[m == 1].mean()))
    assert (tmp_path / "m.csv").read_text().startswith("label,name,pixels")
    code, io = run_cli("measure", COINS, mask, capsys=capsys)
    assert code == 0 and "eq_diam_px" in io.out and str(ref.pixels) in io.out


def test_measure_rejects_mismatched_mask(tmp_path, capsys):
    from workbench.io import write_png

    small = write_png(tmp_path / "small.png", np.ones((5, 5), np.uint8))
    code, io = run_cli("measure", COINS, small, capsys=capsys)
    assert code == 2 and "does not match" in io.err


def test_segment_into_an_existing_label_map_keeps_labels_by_the_brush_rules(tmp_path, capsys):
    """--into writes through the document's paint rule (workbench.core.edits), the one the GUI uses."""
    from workbench.io import write_png

    img = read_image(COINS).data[0]
    fg = P.apply_threshold(img, method="otsu")
    base = np.zeros(img.shape, np.uint8)
    base[:, : img.shape[1] // 2] = 5  # label 5 on the left half, drawn earlier
    write_png(tmp_path / "base.png", base)
    kept, over = tmp_path / "kept.png", tmp_path / "over.png"
    assert run_cli("segment", COINS, "--threshold", "otsu", "--value", "2", "--into", tmp_path / "base.png",
                   "--overwrite", "background", "-o", kept)[0] == 0
    assert run_cli("segment", COINS, "--threshold", "otsu", "--value", "2", "--into", tmp_path / "base.png",
                   "-o", over)[0] == 0
    k, o = read_image(kept).data[0], read_image(over).data[0]
    np.testing.assert_array_equal(k, np.where(base == 5, 5, np.where(fg, 2, 0)))  # label 5 survives
    np.testing.assert_array_equal(o, np.where(fg, 2, base))  # "any" paints over it
    code, io = run_cli("segment", COINS, "--threshold", "otsu", "--into", tmp_path / "base.png",
                       "--overwrite", "selected", "-o", over, capsys=capsys)
    assert code == 2 and "--selected N" in io.err and "\n" not in io.err.strip()


def test_segment_from_mask_aligns_a_nifti_and_corrects_it(tmp_path, capsys):
    """--from-mask: File > Import mask…'s code path on the command line (issue 15 item 3)."""
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((20, 16, 4), np.int16), np.eye(4)), str(tmp_path / "img.nii.gz"))
    data = np.zeros((10, 8, 2), np.uint16)
    data[2, 3, 1] = 300  # a 16-bit label on a 2 mm grid: resampled onto the 1 mm image grid
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), str(tmp_path / "mask.nii.gz"))
    out = tmp_path / "aligned.nii.gz"
    code, io = run_cli("segment", tmp_path / "img.nii.gz", "--from-mask", tmp_path / "mask.nii.gz", "-o", out,
                       capsys=capsys)
    assert code == 0, io.err
    assert "resampled" in io.out and "1 labels" in io.out
    got = read_image(out)
    image = read_image(tmp_path / "img.nii.gz")
    assert got.shape == image.shape and set(np.unique(got.data).tolist()) == {0, 300}
    # a step corrects it: a threshold of the (all-zero) image adds label 1 wherever nothing is labelled
    code, io = run_cli("segment", tmp_path / "img.nii.gz", "--from-mask", tmp_path / "mask.nii.gz",
                       "--threshold=-1:1", "--overwrite", "background", "-o", out, capsys=capsys)
    assert code == 0, io.err
    fixed = read_image(out).data
    assert np.count_nonzero(fixed == 300) == np.count_nonzero(got.data == 300) and (fixed > 0).all()


def test_segment_from_mask_refuses_a_mask_of_another_size_in_one_line(tmp_path, capsys):
    from workbench.io import write_png

    write_png(tmp_path / "small.png", np.ones((10, 10), np.uint8))
    code, io = run_cli("segment", COINS, "--from-mask", tmp_path / "small.png", "-o", tmp_path / "m.png",
                       capsys=capsys)
    assert code == 2 and "small.png" in io.err and "does not match the image" in io.err
    assert len(io.err.strip().splitlines()) == 1
