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
from .data import V2_MIX, TrainScenes, heldout_scenes
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


def plugin_for(onnx_path: Path, folder: Path, prompt: dict | None = None):
    """A plugin folder around ``onnx_path`` with the shipped manifest's contract (for the evaluation that
    precedes the real plugin.yaml); ``prompt`` overrides entries of its ``prompt`` block (validation sweeps
    of the inference parameters)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    if onnx_path.resolve() != (folder / "model.onnx").resolve():
        shutil.copy(onnx_path, folder / "model.onnx")
    spec = manifest(sha256_file(folder / "model.onnx"), {})
    spec["prompt"].update(prompt or {})
    write_plugin_yaml(folder, spec)
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


BOOTSTRAP = 10000  # paired bootstrap resamples
BOOTSTRAP_SEED = 0


def paired_difference(model: list[float], base: list[float], *, seed: int = BOOTSTRAP_SEED,
                      resamples: int = BOOTSTRAP) -> dict:
    """Mean per-object difference ``model - base`` and its paired bootstrap 95 % interval (percentile,
    objects resampled with replacement, fixed seed), plus how many objects each side wins."""
    d = np.asarray(model, np.float64) - np.asarray(base, np.float64)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (resamples, len(d)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": round(float(d.mean()), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)],
            "wins": int((d > 1e-9).sum()), "losses": int((d < -1e-9).sum()), "objects": len(d)}


PAIRED_CLICKS = (1, 3)


def paired_table(per: dict[str, dict[str, list[float]]], groups: dict[str, list[str]]) -> dict:
    """``per[method][object]`` IoU curves -> ``{group: {"iou@k vs baseline": paired_difference}}`` for the
    model against each baseline after 1 and 3 clicks."""
    out = {}
    for g, names in groups.items():
        row = {}
        for k in PAIRED_CLICKS:
            for b in ("region_grow", "grabcut"):
                if b in per:
                    row[f"iou@{k} vs {b}"] = paired_difference([per["model"][n][k - 1] for n in names],
                                                               [per[b][n][k - 1] for n in names])
        out[g] = row
    return out


def tune_scenes():
    """The baselines' tuning scenes: v2's training distribution, frozen (``V2_MIX``), so that the baselines'
    parameters do not move when the model's recipe changes."""
    rng = np.random.default_rng(7)
    scenes = TrainScenes(rng, mix=V2_MIX)
    return [(f"train#{i}", *scenes.draw(rng)) for i in range(N_TUNE)]


def choose(make, values, scenes, key="iou@1"):
    """The parameter with the best mean IoU after one click on training scenes (and the scores)."""
    scores = {v: summarize(curves(make(v), scenes, 5))[key] for v in values}
    return max(scores, key=scores.get), scores


def model_results(pred, held, groups, *, raw: bool, per_object: dict | None = None) -> dict:
    """Summaries over all of ``held`` and per group; ``per_object`` (a dict) receives the IoU curves."""
    per = dict(zip([s[0] for s in held], curves(pred, held, raw=raw)))
    if per_object is not None:
        per_object.update(per)
    out = {"all": summarize(list(per.values()))}
    for g, scenes in groups.items():
        out[g] = summarize([per[s[0]] for s in scenes])
    return out


MNI_KINDS = {1: "CSF", 2: "grey matter", 3: "white matter"}


def mni_kind(mask: np.ndarray, labels: np.ndarray) -> str:
    """An MNI object's kind: the brain (several tissue labels under it) or its one tissue class."""
    vals = np.unique(labels[mask])
    return "brain" if len(vals) > 1 else MNI_KINDS[int(vals[0])]


def heldout_groups(held, *, kinds: bool = True):
    """The held-out subsets of the model card's tables, by image kind, and (``kinds``) the MNI objects by
    tissue kind (``MNI: brain``, ``MNI: white matter``...; a report, never a tuning target)."""
    groups = {"camera+moon (synthetic objects)": [s for s in held if not s[0].startswith("mni")],
              "MNI held-out slab": [s for s in held if s[0].startswith("mni")]}
    if kinds:
        from ..common.data import mni_heldout_slab

        z, _, labels = mni_heldout_slab()
        for s in groups["MNI held-out slab"]:
            k = int(s[0][len("mni_z"):].split("#")[0])
            groups.setdefault(f"MNI: {mni_kind(s[2], labels[int(np.flatnonzero(z == k)[0])])}", []).append(s)
    return groups


BASELINES_JSON = Path(__file__).with_name("baselines.json")


def summaries(per: dict[str, list[float]], held, groups) -> dict:
    """``per[object]`` IoU curves -> the summary over all of ``held`` and per group."""
    return {"all": summarize([per[s[0]] for s in held]),
            **{g: summarize([per[s[0]] for s in scenes]) for g, scenes in groups.items()}}


def baseline_results(held, groups, *, log: bool = False) -> tuple[dict, dict, dict]:
    """The two baselines' tuning, held-out results (per group) and per-object IoU curves (for the paired
    comparison). They do not depend on the model: computed once and kept in ``baselines.json`` under a key
    of the protocol's settings (recomputed when any changes, or when the per-object curves are missing);
    the group summaries are recomputed from the stored curves."""
    key = json.dumps({"scenes": [s[0] for s in held], "sums": [int(s[2].sum()) for s in held],
                      "tol": TOLERANCES, "margins": MARGINS, "max_clicks": MAX_CLICKS, "tune": N_TUNE})
    if BASELINES_JSON.exists():
        stored = json.loads(BASELINES_JSON.read_text())
        if stored.get("key") == key and "per_object" in stored:
            per = stored["per_object"]
            return stored["baselines"], {b: summaries(c, held, groups) for b, c in per.items()}, per
    t0 = time.perf_counter()
    tune = tune_scenes()
    tol, tol_scores = choose(grow_predictor, TOLERANCES, tune)
    margin, margin_scores = choose(grabcut_predictor, MARGINS, tune)
    info = {"region_grow_tolerance": tol, "region_grow_tuning_iou@1": {str(k): v for k, v in tol_scores.items()},
            "grabcut_margin": margin, "grabcut_tuning_iou@1": {str(k): v for k, v in margin_scores.items()},
            "tuned_on": f"{N_TUNE} training scenes (seed 7)"}
    results, per_object = {}, {}
    for name, pred in (("region_grow", grow_predictor(tol)), ("grabcut", grabcut_predictor(margin))):
        per_object[name] = {}
        model_results(pred, held, groups, raw=False, per_object=per_object[name])
        per_object[name] = {n: [round(v, 6) for v in c] for n, c in per_object[name].items()}
        results[name] = summaries(per_object[name], held, groups)
        if log:
            print(name, json.dumps(results[name]["all"]), f"t={time.perf_counter() - t0:.0f}s", flush=True)
    BASELINES_JSON.write_text(json.dumps({"key": key, "baselines": info, "per_object": per_object},
                                         indent=1) + "\n")
    return info, results, per_object


def evaluate(onnx_path: Path, *, log: bool = False, baselines: bool = True) -> dict:
    t0 = time.perf_counter()
    held = heldout_scenes()
    groups = heldout_groups(held)
    metrics: dict = {"heldout": {"objects": len(held), "max_clicks": MAX_CLICKS}}
    import tempfile

    tmp = tempfile.TemporaryDirectory()
    spec = plugin_for(onnx_path, Path(tmp.name))
    results, per = {}, {"model": {}}
    if baselines:
        metrics["baselines"], base_results, base_per = baseline_results(held, groups, log=log)
        results.update(base_results)
        per.update(base_per)
    results["model"] = model_results(engine_predictor(spec), held, groups, raw=True, per_object=per["model"])
    if log:
        print("model", json.dumps(results["model"]["all"]), f"t={time.perf_counter() - t0:.0f}s", flush=True)
    metrics["results"] = {k: results[k] for k in ("model", "region_grow", "grabcut") if k in results}
    if baselines:
        names = {"all": [s[0] for s in held], **{g: [s[0] for s in sc] for g, sc in groups.items()}}
        metrics["paired"] = {"method": f"per-object IoU difference model - baseline, mean and paired bootstrap "
                                       f"95 % interval ({BOOTSTRAP} resamples, seed {BOOTSTRAP_SEED})",
                             **paired_table(per, names)}
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
