"""`workbench segment IMAGE -m PLUGIN --click ... [--box ...] [classic steps] -o MASK` end to end."""
from __future__ import annotations

import numpy as np
import promptable_factory as P
import pytest

from workbench.cli import main
from workbench.io import read_image, write_png


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


def disk(hw, x, y, r):
    yy, xx = np.mgrid[0:hw[0], 0:hw[1]]
    return (yy - y) ** 2 + (xx - x) ** 2 <= r * r


@pytest.fixture
def fixture(tmp_path):
    """A 64 x 64 image and a tiny disk-encoding channel model whose crop always covers it: its mask is
    exactly the include disks minus the exclude disks (radius 6)."""
    img = tmp_path / "img.png"
    write_png(img, np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    plugin = P.channels_plugin(tmp_path / "tiny", size=64, encoding="disk", radius=6.0, context=4.0)
    return img, plugin


def test_clicks_give_the_known_mask(tmp_path, capsys, fixture):
    img, plugin = fixture
    out = tmp_path / "m.png"
    code, io = run_cli(capsys, "segment", img, "-m", plugin, "--click", "20,20", "--click", "44,40:+",
                       "--click", "48,40:-", "-o", out)
    assert code == 0, io.err
    want = (disk((64, 64), 20, 20, 6) | disk((64, 64), 44, 40, 6)) & ~disk((64, 64), 48, 40, 6)
    np.testing.assert_array_equal(read_image(out).data[0] > 0, want)
    assert f"{int(want.sum())} pixels" in io.out


def test_classic_steps_apply_after_the_prompt(tmp_path, capsys, fixture):
    img, plugin = fixture
    out = tmp_path / "m.png"
    code, io = run_cli(capsys, "segment", img, "-m", plugin, "--click", "20,20", "--click", "44,40",
                       "--click", "48,40:-", "--islands", "largest", "--fill-holes", "--value", "3", "-o", out)
    assert code == 0, io.err
    np.testing.assert_array_equal(read_image(out).data[0], disk((64, 64), 20, 20, 6).astype(np.uint8) * 3)


def test_box_prompt_with_encoder_decoder(tmp_path, capsys):
    img = tmp_path / "img.png"
    write_png(img, np.random.default_rng(0).integers(0, 255, (30, 80), dtype=np.uint8))
    plugin = P.encoder_decoder_plugin(tmp_path / "sam", size=64, radius=5.0)
    out = tmp_path / "m.png"
    code, io = run_cli(capsys, "segment", img, "-m", plugin, "--box", "10,5,30,20", "-o", out)
    assert code == 0, io.err
    m = read_image(out).data[0] > 0
    assert m[5, 10] and not m[20, 30]  # the tiny decoder's cone sits on the box's first corner


@pytest.mark.parametrize("argv, message", [
    (["--click", "20,20"], "--click/--box: name the promptable model with -m PLUGIN"),
    (["--click", "20;20", "-m", "X"], "--click '20;20': expected X,Y[,Z][:+|:-]"),
    (["--click", "70,20", "-m", "PLUGIN"], "click 70,20 lies outside the 64x64 image"),
    (["--click", "20,20,1", "-m", "PLUGIN"], "slice 1 is outside the image's 0..0"),
    (["--click", "20,20:-", "-m", "PLUGIN"], "the first click must include"),
    (["-m", "PLUGIN"], "give at least one --click or --box"),
    (["--click", "20,20", "-m", "brain-tissue"], "-m brain-tissue: a segmentation model; --click needs a promptable"),
])
def test_errors_are_one_line(tmp_path, capsys, fixture, argv, message):
    img, plugin = fixture
    argv = [str(plugin) if a == "PLUGIN" else a for a in argv]
    code, io = run_cli(capsys, "segment", img, *argv, "-o", tmp_path / "m.png")
    assert code == 2 and message in io.err and "Traceback" not in io.err
    assert len(io.err.strip().splitlines()) == 1


def test_models_check_and_predict_on_a_promptable_plugin(tmp_path, capsys, fixture):
    _, plugin = fixture
    code, io = run_cli(capsys, "models", "check", plugin)
    assert code == 0, io.err
    assert "session   ok  channels" in io.out and "smoke run ok  synthetic 128x128 disk" in io.out
    code, io = run_cli(capsys, "predict", "-m", plugin, tmp_path / "img.png", "-o", tmp_path / "out")
    assert code == 2 and "tiny-click is a promptable model: run it with `workbench segment" in io.err
