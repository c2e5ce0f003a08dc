"""The document's rules for writing into a label map, shared by the GUI tools, the docks and the CLI.

Every function here writes through :meth:`LabelMap.edit`, so each call is one undo step, and none of them
knows about widgets: a tool or dock gathers its options and calls one of these.

- :func:`paint_rule`: which pixels a brush / polygon / tool result may overwrite (painting or erasing);
- :func:`write_mask`: a mask painted with a label, and inside an ROI what the mask drops cleared;
- :func:`split_label`: every island of a label its own label;
- :func:`merge_segmentation`: a model's segmentation written into the label map with a policy;
- :func:`import_mask`: an imported mask (:func:`workbench.io.mask_import.read_mask`) and its labels.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .errors import ProcessingError
from .labels import Label, LabelMap, default_color

#: ``overwrite`` rules of :meth:`~workbench.core.labels.LabelEdit.paint` a user can choose.
OVERWRITE_MODES = ("any", "background", "selected")
#: ``policy`` values of :func:`merge_segmentation`.
MERGE_POLICIES = ("merge", "replace")
#: a split into more labels than this is refused (the label table would be unusable)
MAX_SPLIT_LABELS = 1000


def paint_rule(label: int, overwrite: str, mask_label: int, *, erase: bool) -> tuple[int, str, int | None]:
    """The ``(value, overwrite, selected)`` arguments of :meth:`LabelEdit.paint` for painting or erasing.

    Parameters
    ----------
    label : int
        The current label.
    overwrite : {"any", "background", "selected"}
        Painting: over any label / only over background / over background and label ``mask_label``.
        Erasing: any label / only the current label / only label ``mask_label``.
    mask_label : int
        The label of the ``"selected"`` rule.
    erase : bool
        Erase (write 0) instead of painting ``label``.
    """
    if overwrite not in OVERWRITE_MODES:
        raise ValueError(f"overwrite must be one of {', '.join(OVERWRITE_MODES)}, got {overwrite!r}")
    if not erase:
        return label, overwrite, (mask_label if overwrite == "selected" else None)
    if overwrite == "any":
        return 0, "any", None
    # erasing value 0 with the "selected" rule removes exactly that one label
    return 0, "selected", (label if overwrite == "background" else mask_label)


def write_mask(labels: LabelMap, mask: np.ndarray, *, name: str, value: int, overwrite: str = "any",
               selected: int | None = None, z: int | None = None, roi: np.ndarray | None = None) -> int:
    """Paint ``mask`` with ``value`` as one undo step; inside ``roi`` also clear the ``value`` pixels ``mask`` drops.

    Parameters
    ----------
    labels : LabelMap
    mask : ndarray of bool
        A ``(y, x)`` plane (``z`` given) or the whole ``(z, y, x)`` stack.
    name : str
        The undo step's name.
    value, overwrite, selected
        As :func:`paint_rule` returns them.
    z : int, optional
        The slice of a plane mask.
    roi : ndarray of bool, optional
        Same shape as ``mask``: the region the operation worked in (threshold within the label): there the
        label becomes exactly ``mask``.

    Returns
    -------
    int
        The pixels of ``value`` afterwards on slice ``z`` (or in the stack).
    """
    h, w = labels.shape[1], labels.shape[2]
    if z is not None:
        planes = [(z, mask, roi)]
    else:
        planes = [(k, mask[k], roi[k] if roi is not None else None) for k in range(labels.shape[0])]
    with labels.edit(name) as e:
        # slice by slice: temporaries stay one plane in size
        for k, new, inside in planes:
            box = (slice(k, k + 1), slice(0, h), slice(0, w))
            if inside is not None and inside.any():
                e.paint(box, (inside & ~new)[np.newaxis], 0, overwrite="selected", selected=value)
            if new.any():
                e.paint(box, new[np.newaxis], value, overwrite=overwrite, selected=selected)
    where = labels.data[z] if z is not None else labels.data
    return int(np.count_nonzero(where == value))


def split_label(labels: LabelMap, value: int, components: np.ndarray, n: int, *, z: int | None = None) -> int:
    """Give every island of label ``value`` its own label, as one undo step (the first keeps ``value``).

    Parameters
    ----------
    labels : LabelMap
    value : int
        The label split.
    components : ndarray of int
        The islands numbered ``1..n`` (0 elsewhere), a ``(y, x)`` plane of slice ``z`` or the whole stack:
        :func:`workbench.processing.label_components` of the label's mask.
    n : int
        The number of islands.
    z : int, optional
        The slice of a plane.

    Returns
    -------
    int
        ``n``: the number of labels the label became.

    Raises
    ------
    ProcessingError
        More than :data:`MAX_SPLIT_LABELS` islands, or not enough free label values.
    """
    if n > MAX_SPLIT_LABELS:
        raise ProcessingError(f"{n} islands: remove the small ones first (at most {MAX_SPLIT_LABELS} labels)")
    used = set(labels.labels) | set(np.unique(labels.data).tolist())
    values = [int(value)]
    candidate = 1
    while len(values) < n:
        if candidate not in used:
            values.append(candidate)
        candidate += 1
        if candidate > 65535:
            raise ProcessingError("split: no free label values left")
    base = labels.labels.get(int(value))
    lut = np.zeros(n + 1, dtype=np.uint16)
    lut[1:] = values
    new_values = lut[components]
    mask = components > 0
    for i, v in enumerate(values[1:], start=2):
        labels.ensure_label(v, f"{base.name if base else 'label'} ({i})")
    if z is None:
        box = (slice(0, labels.shape[0]), slice(0, labels.shape[1]), slice(0, labels.shape[2]))
        current = labels.data
    else:
        box = (slice(z, z + 1), slice(0, labels.shape[1]), slice(0, labels.shape[2]))
        new_values, mask, current = new_values[np.newaxis], mask[np.newaxis], labels.data[z:z + 1]
    with labels.edit(f"Split label {value} into {n}") as e:
        e.assign(box, np.where(mask, new_values, current))
    return n


class _Class(Protocol):
    value: int
    name: str
    color: str


def merge_segmentation(labels: LabelMap, mask: np.ndarray, classes: Sequence[_Class], *, policy: str,
                       name: str) -> None:
    """Write a segmentation mask into the label map as one undo step.

    Parameters
    ----------
    labels : LabelMap
    mask : ndarray of uint
        ``(z, y, x)`` (or ``(y, x)`` for one plane) label values, the label map's shape.
    classes : sequence
        ``value``, ``name``, ``color`` of each class: added to the label table where missing.
    policy : {"merge", "replace"}
        ``"merge"`` writes the mask only where the label map is 0, so manual edits are never overwritten;
        ``"replace"`` overwrites the label map.
    name : str
        The undo step's name.

    Raises
    ------
    ProcessingError
        The mask's shape is not the label map's, or an unknown policy.
    """
    if policy not in MERGE_POLICIES:
        raise ProcessingError(f"segmentation policy must be merge or replace, got {policy!r}")
    mask = np.asarray(mask)
    if mask.ndim == 2:
        mask = mask[np.newaxis]
    if mask.shape != labels.shape:
        raise ProcessingError(f"mask shape {mask.shape} does not match the image {labels.shape}")
    for cls in classes:
        if cls.value > 0:
            labels.ensure_label(cls.value, cls.name, cls.color)
    h, w = labels.shape[1], labels.shape[2]
    with labels.edit(name) as edit:
        for z in range(labels.shape[0]):  # slice by slice: temporaries stay one plane in size
            plane = mask[z].astype(np.uint16, copy=False)
            box = (slice(z, z + 1), slice(0, h), slice(0, w))
            if policy == "replace":
                edit.assign(box, plane[np.newaxis])
            elif plane.any():
                current = labels.data[z]
                edit.assign(box, np.where(current == 0, plane, current)[np.newaxis])


def import_mask(labels: LabelMap, mask: np.ndarray, entries: Sequence[Label], *, overwrite: bool = False,
                name: str = "Import mask") -> dict[int, int]:
    """Write an imported mask and its label table entries into the label map as one undo step.

    A file value keeps its number when no pixel carries it and the table has no entry of that number other
    than a default one (``"label N"``); otherwise it becomes the next free value, so the labels already in
    the document keep their names, colours and pixels.

    Parameters
    ----------
    labels : LabelMap
    mask : ndarray of uint
        ``(z, y, x)`` values of the file on the label map's grid (0 = none).
    entries : sequence of Label
        The file's name and colour of each value in ``mask``.
    overwrite : bool
        False (default): the mask is written only where the label map is 0, so manual labels are never
        overwritten; True: the mask's pixels replace whatever label was there (elsewhere nothing changes).
    name : str
        The undo step's name.

    Returns
    -------
    dict
        File value -> label value it was written as.

    Raises
    ------
    ProcessingError
        The mask's shape is not the label map's, or no free label values are left.
    """
    mask = np.asarray(mask)
    if mask.ndim == 2:
        mask = mask[np.newaxis]
    if mask.shape != labels.shape:
        raise ProcessingError(f"mask shape {mask.shape} does not match the image {labels.shape}")
    present = set(np.unique(mask).tolist()) - {0}
    by_value = {int(e.value): e for e in entries}
    in_data = set(np.unique(labels.data).tolist())
    taken = in_data | {v for v, lab in labels.labels.items() if lab.name != f"label {v}"}
    mapping: dict[int, int] = {}
    candidate = 1
    for value in sorted(present):
        if value not in taken:
            target = value
        else:
            while candidate in taken or candidate in present or candidate in labels.labels:
                candidate += 1
            if candidate > 65535:
                raise ProcessingError("import mask: no free label values left")
            target = candidate
        taken.add(target)
        mapping[int(value)] = target
    table = []
    for value, target in mapping.items():
        entry = by_value.get(value)
        table.append(Label(target, entry.name if entry else f"label {target}",
                           entry.color if entry else default_color(target)))
    lut = np.zeros(int(max(present, default=0)) + 1, dtype=np.uint16)
    for value, target in mapping.items():
        lut[value] = target
    h, w = labels.shape[1], labels.shape[2]
    with labels.undo.group(name):
        labels.put_labels(table, name)
        with labels.edit(name) as edit:
            for z in range(labels.shape[0]):  # slice by slice: temporaries stay one plane in size
                plane = lut[mask[z]]
                write = plane > 0
                if not overwrite:
                    write &= labels.data[z] == 0
                if write.any():
                    box = (slice(z, z + 1), slice(0, h), slice(0, w))
                    edit.assign(box, np.where(write, plane, labels.data[z])[np.newaxis])
    return mapping


__all__ = ["OVERWRITE_MODES", "MERGE_POLICIES", "MAX_SPLIT_LABELS", "paint_rule", "write_mask", "split_label",
           "merge_segmentation", "import_mask"]
