"""Orthogonal views (core/mpr.py, core/oriented_labels.py) checked against plain numpy indexing."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.core.image import ImageVolume
from workbench.core.labels import LabelMap
from workbench.core.mpr import (
    AXIAL,
    CORONAL,
    ORIENTATIONS,
    SAGITTAL,
    Crosshair,
    box_to_view,
    box_to_volume,
    mask_to_volume,
    orientation,
    oriented_image,
    pixel_aspect,
    plane,
    superior_up,
    to_view,
    to_voxel,
    view_shape,
    view_spacing,
    volume_view,
)
from workbench.core.oriented_labels import OrientedLabels
from workbench.processing import stroke

SHAPE = (5, 7, 11)  # z, y, x: all different so a swapped axis cannot pass
SPACING = (3.0, 0.8, 0.5)  # anisotropic


@pytest.fixture()
def volume() -> np.ndarray:
    return np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)


def test_planes_are_views_matching_numpy(volume):
    assert np.array_equal(plane(volume, AXIAL, 2), volume[2])
    assert np.array_equal(plane(volume, CORONAL, 3), volume[:, 3, :])
    assert np.array_equal(plane(volume, SAGITTAL, 4), volume[:, :, 4])
    for o in ORIENTATIONS:
        p = plane(volume, o, 1)
        assert np.shares_memory(p, volume), o.name
        assert p.shape == view_shape(SHAPE, o)[1:]
        assert np.array_equal(volume_view(volume, o)[1], p)
        assert np.shares_memory(volume_view(volume, o), volume)
    assert view_shape(SHAPE, CORONAL) == (7, 5, 11)
    assert view_shape(SHAPE, SAGITTAL) == (11, 5, 7)
    with pytest.raises(IndexError):
        plane(volume, SAGITTAL, 11)
    with pytest.raises(ValueError):
        orientation("oblique")
    assert orientation("coronal") is CORONAL


def test_colour_planes_keep_channels():
    rgb = np.zeros(SHAPE + (3,), np.uint8)
    rgb[2, 3, 4] = (1, 2, 3)
    assert plane(rgb, SAGITTAL, 4).shape == (5, 7, 3)
    assert tuple(plane(rgb, SAGITTAL, 4)[2, 3]) == (1, 2, 3)
    assert tuple(volume_view(rgb, CORONAL)[3, 2, 4]) == (1, 2, 3)


def test_coordinates_round_trip_and_index_the_same_voxel(volume):
    rng = np.random.default_rng(0)
    for o in ORIENTATIONS:
        frame = volume_view(volume, o)
        for _ in range(20):
            z, y, x = (int(rng.integers(n)) for n in SHAPE)
            s, r, c = to_view(o, z, y, x)
            assert frame[s, r, c] == volume[z, y, x]
            assert plane(volume, o, s)[r, c] == volume[z, y, x]
            assert to_voxel(o, s, r, c) == (z, y, x)
    # sagittal: columns run along y, rows along z
    assert to_voxel(SAGITTAL, 4, 2, 6) == (2, 6, 4)
    assert to_voxel(CORONAL, 3, 2, 6) == (2, 3, 6)


def test_spacing_and_physical_aspect():
    assert view_spacing(SPACING, AXIAL) == SPACING
    assert view_spacing(SPACING, CORONAL) == (0.8, 3.0, 0.5)
    assert view_spacing(SPACING, SAGITTAL) == (0.5, 3.0, 0.8)
    assert pixel_aspect(SPACING, AXIAL) == pytest.approx(0.8 / 0.5)
    assert pixel_aspect(SPACING, CORONAL) == pytest.approx(3.0 / 0.5)
    assert pixel_aspect(SPACING, SAGITTAL) == pytest.approx(3.0 / 0.8)
    assert pixel_aspect((1.0, 0.0, 1.0), AXIAL) == 1.0


def test_boxes_and_masks_map_back(volume):
    box_view = (slice(3, 4), slice(1, 4), slice(2, 9))  # coronal y=3, z 1..3, x 2..8
    box = box_to_volume(CORONAL, box_view)
    assert box == (slice(1, 4), slice(3, 4), slice(2, 9))
    assert box_to_view(CORONAL, box) == box_view
    region_view = volume_view(volume, CORONAL)[box_view]
    assert np.array_equal(mask_to_volume(CORONAL, region_view), volume[box])
    for o in ORIENTATIONS:
        b = (slice(1, 3), slice(0, 2), slice(2, 5))
        assert box_to_view(o, box_to_volume(o, b)) == b


def test_oriented_image_is_a_view_with_permuted_geometry(volume):
    image = ImageVolume(volume, spacing=SPACING, origin=(10.0, 20.0, 30.0), spacing_known=True, modality="CT")
    assert oriented_image(image, AXIAL) is image
    sag = oriented_image(image, SAGITTAL)
    assert np.shares_memory(sag.data, volume)
    assert (sag.n_slices, sag.height, sag.width) == (11, 5, 7)
    assert sag.spacing == (0.5, 3.0, 0.8)
    assert sag.origin == (30.0, 10.0, 20.0)
    assert sag.is_ct and sag.slice(4)[2, 6] == volume[2, 6, 4]
    assert superior_up(image) and not superior_up(ImageVolume(volume))


def test_crosshair_clamps_and_emits_only_on_change():
    ch = Crosshair(SHAPE)
    assert ch.position == (2, 3, 5)
    seen = []
    ch.moved.connect(seen.append)
    ch.set_position(2, 3, 5)
    assert seen == []
    ch.set_from_view(SAGITTAL, 9.7, 1.2, 6.9)  # x=9, z=1, y=6
    assert ch.position == (1, 6, 9) and seen == [(1, 6, 9)]
    assert ch.slice_index(AXIAL) == 1 and ch.slice_index(CORONAL) == 6 and ch.slice_index(SAGITTAL) == 9
    assert ch.view_point(CORONAL) == (1, 9) and ch.view_point(SAGITTAL) == (1, 6)
    ch.set_axis(2, 99)
    assert ch.position == (1, 6, 10)
    ch.set_position(-5, -1, -1)
    assert ch.position == (0, 0, 0)
    ch.reset((1, 4, 4))
    assert ch.position == (0, 2, 2)


def test_oriented_labels_edit_is_one_undo_step_on_the_right_voxels():
    labels = LabelMap(SHAPE)
    sag = OrientedLabels(labels, SAGITTAL)
    assert sag.shape == (11, 5, 7)
    events = []
    sag.data_changed.connect(events.append)
    # a disc in sagittal slice x=4 centred at (z=2, y=3), radius 1.2 px: a plus sign in the z/y plane
    box, mask = stroke((4.0, 2.0, 3.0), (4.0, 2.0, 3.0), 1.2, shape=sag.shape)
    with sag.edit("Brush") as e:
        e.paint(box, mask, 2)
    expected = np.zeros(SHAPE, bool)
    expected[2, 3, 4] = expected[1, 3, 4] = expected[3, 3, 4] = expected[2, 2, 4] = expected[2, 4, 4] = True
    assert np.array_equal(labels.data == 2, expected)
    assert len(labels.undo) == 1 and 2 in sag.labels
    # the relay reports the box in the sagittal frame
    assert events and events[-1][0] == slice(4, 5)
    labels.undo.undo()
    assert not labels.data.any()
    with sag.edit("Fill") as e:
        e.assign((slice(10, 11), slice(0, 5), slice(0, 7)), 3)
    assert np.all(labels.data[:, :, 10] == 3) and np.count_nonzero(labels.data) == 5 * 7
    assert len(labels.undo) == 1
    sag.close()
    events.clear()
    with labels.edit("x") as e:
        e.assign((slice(0, 1), slice(0, 1), slice(0, 1)), 1)
    assert events == []


def test_oriented_labels_anisotropic_mm_brush_is_round_in_mm():
    """A 2 mm brush in a coronal view of 3 x 0.8 x 0.5 mm voxels spans +-3 columns (< 4 x 0.5 mm) in one z."""
    labels = LabelMap(SHAPE)
    cor = OrientedLabels(labels, CORONAL)
    spacing = view_spacing(SPACING, CORONAL)
    box, mask = stroke((3.0, 2.0, 5.0), (3.0, 2.0, 5.0), 2.0, shape=cor.shape, units="mm", spacing=spacing)
    with cor.edit("Brush") as e:
        e.paint(box, mask, 1)
    z, y, x = np.nonzero(labels.data)
    assert set(y.tolist()) == {3} and set(z.tolist()) == {2}
    assert x.min() == 2 and x.max() == 8


def test_plane_reader_serves_the_same_planes_scrolling_and_jumping():
    from workbench.core.mpr import PlaneReader

    rng = np.random.default_rng(3)
    data = rng.integers(-500, 500, size=(6, 9, 40), dtype=np.int16)
    for o in ORIENTATIONS:
        reader = PlaneReader(data, o, slab=8)
        n = data.shape[o.axis]
        order = list(range(n)) + list(range(n - 1, -1, -1)) + [int(i) for i in rng.integers(0, n, 30)]
        for i in order:
            assert np.array_equal(reader.plane(i), plane(data, o, i)), (o.name, i)
        with pytest.raises(IndexError):
            reader.plane(n)
    reader = PlaneReader(data, SAGITTAL, slab=8)
    reader.plane(10)
    jumped = reader.plane(20)  # a jump reads its plane (one plane, contiguous) and keeps it for redraws
    assert jumped.flags.c_contiguous and reader.plane(20) is jumped
    slab_plane = reader.plane(21)  # a step copies a slab (8 planes, never the volume) and serves from it
    assert not np.shares_memory(slab_plane, data) and reader._slab.shape == (6, 9, 8)
    rgb = rng.integers(0, 255, size=(3, 4, 12, 3), dtype=np.uint8)
    reader = PlaneReader(rgb, SAGITTAL, slab=4)
    for i in (2, 3, 4, 5, 1):
        assert np.array_equal(reader.plane(i), rgb[:, :, i])
