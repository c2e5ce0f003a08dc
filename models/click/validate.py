"""Diagnosis and model choice on training-side data only: ``python -m models.click.validate [model.onnx ...]``.

The held-out set's protocol (first click at the deepest point, corrections at the largest error) after 1
and 3 clicks, for the model (through the app's engine), region grow and GrabCut (the evaluation's tuned
parameters), on two kinds of objects that are not held out:

- the tissue components (>= 300 px, the held-out set's rule) of eight axial MNI152 slices *outside* the
  held-out slab and its margin and off the training step (per kind: brain, CSF, grey, white matter);
- synthetic objects drawn by the training generator on the training backgrounds (fixed seed).

With paired bootstrap intervals of the model's lead over each baseline. This is where the recipe and the
prompt parameters are chosen (``--prompt first_size=384``), so that the held-out set is never looked at
while tuning. Needs nilearn (the MNI volume), not torch.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from workbench.inference.promptable.simulate import run_protocol

from ..common.data import HELD_OUT_SLAB, MARGIN, REPO, mni_volume, radiological_axial, train_images
from .common import normalize
from .data import Shapes, components, synthetic_scene, to_bits
from .evaluate import engine_predictor, grabcut_predictor, grow_predictor, paired_table, plugin_for

# axial, outside HELD_OUT_SLAB and its margin, and none a training slice (those are every 3rd from each
# training range's start: models/click/data.py MniObjects)
VALIDATION_Z = (50, 56, 62, 64, 101, 104, 110, 116)
KINDS = {1: "CSF", 2: "grey matter", 3: "white matter"}
SYNTHETIC_OBJECTS = 30
SYNTHETIC_SEED = 4242
CLICKS = 3


def validation_objects() -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """``(name, kind, 8/16-bit image, mask)``: the MNI objects, built like the held-out ones, then the
    synthetic objects on training backgrounds."""
    from ..brain_tissue.common import tissue_labels

    lo, hi = HELD_OUT_SLAB
    assert all(not lo - MARGIN <= k < hi + MARGIN for k in VALIDATION_Z)
    assert all(k % 3 != 0 if k < lo else (k - hi - MARGIN) % 3 != 0 for k in VALIDATION_Z)
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
            out.append((f"mni_z{k}#{i}", kind, bits, m))
    rng = np.random.default_rng(SYNTHETIC_SEED)
    images, shapes = train_images(), Shapes()
    for i in range(SYNTHETIC_OBJECTS):
        img, mask = synthetic_scene(rng, images, shapes)
        out.append((f"synthetic#{i}", "synthetic", to_bits(rng, img), mask))
    return out


def groups_of(objects) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {"all": [o[0] for o in objects],
                                    "MNI (all kinds)": [o[0] for o in objects if o[1] != "synthetic"]}
    for name, kind, _, _ in objects:
        groups.setdefault(kind, []).append(name)
    return groups


def curves_of(predict, objects, *, raw: bool) -> dict[str, list[float]]:
    out = {}
    for name, _, img, m in objects:
        plane = img if raw else normalize(img)
        out[name] = run_protocol(lambda p, prev, plane=plane: predict(plane, p, prev), m, CLICKS)
    return out


def baseline_curves(objects) -> dict[str, dict[str, list[float]]]:
    base = json.loads((Path(__file__).with_name("metrics.json")).read_text())["baselines"]
    return {"region_grow": curves_of(grow_predictor(base["region_grow_tolerance"]), objects, raw=False),
            "grabcut": curves_of(grabcut_predictor(base["grabcut_margin"]), objects, raw=False)}


def model_curves(onnx_path: Path, objects, prompt: dict | None = None) -> dict[str, list[float]]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return curves_of(engine_predictor(plugin_for(onnx_path, Path(tmp), prompt)), objects, raw=True)


def table(per: dict[str, dict[str, list[float]]], groups: dict[str, list[str]]) -> dict:
    """Mean IoU after 1 and 3 clicks per method and group, and the model's paired leads."""
    means = {g: {"objects": len(names), **{
        f"{m} iou@{k}": round(float(np.mean([c[n][k - 1] for n in names])), 4)
        for m, c in per.items() for k in (1, CLICKS)}} for g, names in groups.items()}
    paired = paired_table(per, groups)
    return {g: {**means[g], "paired": paired[g]} for g in groups}


def parse_prompt(items: list[str]) -> dict:
    out = {}
    for it in items:
        k, v = it.split("=", 1)
        out[k] = float(v) if "." in v else int(v)
    return out


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, default=[REPO / "plugins/click/model.onnx"])
    ap.add_argument("--prompt", action="append", default=[], metavar="KEY=VALUE",
                    help="override a prompt parameter of plugin.yaml (first_size, context, min_size...); "
                         "several --prompt sets are tried one after the other when separated by ';'")
    ap.add_argument("--json", type=Path, help="also write the tables to this file")
    args = ap.parse_args(argv)
    objects = validation_objects()
    groups = groups_of(objects)
    base = baseline_curves(objects)
    sets = [parse_prompt([x for x in s.split(",") if x]) for s in ";".join(args.prompt).split(";")] \
        if args.prompt else [{}]
    report = {}
    for p in args.models:
        for ps in sets:
            res = table({"model": model_curves(p, objects, ps), **base}, groups)
            key = f"{p} {json.dumps(ps)}"
            report[key] = res
            print(key, flush=True)
            for g, row in res.items():
                pr = row["paired"]
                print(f"  {g:16s} n={row['objects']:3d} model {row['model iou@1']:.3f}/{row['model iou@3']:.3f} "
                      f"grow {row['region_grow iou@1']:.3f}/{row['region_grow iou@3']:.3f} "
                      f"grabcut {row['grabcut iou@1']:.3f}/{row['grabcut iou@3']:.3f} | vs grow @1 "
                      f"{pr['iou@1 vs region_grow']['mean']:+.3f} {pr['iou@1 vs region_grow']['ci95']} @3 "
                      f"{pr['iou@3 vs region_grow']['mean']:+.3f} {pr['iou@3 vs region_grow']['ci95']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
