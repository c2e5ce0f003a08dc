"""Diagnosis on training-side data only: ``python -m models.click.validate [model.onnx ...]``.

IoU after the first click of the model (through the app's engine) and of region grow (the baseline's
tolerance) on the tissue components (>= 300 px, the held-out set's rule) of four axial MNI152 slices
*outside* the held-out slab and its margin, per kind (brain, CSF, grey, white matter). This is where the
1-click weakness on large MNI objects was diagnosed and where a change to the recipe is checked, so that
the held-out slab is never looked at while tuning. Needs nilearn (the MNI volume), not torch.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from workbench.inference.promptable.prompts import Prompt
from workbench.inference.promptable.simulate import first_click, iou

from ..common.data import HELD_OUT_SLAB, REPO, mni_volume, radiological_axial
from .common import normalize
from .data import components
from .evaluate import engine_predictor, grow_predictor, plugin_for

VALIDATION_Z = (56, 62, 104, 110)  # axial, outside HELD_OUT_SLAB and its 4-voxel margin
KINDS = {1: "CSF", 2: "grey matter", 3: "white matter"}


def validation_objects() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(kind, 8/16-bit image, mask)`` built like the held-out MNI objects, from the validation slices."""
    from ..brain_tissue.common import tissue_labels

    lo, hi = HELD_OUT_SLAB
    assert all(not lo - 4 <= k < hi + 4 for k in VALIDATION_Z)
    t1, gm, wm = mni_volume("t1"), mni_volume("gm"), mni_volume("wm")
    lab = tissue_labels(t1, gm, wm)
    out = []
    for k in VALIDATION_Z:
        im, lb = radiological_axial(t1, k), radiological_axial(lab, k)
        for i, m in enumerate(c for c in components(lb) if c.sum() >= 300):
            vals = np.unique(lb[m])
            kind = "brain" if len(vals) > 1 else KINDS[int(vals[0])]
            bits = np.round(im * 255).astype(np.uint8) if i % 2 == 0 else \
                np.round(im * 40000 + 1000).astype(np.uint16)
            out.append((kind, bits, m))
    return out


def first_click_ious(onnx_path: Path, objects, tolerance: float) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model = engine_predictor(plugin_for(onnx_path, Path(tmp)))
        grow = grow_predictor(tolerance)
        per: dict[str, list[tuple[float, float]]] = {}
        for kind, img, m in objects:
            p = Prompt([first_click(m)])
            per.setdefault(kind, []).append((iou(model(img, p, None), m), iou(grow(normalize(img), p, None), m)))
    rows = {k: dict(zip(("model", "region_grow"), np.mean(v, 0).round(4).tolist()), objects=len(v))
            for k, v in per.items()}
    allv = [x for v in per.values() for x in v]
    rows["all"] = dict(zip(("model", "region_grow"), np.mean(allv, 0).round(4).tolist()), objects=len(allv))
    return rows


def main(argv=None) -> None:
    paths = [Path(a) for a in (argv or [])] or [REPO / "plugins/click/model.onnx"]
    tol = json.loads((Path(__file__).with_name("metrics.json")).read_text())["baselines"]["region_grow_tolerance"]
    objects = validation_objects()
    for p in paths:
        print(p, json.dumps(first_click_ious(p, objects, tol), indent=1), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
