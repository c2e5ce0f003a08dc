"""Issue 15 item 4: overlay text on the image (modality, series, slice n/N, W/L, zoom %), updating, a toggle."""
from __future__ import annotations

import re

import numpy as np

from workbench.core.image import ImageVolume
from workbench.gui.overlay_text import corner_texts


def _mr() -> ImageVolume:
    data = np.arange(5 * 64 * 80, dtype=np.uint16).reshape(5, 64, 80) % 900
    return ImageVolume(data, spacing=(3.0, 0.9, 0.9), origin=(-20.0, 0.0, 0.0), spacing_known=True,
                       modality="MR", window=(400.0, 800.0),
                       metadata={"dicom": {"SeriesDescription": "AX T1 post Doe^John", "PatientName": "Doe^John"}})


def _zoom(text: str) -> int:
    return int(re.fullmatch(r"Zoom (\d+)%", text).group(1))


def test_corner_texts_content():
    image = _mr()
    texts = corner_texts(image, slice_index=2, window=(40.0, 400.0), zoom=1.5)
    assert texts["top_left"] == "MR\nseries description hidden (de-identified)"
    assert "Doe" not in " ".join(texts.values())
    assert texts["top_right"] == "Zoom 150%"
    assert texts["bottom_left"] == "Slice 3/5  ·  -14.0 mm"
    assert texts["bottom_right"] == "W 400  L 40"
    kept = corner_texts(image, slice_index=0, window=(40.0, 400.0), zoom=None, keep_identity=True)
    assert kept["top_left"] == "MR\nAX T1 post Doe^John"
    assert kept["top_right"] == ""
    ct = ImageVolume(np.zeros((1, 4, 4), np.float32), modality="CT")
    assert corner_texts(ct, slice_index=0, window=(-600, 1500), zoom=1.0)["bottom_right"] == "W 1500  L -600 HU"
    assert corner_texts(None, slice_index=0, window=(0, 1), zoom=1.0) == dict.fromkeys(texts, "")
    # a view paging through another frame (coronal: the image's rows) counts its slices there
    coronal = ImageVolume(np.zeros((64, 5, 80), np.uint16), spacing=(0.9, 3.0, 0.9), spacing_known=True)
    assert corner_texts(image, slice_index=9, window=(40, 400), zoom=1.0, shown=coronal)["bottom_left"] == \
        "Slice 10/64  ·  8.1 mm"


def test_overlay_follows_slice_zoom_and_window(window, qtbot):
    window.document.set_image(_mr())
    qtbot.wait(30)
    overlay = window.canvas.overlay_text
    labels = overlay.labels
    middle = window.view_state.slice_index  # a stack opens on its middle slice
    assert labels["bottom_left"].text().startswith(f"Slice {middle + 1}/5")
    window.view_state.set_slice(0)
    assert labels["bottom_left"].text() == "Slice 1/5  ·  -20.0 mm"
    assert labels["top_left"].text().startswith("MR")
    assert labels["bottom_right"].text() == "W 800  L 400"
    assert all(label.isVisible() for label in labels.values())

    window.view_state.step_slice(2)  # Page Down twice
    assert labels["bottom_left"].text().startswith("Slice 3/5")

    before = _zoom(labels["top_right"].text())
    window.canvas.zoom_by(0.5)  # zoom in 2x
    qtbot.wait(20)
    after = _zoom(labels["top_right"].text())
    assert abs(after - 2 * before) <= 2, (before, after)
    window.canvas.zoom_one_to_one()
    qtbot.wait(20)
    assert labels["top_right"].text() == "Zoom 100%"

    window.view_state.set_window(100.0, 250.0)  # a right-drag / preset
    assert labels["bottom_right"].text() == "W 250  L 100"

    # the labels sit in the view's corners, inside the view
    view = window.canvas.view
    for corner, label in labels.items():
        geo = label.geometry()
        assert view.rect().contains(geo), corner
        assert (geo.left() < view.width() / 2) == corner.endswith("left"), corner
        assert (geo.top() < view.height() / 2) == corner.startswith("top"), corner


def test_overlay_toggle_and_de_identification_setting(window, qtbot):
    window.document.set_image(_mr())
    window.view_state.set_slice(0)
    labels = window.canvas.overlay_text.labels
    assert "hidden (de-identified)" in labels["top_left"].text()  # default: de-identified
    window.session.keep_identity_action.setChecked(True)  # File > Keep patient identity
    assert labels["top_left"].text() == "MR\nAX T1 post Doe^John"
    window.session.keep_identity_action.setChecked(False)
    assert "Doe" not in labels["top_left"].text()

    action = window.overlay_text_action
    assert action.isChecked() and action.shortcut().toString() == "Ctrl+T"
    action.trigger()  # off
    assert not any(label.isVisible() for label in labels.values())
    window.view_state.step_slice(1)
    assert not any(label.isVisible() for label in labels.values())  # stays off while scrolling
    action.trigger()  # on again, with the current slice
    assert labels["bottom_left"].text().startswith("Slice 2/5")
    assert labels["bottom_left"].isVisible()
