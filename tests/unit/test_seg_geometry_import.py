"""A DICOM SEG exported de-identified (remapped UIDs) re-imported onto the identified series by geometry
(issue 15 item 3 follow-up): reader, ``workbench segment --from-mask``, refusals in one line."""
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.core.errors import ImageReadError
from workbench.io import read_image
from workbench.io.mask_import import read_mask

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import io_fixtures as fixtures

pytest.importorskip("highdicom")


def _labels(shape):
    labels = np.zeros(shape, np.uint16)
    labels[1, 2:6, 3:7] = 4
    labels[2:4, 8:12, 1:5] = 9
    return labels


@pytest.fixture
def deid_seg(tmp_path):
    """The identified series, its label map, a default (de-identified) SEG and an identified one."""
    from workbench.export.dicom_seg import write_dicom_seg

    fixtures.write_dicom_series(tmp_path / "ct", n=4, rows=16, cols=12)
    image = read_image(tmp_path / "ct")
    labels = _labels(image.shape)
    kw = dict(names={4: "liver", 9: "lesion"}, colors={4: "#ff0000", 9: "#00c000"})
    deid = write_dicom_seg(tmp_path / "deid.dcm", labels, image, **kw)
    kept = write_dicom_seg(tmp_path / "kept.dcm", labels, image, keep_identity=True, **kw)
    return image, labels, deid, kept


def test_default_seg_references_no_uid_of_the_series(deid_seg):
    import pydicom

    image, _labels_, deid, _kept = deid_seg
    ds = pydicom.dcmread(deid)
    refs = {str(g.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
            for g in ds.PerFrameFunctionalGroupsSequence}
    assert not refs & set(image.metadata["sop_instance_uids"])
    assert str(ds.FrameOfReferenceUID) != image.metadata["FrameOfReferenceUID"]


def test_deidentified_seg_is_matched_by_geometry_to_the_same_label_map(deid_seg):
    image, labels, deid, kept = deid_seg
    got, ref = read_mask(deid, image), read_mask(kept, image)
    assert np.array_equal(got.data, ref.data)
    assert np.array_equal(got.data, np.where(labels == 4, 1, np.where(labels == 9, 2, 0)))
    assert [lab.name for lab in got.labels] == ["liver", "lesion"]
    assert [lab.color for lab in got.labels] == [lab.color for lab in ref.labels]
    assert any("matched by geometry" in n for n in got.notes)
    assert not any("geometry" in n for n in ref.notes)  # matched by its UIDs


def test_a_one_segment_seg_is_matched_too(deid_seg, tmp_path):
    """highdicom puts the segment of a one-segment SEG in the shared functional groups."""
    from workbench.export.dicom_seg import write_dicom_seg

    image, _labels_, _deid, _kept = deid_seg
    labels = np.zeros(image.shape, np.uint16)
    labels[3, 1:4, 2:5] = 7
    got = read_mask(write_dicom_seg(tmp_path / "one.dcm", labels, image), image)
    assert np.array_equal(got.data, (labels > 0).astype(np.uint16))
    assert "matched by geometry: 1 frame on" in got.notes[0]


@pytest.mark.parametrize("change, words", [
    (dict(z0=0.0), "geometry differs (frame 1 at"),
    (dict(pixel_spacing=(0.5, 0.8)), "geometry differs (frame 1 has pixel spacing 0.7 x 0.8 mm, the series 0.5 x 0.8"),
    (dict(iop=(0, 1, 0, 1, 0, 0)), "geometry differs (frame 1 has another orientation)"),
    (dict(rows=14), "SEG frames of 12x16 do not match the image 12x14"),
])
def test_seg_of_another_geometry_is_refused_in_one_line(deid_seg, tmp_path, change, words):
    _image, _labels_, deid, _kept = deid_seg
    fixtures.write_dicom_series(tmp_path / "other", **{"n": 4, "rows": 16, "cols": 12, **change})
    other = read_image(tmp_path / "other")
    with pytest.raises(ImageReadError) as err:
        read_mask(deid, other)
    message = str(err.value)
    assert words in message and "\n" not in message
    assert "belongs to another series" in message or "do not match" in message


def test_two_frames_on_one_slice_are_ambiguous(deid_seg, tmp_path):
    import pydicom

    image, _labels_, deid, _kept = deid_seg
    ds = pydicom.dcmread(deid)
    groups = ds.PerFrameFunctionalGroupsSequence
    first = [g for g in groups if int(g.SegmentIdentificationSequence[0].ReferencedSegmentNumber) == 2]
    first[1].PlanePositionSequence[0].ImagePositionPatient = list(first[0].PlanePositionSequence[0]
                                                                  .ImagePositionPatient)
    ds.save_as(tmp_path / "twice.dcm")
    with pytest.raises(ImageReadError, match="two frames of segment 2 lie on slice"):
        read_mask(tmp_path / "twice.dcm", image)


def test_cli_from_mask_takes_the_deidentified_seg_onto_the_identified_series(deid_seg, tmp_path, capsys):
    image, _labels_, deid, kept = deid_seg
    outs = {}
    for name, seg in (("deid", deid), ("kept", kept)):
        out = tmp_path / f"{name}.tif"
        code = main(["segment", str(tmp_path / "ct"), "--from-mask", str(seg), "-o", str(out)])
        io = capsys.readouterr()
        assert code == 0, io.err
        outs[name] = (read_image(out).data, io.out)
    assert np.array_equal(outs["deid"][0], outs["kept"][0]) and outs["deid"][0].any()
    assert "matched by geometry" in outs["deid"][1] and "geometry" not in outs["kept"][1]


def test_cli_refuses_a_seg_of_another_geometry_in_one_line(deid_seg, tmp_path, capsys):
    _image, _labels_, deid, _kept = deid_seg
    fixtures.write_dicom_series(tmp_path / "other", n=4, rows=16, cols=12, z0=0.0)
    code = main(["segment", str(tmp_path / "other"), "--from-mask", str(deid), "-o", str(tmp_path / "m.tif")])
    err = capsys.readouterr().err
    assert code == 2 and "deid.dcm" in err and "belongs to another series" in err
    assert len(err.strip().splitlines()) == 1
