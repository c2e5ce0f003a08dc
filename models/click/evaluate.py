"""Held-out evaluation of the click model in the standard interactive protocol, against two classical
baselines from the same simulated clicks: the project's region grow (``workbench.processing``; tolerance
chosen on training scenes) and OpenCV GrabCut from the box of the include clicks (margin chosen on training
scenes), both with the clicks as hard seeds. ``python -m models.click.evaluate [model.onnx]`` prints it.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from workbench.core.image import ImageVolume
from workbench.inference.promptable.run import PromptResult, PromptSession
from workbench.inference.promptable.simulate import run_protocol, summarize
from workbench.inference.spec import load_plugin
from workbench.processing.region_grow import region_grow

from ..common.export import onnx_latency_ms, sha256_file, write_plugin_yaml
from .common import SIZE, normalize
from .data import TrainScenes, heldout_scenes
from .plugin import manifest

cv2.setNumThreads(1)

MAX_CLICKS = 20
TOLERANCES = (0.04, 0.08, 0.12, 0.16, 0.24)  # normalised intensity units
MARGINS = (8, 16, 32, 64)  # GrabCut box margin around the include clicks, pixels
N_TUNE = 24  # training scenes the baselines' parameters are chosen on


def engine_predictor(spec):
    """The model through the app's engine (``PromptSession``: the CLI's and GUI's code path), one thread."""
    sess = PromptSession(spec, provider="cpu", threads=1)
    state = {}

    def predict(img, prompt, prev):
        key = id(img)
        if state.get("key") != key:
            state.update(key=key, vol=ImageVolume(img))
        previous = None if prev is None else PromptResult(prev, prev.astype(np.float32), 0)
        return sess.predict(state["vol"], prompt, index=0, previous=previous).mask
    return predict


def plugin_for(onnx_path: Path, folder: Path):
    """A plugin folder around ``onnx_path`` with the shipped manifest's contract (for the evaluation that
    precedes the real plugin.yaml)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    if onnx_path.resolve() != (folder / "model.onnx").resolve():
        shutil.copy(onnx_path, folder / "model.onnx")
    write_plugin_yaml(folder, manifest(sha256_file(folder / "model.onnx"), {}))
    return load_plugin(folder)


def grow_predictor(tol: float):
    def predict(plane, prompt, prev):
        inc = [(int(c.y), int(c.x)) for c in prompt.clicks if c.include]
        exc = [(int(c.y), int(c.x)) for c in prompt.clicks if not c.include]
        out = region_grow(plane, np.array(inc), tolerance=tol, connectivity=8) if inc else \
            np.zeros(plane.shape, bool)
        if exc:
            out &= ~region_grow(plane, np.array(exc), tolerance=tol, connectivity=8)
        return out
    return predict


def grabcut_predictor(margin: int):
    def predict(plane, prompt, prev):
        h, w = plane.shape
        inc = [c for c in prompt.clicks if c.include]
        xs, ys = [c.x for c in inc], [c.y for c in inc]
        x0, x1 = int(max(0, min(xs) - margin)), int(min(w - 1, max(xs) + margin))
        y0, y1 = int(max(0, min(ys) - margin)), int(min(h - 1, max(ys) + margin))
        # GrabCut sees the box and a band around it as wide as the box (its background model's sample):
        # the whole image would cost ~10x more for the same result near the object
        by, bx = max(y1 - y0 + 1, 32), max(x1 - x0 + 1, 32)
        ry0, ry1, rx0, rx1 = max(0, y0 - by), min(h, y1 + by + 1), max(0, x0 - bx), min(w, x1 + bx + 1)
        mask = np.full((ry1 - ry0, rx1 - rx0), cv2.GC_BGD, np.uint8)
        mask[y0 - ry0:y1 - ry0 + 1, x0 - rx0:x1 - rx0 + 1] = cv2.GC_PR_FGD
        for c in prompt.clicks:
            if ry0 <= c.y < ry1 and rx0 <= c.x < rx1:
                cv2.circle(mask, (int(c.x) - rx0, int(c.y) - ry0), 3, cv2.GC_FGD if c.include else cv2.GC_BGD, -1)
        roi = np.round(plane[ry0:ry1, rx0:rx1] * 255).astype(np.uint8)
        img = cv2.cvtColor(roi, cv2.COLOR_GRAY2BGR)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(img, mask, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
        except cv2.error:  # degenerate (e.g. no background sample): the hard seeds only
            pass
        out = np.zeros((h, w), bool)
        out[ry0:ry1, rx0:rx1] = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        return out
    return predict


def curves(predict, scenes, max_clicks=MAX_CLICKS, *, raw=False):
    """IoU curves over ``scenes``; ``predict`` gets the normalised plane (baselines) or, with ``raw``, the
    stored 8/16-bit image (the model, which normalises it as the plugin declares)."""
    out = []
    for _, img, gt in scenes:
        plane = img if raw else normalize(img)
        out.append(run_protocol(lambda p, prev, plane=plane: predict(plane, p, prev), gt, max_clicks, stop_after=5))
    return out


def tune_scenes():
    rng = np.random.default_rng(7)
    scenes = TrainScenes(rng)
    return [(f"train#{i}", *scenes.draw(rng)) for i in range(N_TUNE)]


def choose(make, values, scenes, key="iou@1"):
    """The parameter with the best mean IoU after one click on training scenes (and the scores)."""
    scores = {v: summarize(curves(make(v), scenes, 5))[key] for v in values}
    return max(scores, key=scores.get), scores


def model_results(pred, held, groups, *, raw: bool) -> dict:
    per = dict(zip([s[0] for s in held], curves(pred, held, raw=raw)))
    out = {"all": summarize(list(per.values()))}
    for g, scenes in groups.items():
        out[g] = summarize([per[s[0]] for s in scenes])
    return out


def heldout_groups(held):
    """The held-out subsets of the model card's tables, by image kind."""
    return {"camera+moon (synthetic objects)": [s for s in held if not s[0].startswith("mni")],
            "MNI held-out slab": [s for s in held if s[0].startswith("mni")]}


BASELINES_JSON = Path(__file__).with_name("baselines.json")


def baseline_results(held, groups, *, log: bool = False) -> tuple[dict, dict]:
    """The two baselines' tuning and held-out results. They do not depend on the model: computed once and
    kept in ``baselines.json`` under a key of the protocol's settings (recomputed when any changes)."""
    key = json.dumps({"scenes": [s[0] for s in held], "sums": [int(s[2].sum()) for s in held],
                      "tol": TOLERANCES, "margins": MARGINS, "max_clicks": MAX_CLICKS, "tune": N_TUNE})
    if BASELINES_JSON.exists():
        stored = json.loads(BASELINES_JSON.read_text())
        if stored.get("key") == key:
            return stored["baselines"], stored["results"]
    t0 = time.perf_counter()
    tune = tune_scenes()
    tol, tol_scores = choose(grow_predictor, TOLERANCES, tune)
    margin, margin_scores = choose(grabcut_predictor, MARGINS, tune)
    info = {"region_grow_tolerance": tol, "region_grow_tuning_iou@1": {str(k): v for k, v in tol_scores.items()},
            "grabcut_margin": margin, "grabcut_tuning_iou@1": {str(k): v for k, v in margin_scores.items()},
            "tuned_on": f"{N_TUNE} training scenes (seed 7)"}
    results = {}
    for name, pred in (("region_grow", grow_predictor(tol)), ("grabcut", grabcut_predictor(margin))):
        results[name] = model_results(pred, held, groups, raw=False)
        if log:
            print(name, json.dumps(results[name]["all"]), f"t={time.perf_counter() - t0:.0f}s", flush=True)
    BASELINES_JSON.write_text(json.dumps({"key": key, "baselines": info, "results": results}, indent=1) + "\n")
    return info, results


def evaluate(onnx_path: Path, *, log: bool = False, baselines: bool = True) -> dict:
    t0 = time.perf_counter()
    held = heldout_scenes()
    groups = heldout_groups(held)
    metrics: dict = {"heldout": {"objects": len(held), "max_clicks": MAX_CLICKS}}
    import tempfile

    tmp = tempfile.TemporaryDirectory()
    spec = plugin_for(onnx_path, Path(tmp.name))
    methods = {"model": engine_predictor(spec)}
    results = {}
    if baselines:
        metrics["baselines"], base_results = baseline_results(held, groups, log=log)
        results.update(base_results)
    for mname, pred in methods.items():
        results[mname] = model_results(pred, held, groups, raw=mname == "model")
        if log:
            print(mname, json.dumps(results[mname]["all"]), f"t={time.perf_counter() - t0:.0f}s", flush=True)
    metrics["results"] = {k: results[k] for k in ("model", "region_grow", "grabcut") if k in results}
    tmp.cleanup()
    metrics["latency_ms_cpu_1thread"] = onnx_latency_ms(onnx_path, np.zeros((1, 4, SIZE, SIZE), np.float32))
    return metrics


METRICS_JSON = Path(__file__).with_name("metrics.json")


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Held-out evaluation of the click model and both baselines.")
    ap.add_argument("model", nargs="?", type=Path,
                    default=Path(__file__).resolve().parents[2] / "plugins/click/model.onnx")
    ap.add_argument("--fresh-baselines", action="store_true",
                    help="measure the baselines again in this run (ignore baselines.json)")
    ap.add_argument("--write", action="store_true",
                    help="replace the evaluation in models/click/metrics.json (keeping its training record); "
                         "then `python -m models.click.train --rewrite-plugin` rewrites plugin.yaml and the card")
    args = ap.parse_args(argv)
    if args.fresh_baselines and BASELINES_JSON.exists():
        BASELINES_JSON.unlink()
    metrics = evaluate(args.model, log=True)
    print(json.dumps(metrics, indent=1))
    if args.write:
        old = json.loads(METRICS_JSON.read_text())
        metrics.update({k: old[k] for k in ("train", "train_runs") if k in old})
        METRICS_JSON.write_text(json.dumps(metrics, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
