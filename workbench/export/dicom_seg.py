"""DICOM Segmentation (SEG) export of a label map drawn on a DICOM image, with highdicom.

The SEG references the source instances (SOP Instance UIDs, frame of reference, patient and study of the
source series), so a PACS or viewer (3D Slicer, OHIF) shows it on top of the original images. Each label
value present in the map becomes one segment (segment numbers 1..N in ascending label value, since SEG
requires them contiguous); the segment label is the label's name from the label table and its colour the
recommended display colour. The source headers are the ones the reader parsed and kept
(``metadata["dicom_headers"]``, one per instance, pixel data never read): nothing is parsed again.

highdicom (MIT) builds and validates the IOD; hand-writing a SEG is the kind of code this project does not
want (bit-packed frames, functional groups, derivation references).
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import __version__
from ..core.errors import ExportError
from ..core.image import ImageVolume
from ..core.labels import color_to_rgb, default_color
from ..io.atomic import atomic_path

SEG_SUFFIXES = (".dcm",)
# Type 2 attributes of the patient and study modules highdicom copies from the source: present but
# possibly empty. Synthetic or de-identified sources often omit them entirely.
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")


def is_dicom_source(image: ImageVolume) -> bool:
    """True when the image was read from DICOM and its source headers are known."""
    meta = image.metadata
    return str(meta.get("format", "")).upper() == "DICOM" and bool(meta.get("sop_instance_uids"))


def _source_datasets(image: ImageVolume, path: Path) -> list[Any]:
    """Pixel-free copies of the source instances' headers, which the reader kept in the image's metadata."""
    from ..io.dicom.volume import header_copy

    meta = image.metadata
    uids = list(meta.get("sop_instance_uids") or [])
    headers = list(meta.get("dicom_headers") or [])
    if len(headers) == len(uids) and headers:
        datasets = [header_copy(ds) for ds in headers]
    elif meta.get("dicom_header") is not None and len(uids) == 1:
        datasets = [header_copy(meta["dicom_header"])]
    else:
        raise ExportError("DICOM SEG needs the source DICOM headers; the image's metadata does not hold them "
                          "(re-open the image from its DICOM files)", path=path)
    for ds in datasets:
        for keyword in _TYPE2:
            if keyword not in ds:
                setattr(ds, keyword, "")
    return datasets


def write_dicom_seg(path: str | Path, labels: np.ndarray, image: ImageVolume, *,
                    names: Mapping[int, str] | None = None, colors: Mapping[int, str] | None = None,
                    description: str = "Workbench label map", algorithm: Sequence[Mapping[str, Any]] = (),
                    keep_identity: bool = False, salt: str | bytes | None = None) -> Path:
    """Write ``labels`` (the label map of ``image``) as a DICOM SEG file, atomically.

    Parameters
    ----------
    path : str or Path
        Target ``.dcm`` file.
    labels : ndarray
        ``(z, y, x)`` integer label map with ``image``'s shape (0 = background).
    image : ImageVolume
        The DICOM image the labels were drawn on (read by :func:`workbench.io.read_image`).
    names, colors : mapping, optional
        Label value -> name / ``#rrggbb`` (the label table).
    description : str
        SeriesDescription of the SEG.
    algorithm : sequence of mapping, optional
        Model runs behind the labels (``plugin_name``, ``plugin_version``): with any, the segments are
        marked SEMIAUTOMATIC and the algorithm is identified; otherwise MANUAL.
    keep_identity : bool
        Default False: the source headers are de-identified first (:func:`workbench.export.deid.
        deidentify_dataset`, PS3.15 Basic Profile: names, IDs, dates, institution, descriptions removed or
        emptied, PatientIdentityRemoved YES, every instance UID replaced by a keyed hash, so the SEG
        references the de-identified copies of the same series consistently). True copies the patient and
        study identity and references the original UIDs: for sending the SEG back to the source PACS.
    salt : str or bytes, optional
        Key of the pseudonym and the replacement UIDs (default: the installation's salt); the same salt
        gives the same UIDs as a de-identified export of the source images.

    Returns
    -------
    Path

    Raises
    ------
    ExportError
        Not a DICOM image, an empty label map, a shape mismatch, missing source files, or highdicom refused
        the input.
    """
    try:
        import highdicom as hd
        from pydicom.sr.codedict import codes
    except ImportError as exc:  # optional dependency
        raise ExportError("DICOM SEG export needs the 'highdicom' package (pip install highdicom)",
                          path=path) from exc

    if keep_identity:
        from ..core.site import site_policy

        site = site_policy()
        if site.always_deidentify:  # issue 20: the site file's de-identification policy
            raise ExportError("keeping the patient identity in a DICOM SEG is not allowed by the site "
                              "configuration (deidentify = \"always\")", path=site.path)
    path = Path(path)
    if not is_dicom_source(image):
        raise ExportError("DICOM SEG needs an image read from DICOM; use .nii.gz, .tif or .png", path=path)
    lab = np.asarray(labels)
    if lab.ndim == 2:
        lab = lab[np.newaxis]
    if lab.shape != tuple(image.shape[:3]):
        raise ExportError(f"label map {lab.shape} differs from the image {tuple(image.shape[:3])}", path=path)
    values = [int(v) for v in np.unique(lab) if v != 0]
    if not values:
        raise ExportError("the label map is empty: a DICOM SEG needs at least one labelled pixel", path=path)
    sources = _source_datasets(image, path)
    if not keep_identity:
        from .deid import deidentify_dataset

        sources = [deidentify_dataset(ds, salt=salt) for ds in sources]
        for ds in sources:
            name = str(ds.get("PatientName", "") or "")
            if name and "^" not in name:
                ds.PatientName = name + "^"  # the pseudonym as a family name (one PN component)
            for keyword in _TYPE2:
                if keyword not in ds:
                    setattr(ds, keyword, "")
    if len(sources) == 1 and int(getattr(sources[0], "NumberOfFrames", 1) or 1) != lab.shape[0]:
        raise ExportError(f"source has {getattr(sources[0], 'NumberOfFrames', 1)} frames, the label map "
                          f"{lab.shape[0]} slices", path=path)
    if len(sources) > 1 and len(sources) != lab.shape[0]:
        raise ExportError(f"{len(sources)} source files for {lab.shape[0]} slices", path=path)
    names = names or {}
    colors = colors or {}
    runs = [dict(a) for a in algorithm]
    if runs:
        algo_type = hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
        first = runs[0]
        algo_id = hd.AlgorithmIdentificationSequence(
            name=str(first.get("plugin_name") or first.get("plugin_id") or "model")[:64],
            version=str(first.get("plugin_version") or "unknown")[:64],
            family=codes.cid7162.ArtificialIntelligence)
    else:
        algo_type = hd.seg.SegmentAlgorithmTypeValues.MANUAL
        algo_id = None
    descriptions = []
    remapped = np.zeros(lab.shape, dtype=np.uint16 if len(values) > 255 else np.uint8)
    for number, value in enumerate(values, start=1):
        remapped[lab == value] = number
        rgb = color_to_rgb(colors.get(value) or default_color(value))
        kwargs: dict[str, Any] = {}
        if algo_id is not None:
            kwargs["algorithm_identification"] = algo_id
        desc = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=str(names.get(value) or f"label {value}")[:64],
            # generic codes: the label table holds free-text names, not coded anatomy
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=algo_type,
            display_color=hd.color.CIELabColor.from_rgb(*rgb),
            **kwargs)
        descriptions.append(desc)
    try:
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=remapped,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=9901,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="Workbench",
            manufacturer_model_name="Workbench",
            software_versions=__version__,
            device_serial_number="0",
            series_description=description[:64],
            content_description="label map"[:64],
            content_creator_name="Workbench^",  # a DICOM person name: family^given
            content_date=_dt.date.today(),
        )
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ExportError(f"highdicom cannot build the SEG ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})", path=path) from exc
    if not keep_identity:
        seg.PatientIdentityRemoved = "YES"
        seg.DeidentificationMethod = sources[0].DeidentificationMethod
        seg.LongitudinalTemporalInformationModified = sources[0].LongitudinalTemporalInformationModified
    try:
        with atomic_path(path) as tmp:
            seg.save_as(tmp)
    except OSError as exc:
        raise ExportError(f"cannot write ({exc.strerror or exc})", path=path) from exc
    return path


def read_dicom_seg_labels(path: str | Path, image: ImageVolume, *,
                          salt: str | bytes | None = None) -> tuple[np.ndarray, dict[int, str]]:
    """Read a SEG back as a ``(z, y, x)`` array of segment numbers in the order of ``image``'s slices, and
    the segment labels by number (for tests and round trips).

    Raises
    ------
    ExportError
        The file is not a readable SEG of this image.
    """
    import highdicom as hd

    path = Path(path)
    try:
        seg = hd.seg.segread(str(path))
        uids = list(image.metadata.get("sop_instance_uids") or [])
        if str(getattr(seg, "PatientIdentityRemoved", "")) == "YES":
            from .deid import replacement_uid  # a de-identified SEG references the keyed-hash UIDs

            uids = [replacement_uid(u, salt=salt) for u in uids]
        if len(uids) == 1 and image.n_slices > 1:
            arr = seg.get_pixels_by_source_frame(source_sop_instance_uid=uids[0],
                                                 source_frame_numbers=list(range(1, image.n_slices + 1)),
                                                 combine_segments=True)
        else:
            arr = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    except (ValueError, KeyError, AttributeError, OSError) as exc:
        raise ExportError(f"not a readable DICOM SEG of this image ({exc})", path=path) from exc
    names = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    return np.asarray(arr), names
