"""Rulers of a document (issue 15 item 2): length in mm, one undo step per add/move/remove, the session entry."""
import json
import zipfile

import numpy as np
import pytest

from workbench.core.annotations import Ruler, annotations_of
from workbench.core.document import Document
from workbench.core.image import ImageVolume
from workbench.io import write_tiff
from workbench.session import SessionError, load_session, save_session


def test_length_uses_the_anisotropic_spacing():
    ruler = Ruler(1, 0, (10.0, 5.0), (13.0, 9.0))
    assert ruler.length_px() == pytest.approx(5.0)
    assert ruler.length_mm((2.0, 0.5, 2.0)) == pytest.approx(np.hypot(6.0, 2.0))


def test_add_move_remove_are_undo_steps_and_a_new_image_empties_the_store():
    doc = Document(ImageVolume(np.zeros((3, 20, 20), np.uint8)))
    store = annotations_of(doc)
    seen = []
    store.changed.connect(lambda: seen.append(len(store.rulers)))
    r = store.add(1, (1, 1), (5, 1))
    moved = store.move(r.id, p1=(5, 4))
    assert store.rulers == [moved] and moved.p0 == (1.0, 1.0) and len(doc.undo) == 2
    store.remove(r.id)
    assert store.rulers == []
    doc.undo.undo()
    assert store.rulers == [moved]
    doc.undo.undo()
    assert store.rulers == [r]
    doc.undo.redo()
    assert store.rulers == [moved] and seen
    doc.set_image(ImageVolume(np.zeros((1, 8, 8), np.uint8)))
    assert annotations_of(doc).rulers == []


def test_rulers_round_trip_through_the_session_and_a_bad_entry_is_refused(tmp_path):
    path = write_tiff(tmp_path / "img.tif", np.zeros((2, 16, 16), np.uint16))
    from workbench.io import read_image

    doc = Document(read_image(path))
    store = annotations_of(doc)
    store.add(1, (2.5, 3.0), (10.0, 12.25))
    save_session(doc, tmp_path / "a.wbsession")
    back, _ = load_session(tmp_path / "a.wbsession")
    assert back.annotations.rulers == store.rulers
    # a damaged entry: one clear line naming the file
    with zipfile.ZipFile(tmp_path / "a.wbsession") as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(entries["manifest.json"])
    manifest["annotations"][0]["p0"] = ["x"]
    entries["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(tmp_path / "b.wbsession", "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    with pytest.raises(SessionError, match="bad ruler entry") as info:
        load_session(tmp_path / "b.wbsession")
    assert "b.wbsession" in str(info.value)


def test_translate_moves_every_point_in_one_step_and_roi_contains():
    from workbench.core.annotations import EllipseRoi, RectRoi, TextArrow

    doc = Document(ImageVolume(np.zeros((1, 40, 40), np.uint8)))
    store = annotations_of(doc)
    rect = store.add_annotation(RectRoi(0, 0, (4.0, 6.0), (14.0, 10.0)))
    arrow = store.add_annotation(TextArrow(0, 0, (1.0, 1.0), (5.0, 9.0), "note"))
    steps = len(doc.undo)
    moved = store.translate(rect.id, 3.0, -2.0)
    assert (moved.p0, moved.p1) == ((7.0, 4.0), (17.0, 8.0)) and len(doc.undo) == steps + 1
    assert store.translate(arrow.id, 1, 1).points == ((2.0, 2.0), (6.0, 10.0))
    doc.undo.undo()
    doc.undo.undo()
    assert store.get(rect.id) == rect and store.get(arrow.id) == arrow
    assert rect.contains((4.0, 6.0)) and not rect.contains((3.9, 8.0))
    ellipse = EllipseRoi(1, 0, (0.0, 0.0), (10.0, 4.0))
    assert ellipse.contains((5.0, 2.0)) and ellipse.contains((9.9, 2.0)) and not ellipse.contains((0.5, 0.5))
