"""meta.expects (issue 20): the fields, their validation with file:field errors, and check_image on each
field and on degenerate images (constant, 1 pixel, 16-bit, NaN)."""
from __future__ import annotations

import numpy as np
import onnx_factory as F
import pytest

from workbench.core.errors import PluginError
from workbench.core.image import ImageVolume
from workbench.inference.expects import check_image, expects_of, parse_expects, warning_line
from workbench.inference.spec import load_plugin


def _img(data, modality=None):
    data = np.asarray(data)
    return ImageVolume(data[None] if data.ndim in (2, 3) and (data.ndim == 2 or data.shape[-1] in (3, 4)) else data,
                       modality=modality)


def _gray(h=64, w=64, dtype=np.uint8, top=200):
    return _img(np.linspace(0, top, h * w).reshape(h, w).astype(dtype))


def test_nothing_declared_nothing_reported():
    assert check_image(None, _gray()) == []
    assert check_image(parse_expects({}), _img(np.zeros((1, 1, 3), np.uint8))) == []


def test_modality_unknown_passes_other_fails():
    exp = parse_expects({"modality": ["mr", "CT"]})
    assert exp.modality == ["MR", "CT"]
    assert check_image(exp, _gray()) == []  # a PNG says nothing about its modality
    mr = _gray()
    mr.modality = "MR"
    assert check_image(exp, mr) == []
    us = _gray()
    us.modality = "US"
    assert check_image(exp, us) == ["modality US, made for MR, CT"]


def test_channels():
    rgb = _img(np.zeros((8, 8, 3), np.uint8))
    rgba = _img(np.zeros((8, 8, 4), np.uint8))
    assert check_image(parse_expects({"channels": 1}), rgb) == ["3 channels (colour), made for 1 (grayscale)"]
    assert check_image(parse_expects({"channels": 1}), rgba) == ["3 channels (colour), made for 1 (grayscale)"]
    assert check_image(parse_expects({"channels": 3}), rgb) == []
    assert check_image(parse_expects({"channels": 3}), _gray()) == ["1 channels (grayscale), made for 3 (colour)"]


def test_bit_depth_16_and_float():
    exp = parse_expects({"bit_depth": [8]})
    assert check_image(exp, _gray()) == []
    assert check_image(exp, _gray(dtype=np.uint16, top=60000)) == ["16-bit samples (uint16), made for 8-bit"]
    assert check_image(exp, _gray(dtype=np.int16)) == ["16-bit samples (int16), made for 8-bit"]
    assert check_image(parse_expects({"bit_depth": [8, 16]}), _gray(dtype=np.float32)) == \
        ["32-bit samples (float32), made for 8/16-bit"]


def test_sizes_and_one_pixel():
    exp = parse_expects({"min_size": 32, "max_size": 100})
    assert check_image(exp, _gray(40, 90)) == []
    assert check_image(exp, _img(np.zeros((1, 1), np.uint8))) == \
        ["1x1 pixels, smaller than the 32-pixel side it was made for"]
    assert check_image(exp, _gray(40, 120)) == ["120x40 pixels, larger than the 100-pixel side it was made for"]


def test_intensity_envelope():
    exp = parse_expects({"intensity": {"p1": [0, 10], "p99": [150, 255], "mean": [50, 150]}})
    assert check_image(exp, _gray()) == []
    dark = _gray(top=60)
    reasons = check_image(exp, dark)
    assert len(reasons) == 2 and reasons[0].startswith("99th percentile 59") and reasons[1].startswith("mean 29.5")
    assert all("outside the training range" in r for r in reasons)


def test_degenerate_constant_and_nan():
    exp = parse_expects({"intensity": {"mean": [0, 1000]}})
    assert check_image(exp, _img(np.full((16, 16), 7, np.uint8))) == ["a constant image (every value 7)"]
    assert check_image(exp, _img(np.full((1, 1), 7, np.uint8))) == ["a constant image (every value 7)"]
    nan = np.full((16, 16), np.nan, np.float32)
    assert check_image(exp, _img(nan)) == ["no finite pixel values (all NaN or infinite)"]
    some = np.linspace(0, 100, 256, dtype=np.float32).reshape(16, 16)
    some[0, :8] = np.nan
    assert check_image(exp, _img(some)) == []  # NaNs are left out of the statistics
    # fields that do not look at values do not choke on NaN either
    assert check_image(parse_expects({"channels": 1, "bit_depth": [32], "min_size": 1}), _img(nan)) == []


def test_large_volume_is_sampled():
    vol = ImageVolume(np.zeros((40, 256, 256), np.uint16))
    vol.data[:, :, 128:] = 1000
    assert check_image(parse_expects({"intensity": {"mean": [400, 600]}}), vol) == []


@pytest.mark.parametrize("expects, field, text", [
    ({"channels": 2}, "meta.expects.channels", "got 2"),
    ({"bit_depth": [12]}, "meta.expects.bit_depth.0", "got 12"),
    ({"modality": []}, "meta.expects.modality", "DICOM modality codes"),
    ({"min_size": 0}, "meta.expects.min_size", "greater than or equal to 1"),
    ({"min_size": 64, "max_size": 32}, "meta.expects.min_size", "larger than max_size"),
    ({"intensity": {"p1": [5, 1]}}, "meta.expects.intensity.p1", "low <= high"),
    ({"intensity": {"p50": [0, 1]}}, "meta.expects.intensity.p50", "unknown field"),
    ({"colour": 1}, "meta.expects.colour", "unknown field"),
    ("MR", "meta.expects", "must be a mapping"),
])
def test_bad_declarations_name_file_and_field(tmp_path, expects, field, text):
    folder = F.write_plugin(tmp_path / "p", F.affine(["N", 1, "H", "W"], 1.0, 0.0),
                            {"id": "p", "task": "restoration", "meta": {"expects": expects}})
    with pytest.raises(PluginError) as info:
        load_plugin(folder)
    msg = str(info.value)
    assert "plugin.yaml" in msg and f"{field}:" in msg and text in msg, msg


def test_good_declaration_loads_and_bundled_plugins_declare():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "plugins"
    for name in ("brain-tissue", "denoiser", "quality", "focal-spot"):
        exp = expects_of(load_plugin(root / name))
        # focal-spot's held-out table covers CT slices too (CT_small): a CT is inside what it was made for
        made_for = ["MR", "CT"] if name == "focal-spot" else ["MR"]
        assert exp is not None and exp.modality == made_for and exp.bit_depth, name
    assert warning_line("a.png", "brain-tissue", ["x", "y"]) == "a.png: outside what brain-tissue was made for: x; y"


def test_focal_spot_takes_the_ct_slices_its_held_out_table_covers():
    from pathlib import Path

    exp = expects_of(load_plugin(Path(__file__).resolve().parents[2] / "plugins" / "focal-spot"))
    ct = _img(np.linspace(-1000, 1000, 128 * 128, dtype=np.float32).reshape(128, 128))  # HU, as the reader gives
    ct.modality = "CT"
    assert check_image(exp, ct) == []
    us = _gray(128, 128)
    us.modality = "US"
    assert check_image(exp, us) == ["modality US, made for MR, CT"]
