"""Read an existing mask (a model's or a colleague's) and align it to the open image's grid.

:func:`read_mask` returns an :class:`ImportedMask`: a ``(z, y, x)`` uint16 label array with the image's shape
and the label table entries found in the file. Writing it into the document is
:func:`workbench.core.edits.import_mask` (one undo step); the GUI (File > Import mask…) and the command line
(``workbench segment IMAGE --from-mask FILE``) share both.

Formats and how each is aligned:

- PNG / TIFF / BMP / ``.npy`` label images: no geometry, so they must have the image's height and width (and
  its number of slices for a stack);
- NIfTI: its affine and the image's (NIfTI, or DICOM positions/orientation) map both grids to RAS+ mm; when
  they differ the mask is resampled onto the image grid with nearest-neighbour (labels never blend). An image
  without geometry (PNG...) takes a NIfTI of exactly its shape as is, and refuses any other;
- DICOM SEG (highdicom): each frame is put on the slice it references (SOP Instance UID, and frame number of a
  multi-frame source), else on the slice at its position in the same frame of reference, else -- a SEG
  exported de-identified references remapped UIDs -- by geometry alone: every frame's position, orientation,
  pixel spacing and size must match exactly one slice (the status line then says "matched by geometry").
  Segment labels and recommended display colours become the label table.

A mask that cannot be aligned is refused with one line (:class:`~workbench.core.errors.ImageReadError`, the
readers' one error type) naming the file and the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ImageReadError
from ..core.image import ImageVolume
from ..core.labels import Label, default_color
from ._common import decoding

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
#: suffixes offered by the file dialog (the format itself is sniffed from the content)
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".nii", ".nii.gz", ".dcm", ".npy", ".bmp")


@dataclass
class ImportedMask:
    """A mask on the image's grid.

    Attributes
    ----------
    data : ndarray of uint16
        ``(z, y, x)``, the image's shape; 0 = no label.
    labels : list of Label
        One entry per value present in ``data`` (names and colours from the file where it has them).
    format : str
        ``"PNG"``, ``"TIFF"``, ``"NIfTI"``, ``"DICOM SEG"``...
    notes : list of str
        What was done to align it (``"resampled from 64x64x10 by the affines"``), for the status line.
    """

    data: np.ndarray
    labels: list[Label]
    format: str
    notes: list[str] = field(default_factory=list)


def read_mask(path: str | Path, image: ImageVolume, *, max_pixels: int | None = None) -> ImportedMask:
    """Read a label image / NIfTI / DICOM SEG and align it to ``image``'s grid.

    Parameters
    ----------
    path : str or Path
        The mask file.
    image : ImageVolume
        The open image the mask belongs to.
    max_pixels : int, optional
        Size limit of the mask file (default: the user's setting).

    Returns
    -------
    ImportedMask

    Raises
    ------
    ImageReadError
        Unreadable file, not a label image (colour, fractional or negative values), or not alignable with the
        image (different size without geometry, no overlap, SEG of another series).
    """
    from .reader import read_image, sniff_format

    path = Path(path)
    if not path.exists():
        raise ImageReadError("no such mask file", path=path)
    fmt = sniff_format(path)
    if fmt in ("dicom", "dicom-nopreamble") and _is_seg(path):
        return _read_seg(path, image)
    mask = read_image(path, max_pixels=max_pixels)
    if mask.is_color:
        raise ImageReadError(f"a label image has one channel, this one has {mask.channels} (colour)", path=path)
    values = _label_values(path, mask.data)
    name = str(mask.metadata.get("format") or fmt).upper()
    shape = (image.n_slices, image.height, image.width)
    if name == "NIFTI":
        data, notes = _align_nifti(path, values, mask, image)
        return _result(data, "NIfTI", notes)
    if values.shape == shape:
        return _result(values, name, [])
    if values.shape[0] == 1 and shape[0] > 1 and values.shape[1:] == shape[1:]:
        raise ImageReadError(f"the mask has one plane, the image {shape[0]} slices (use a stack: multi-page "
                             "TIFF or NIfTI)", path=path)
    raise ImageReadError(f"mask size {_size(values.shape)} does not match the image {_size(shape)} "
                         "(a label image without geometry must have the image's size)", path=path)


# -- values ------------------------------------------------------------------------------------------------
def _label_values(path: Path, data: np.ndarray) -> np.ndarray:
    """``data`` as uint16 labels, refusing what is not a label image (fractions, negatives, > 65535)."""
    if data.size == 0:
        raise ImageReadError("the mask is empty", path=path)
    if np.issubdtype(data.dtype, np.floating):
        finite = np.isfinite(data)
        if not finite.all() or not np.array_equal(data, np.round(data)):
            raise ImageReadError("the mask holds fractional values: a label image needs whole numbers",
                                 path=path)
    lo, hi = float(data.min()), float(data.max())
    if lo < 0 or hi > 65535:
        raise ImageReadError(f"label values must be 0..65535, the mask holds {lo:g}..{hi:g}", path=path)
    return np.ascontiguousarray(data, dtype=np.uint16)


def _result(data: np.ndarray, fmt: str, notes: list[str], names: dict[int, tuple[str, str]] | None = None
            ) -> ImportedMask:
    names = names or {}
    table = []
    for value in np.unique(data).tolist():
        if value:
            name, color = names.get(int(value), (f"label {value}", default_color(int(value))))
            table.append(Label(int(value), name, color))
    return ImportedMask(data=data, labels=table, format=fmt, notes=notes)


def _size(shape: tuple[int, ...]) -> str:
    z, y, x = shape
    return f"{x}x{y}" if z == 1 else f"{x}x{y}x{z}"


# -- NIfTI -------------------------------------------------------------------------------------------------
def has_geometry(image: ImageVolume) -> bool:
    """True when the image knows where its voxels are (NIfTI affine, DICOM positions and orientation)."""
    return image.metadata.get("affine") is not None


def _align_nifti(path: Path, values: np.ndarray, mask: ImageVolume, image: ImageVolume
                 ) -> tuple[np.ndarray, list[str]]:
    shape = (image.n_slices, image.height, image.width)
    if not has_geometry(image):
        if values.shape == shape:
            return values, ["taken voxel for voxel (the image has no geometry)"]
        raise ImageReadError(f"mask size {_size(values.shape)} differs from the image {_size(shape)} and the "
                             "image has no geometry to align it by", path=path)
    a_mask = np.asarray(mask.metadata["affine"], dtype=float)
    a_image = np.asarray(image.metadata["affine"], dtype=float)
    if values.shape == shape and np.allclose(a_mask, a_image, atol=1e-3):
        return values, []
    out = resample_labels(values, a_mask, a_image, shape)
    if values.any() and not out.any():
        raise ImageReadError("the mask does not overlap the image (no labelled voxel lands in the image "
                             "grid: another patient position or frame of reference?)", path=path)
    return out, [f"resampled from {_size(values.shape)} onto the image grid by the affines (nearest neighbour)"]


def resample_labels(values: np.ndarray, mask_affine: np.ndarray, image_affine: np.ndarray,
                    shape: tuple[int, int, int]) -> np.ndarray:
    """Labels ``values[z, y, x]`` on the grid of ``mask_affine`` sampled onto the image grid, nearest neighbour.

    Parameters
    ----------
    values : ndarray
        ``(z, y, x)`` labels.
    mask_affine, image_affine : (4, 4) ndarray
        ``(x, y, z)`` index -> mm of the mask and of the image.
    shape : (int, int, int)
        The image's ``(z, y, x)`` shape.

    Returns
    -------
    ndarray of uint16
        ``shape``; 0 where the image voxel's centre lies outside the mask.
    """
    from scipy import ndimage

    # image index (x, y, z) -> mm -> mask index (x, y, z), then in the arrays' (z, y, x) axis order
    xyz = np.linalg.solve(mask_affine, image_affine)
    perm = np.zeros((4, 4))
    perm[0, 2] = perm[1, 1] = perm[2, 0] = perm[3, 3] = 1.0
    zyx = perm @ xyz @ perm
    # order=0 picks the nearest voxel: label values never blend; mode constant leaves outside voxels 0
    return ndimage.affine_transform(values, zyx[:3, :3], offset=zyx[:3, 3], output_shape=shape,
                                    output=np.uint16, order=0, mode="constant", cval=0)


# -- DICOM SEG ---------------------------------------------------------------------------------------------
def _is_seg(path: Path) -> bool:
    import pydicom

    with decoding(path, "DICOM file"):
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True,
                             specific_tags=["SOPClassUID", "Modality"])
    return str(ds.get("SOPClassUID", "")) == SEG_SOP_CLASS or str(ds.get("Modality", "")) == "SEG"


def _read_seg(path: Path, image: ImageVolume) -> ImportedMask:
    import highdicom as hd

    with decoding(path, "DICOM SEG"):
        seg = hd.seg.segread(str(path))
        frames = np.asarray(seg.pixel_array)
        if frames.ndim == 2:
            frames = frames[np.newaxis]
        groups = list(seg.PerFrameFunctionalGroupsSequence)
        segments = {int(s.SegmentNumber): s for s in seg.SegmentSequence}
        fractional = str(seg.get("SegmentationType", "BINARY")) == "FRACTIONAL"
        maximum = float(seg.get("MaximumFractionalValue", 1) or 1)
    shape = (image.n_slices, image.height, image.width)
    if frames.shape[1:] != shape[1:]:
        raise ImageReadError(f"SEG frames of {frames.shape[2]}x{frames.shape[1]} do not match the image "
                             f"{shape[2]}x{shape[1]}", path=path)
    slices, how = _seg_slices(path, seg, groups, image)
    out = np.zeros(shape, dtype=np.uint16)
    for frame, group, z in zip(frames, groups, slices):
        number = _segment_number(path, seg, group)
        on = frame >= 0.5 * maximum if fractional else frame > 0
        out[z][on] = number  # overlapping segments: the higher frame wins (a label map holds one per voxel)
    names: dict[int, tuple[str, str]] = {}
    for number, item in segments.items():
        color = default_color(number)
        if "RecommendedDisplayCIELabValue" in item:
            with decoding(path, "segment colour"):
                r, g, b = hd.color.CIELabColor.from_dicom_value(
                    list(item.RecommendedDisplayCIELabValue)).to_rgb()
                color = f"#{int(r):02x}{int(g):02x}{int(b):02x}"
        names[number] = (str(item.get("SegmentLabel") or f"segment {number}"), color)
    result = _result(out, "DICOM SEG", [how] if how else [], names)
    missing = [n for n in segments if n not in {lab.value for lab in result.labels}]
    if missing:
        result.notes.append(f"segments {', '.join(map(str, missing))} are empty on this series")
    return result


def _seg_slices(path: Path, seg: Any, groups: list[Any], image: ImageVolume) -> tuple[list[int], str]:
    """The image slice of each SEG frame and how it was found (``""`` by reference, else a note): by
    referenced instance (and frame), else by frame of reference + position, else by geometry alone."""
    uids = [str(u) for u in image.metadata.get("sop_instance_uids") or []]
    index = {u: k for k, u in enumerate(uids)}
    multiframe = len(uids) == 1 and image.n_slices > 1
    by_reference: list[int] = []
    for group in groups:
        ref = _frame_reference(group)
        if ref is None or ref[0] not in index:
            break
        uid, frame = ref
        by_reference.append((frame - 1) if multiframe else index[uid])
    if len(by_reference) == len(groups) and all(0 <= z < image.n_slices for z in by_reference):
        return by_reference, ""
    own_for = str(image.metadata.get("FrameOfReferenceUID") or "")
    seg_for = str(seg.get("FrameOfReferenceUID", ""))
    if not has_geometry(image) or not own_for or seg_for != own_for:
        # A SEG exported de-identified (Workbench's default) references remapped UIDs and frame of reference:
        # the only link left to the identified series is where its frames lie.
        slices, why = _slices_by_geometry(path, seg, groups, image)
        if slices is None:
            raise ImageReadError("the SEG references none of the open series' instances, is not in its frame "
                                 f"of reference and its geometry differs ({why}): it belongs to another series",
                                 path=path)
        count = f"{len(groups)} frame{'s' if len(groups) != 1 else ''}"
        return slices, (f"matched by geometry: {count} on the slices at the same position, "
                        "orientation and pixel spacing (the SEG's UIDs differ, e.g. de-identified)")
    inverse = np.linalg.inv(np.asarray(image.metadata["affine"], dtype=float))
    slices = []
    for group in groups:
        try:
            lps = [float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient]
        except (AttributeError, IndexError, KeyError):
            raise ImageReadError("a SEG frame has no position to match the open series by", path=path) from None
        x, y, z = (inverse @ np.array([-lps[0], -lps[1], lps[2], 1.0]))[:3]  # LPS -> RAS -> image index
        k = int(round(z))
        if abs(x) > 0.5 or abs(y) > 0.5 or abs(z - k) > 0.25 or not 0 <= k < image.n_slices:
            raise ImageReadError(f"a SEG frame at {lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f} mm lies on no slice "
                                 "of the open series", path=path)
        slices.append(k)
    return slices, ""


#: geometry match tolerances: direction cosines, pixel spacing (relative), position (fraction of the spacing)
_COSINE_TOL, _SPACING_TOL, _POSITION_TOL = 1e-3, 1e-3, 0.1


def _functional(seg: Any, group: Any, sequence: str, attribute: str) -> Any:
    """``attribute`` of a functional group macro, per-frame first, then shared (PS3.3 C.7.6.16)."""
    for holder in (group, *list(seg.get("SharedFunctionalGroupsSequence") or [])[:1]):
        items = holder.get(sequence) if holder is not None else None
        if items and attribute in items[0]:
            return items[0].get(attribute)
    return None


def _segment_number(path: Path, seg: Any, group: Any) -> int:
    """The segment a frame belongs to (per frame, or shared when the SEG holds one segment)."""
    number = _functional(seg, group, "SegmentIdentificationSequence", "ReferencedSegmentNumber")
    if number is None:
        raise ImageReadError("a SEG frame names no segment (no Segment Identification)", path=path)
    return int(number)


def _slices_by_geometry(path: Path, seg: Any, groups: list[Any], image: ImageVolume) -> tuple[list[int] | None, str]:
    """The slice of every SEG frame by position + orientation + pixel spacing + size alone, or ``(None, why)``.

    Accepted only when every frame lies on exactly one slice of the open series (within a tenth of the
    pixel/slice spacing) with the same orientation and spacing, and no segment has two frames on one slice.
    """
    own = image.metadata.get("image_positions") or []
    if len(own) != image.n_slices:
        own = image.metadata.get("frame_positions") or []
    own_iop = image.metadata.get("image_orientation")
    if (len(own) != image.n_slices or any(p is None for p in own) or own_iop is None
            or not image.spacing_known):
        return None, "the open series has no per-slice positions"
    if (int(seg.Rows), int(seg.Columns)) != (image.height, image.width):
        return None, f"frames of {int(seg.Columns)}x{int(seg.Rows)}, slices of {image.width}x{image.height}"
    positions = np.asarray(own, dtype=float)
    dz, dy, dx = (float(v) for v in image.spacing)
    tol = _POSITION_TOL * min(v for v in (dz, dy, dx) if v > 0)
    seen: set[tuple[int, int]] = set()
    slices = []
    for n, group in enumerate(groups, start=1):
        iop, spacing = (_functional(seg, group, "PlaneOrientationSequence", "ImageOrientationPatient"),
                        _functional(seg, group, "PixelMeasuresSequence", "PixelSpacing"))
        ipp = _functional(seg, group, "PlanePositionSequence", "ImagePositionPatient")
        if iop is None or spacing is None or ipp is None:
            return None, f"frame {n} has no position, orientation or pixel spacing"
        if np.abs(np.asarray(iop, float) - np.asarray(own_iop, float)).max() > _COSINE_TOL:
            return None, f"frame {n} has another orientation"
        if not np.allclose(np.asarray(spacing, float), (dy, dx), rtol=_SPACING_TOL, atol=1e-6):
            return None, (f"frame {n} has pixel spacing {float(spacing[0]):g} x {float(spacing[1]):g} mm, "
                          f"the series {dy:g} x {dx:g} mm")
        distance = np.linalg.norm(positions - np.asarray(ipp, float), axis=1)
        near = np.flatnonzero(distance <= tol)
        if len(near) != 1:
            where = ", ".join(f"{float(v):.1f}" for v in ipp)
            return None, (f"frame {n} at {where} mm lies on no slice" if not len(near)
                          else f"frame {n} at {where} mm lies on {len(near)} slices")
        number = _segment_number(path, seg, group)
        if (number, int(near[0])) in seen:
            return None, f"two frames of segment {number} lie on slice {int(near[0]) + 1}"
        seen.add((number, int(near[0])))
        slices.append(int(near[0]))
    return slices, ""


def _frame_reference(group: Any) -> tuple[str, int] | None:
    """``(SOP Instance UID, frame number)`` a SEG frame was derived from, or ``None``."""
    try:
        source = group.DerivationImageSequence[0].SourceImageSequence[0]
    except (AttributeError, IndexError, KeyError):
        return None
    frames = source.get("ReferencedFrameNumber")
    if frames is None:
        frame = 1
    else:  # one number, or a list of them (pydicom MultiValue)
        frame = int(frames) if isinstance(frames, (int, float, str)) else int(list(frames)[0])
    return str(source.ReferencedSOPInstanceUID), frame


__all__ = ["ImportedMask", "read_mask", "resample_labels", "has_geometry", "MASK_SUFFIXES"]
