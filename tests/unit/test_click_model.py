"""The bundled click model (plugins/click) earns its place: its model card's held-out table, reproduced from
the shipped ONNX through the app's engine (:class:`~workbench.inference.promptable.run.PromptSession`, the
CLI's and the GUI tool's code path) in the standard interactive protocol, and region grow's IoU after 1, 3 and 5
clicks with the tolerance tuned on training scenes (GrabCut's rows, minutes of CPU, are the evaluation run's,
from models/click/metrics.json), so the card's verdict at 1 and 3 clicks is re-checked against region grow.
Held-out data: synthetic objects on camera.png and moon.png, the MNI152 held-out slab; none trained on.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the evaluation helpers live in models/ (training code, not installed)
    sys.path.insert(0, str(REPO))

from workbench.inference.checksum import file_sha256  # noqa: E402
from workbench.inference.spec import load_plugin  # noqa: E402

PLUGIN = REPO / "plugins" / "click"
METRICS = REPO / "models" / "click" / "metrics.json"
KEYS = ("iou@1", "iou@3", "iou@5", "noc@85", "noc@90")

pytestmark = pytest.mark.skipif(not (PLUGIN / "model.onnx").is_file(), reason="click model not trained yet")


def test_manifest_pins_the_model_and_declares_the_prompt_contract():
    spec = load_plugin(PLUGIN)
    assert spec.task == "promptable" and spec.prompt.kind == "channels"
    assert file_sha256(spec.model_path) == spec.sha256
    import onnx

    m = onnx.load(str(spec.model_path))
    assert m.opset_import[0].version == 17
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim][:2] == [1, 4]


def test_held_out_table_reproduced_through_the_engine():
    from models.click import evaluate as ev
    from models.click.data import heldout_scenes
    from models.click.plugin import verdict

    stored = json.loads(METRICS.read_text())
    held = heldout_scenes()
    assert len(held) == stored["heldout"]["objects"]
    spec = load_plugin(PLUGIN)
    groups = ev.heldout_groups(held)
    per = {"model": {}}
    got = ev.model_results(ev.engine_predictor(spec), held, groups, raw=True, per_object=per["model"])
    assert set(got) == set(stored["results"]["model"])
    for group, row in stored["results"]["model"].items():
        for k in KEYS:
            assert got[group][k] == pytest.approx(row[k], abs=2e-3), (group, k)
    # "by how much": the paired differences and intervals of the card, from these model curves and region
    # grow's (recomputed here) and GrabCut's (the evaluation run's curves, models/click/baselines.json)
    grow = ev.grow_predictor(stored["baselines"]["region_grow_tolerance"])
    per["region_grow"] = dict(zip([s[0] for s in held], ev.curves(grow, held, 5)))
    per["grabcut"] = json.loads(ev.BASELINES_JSON.read_text())["per_object"]["grabcut"]
    names = {"all": [s[0] for s in held], **{g: [s[0] for s in sc] for g, sc in groups.items()}}
    paired = ev.paired_table(per, names)
    for group, row in paired.items():
        for key, d in row.items():
            want = stored["paired"][group][key]
            assert d["mean"] == pytest.approx(want["mean"], abs=2e-3), (group, key)
            assert d["ci95"] == pytest.approx(want["ci95"], abs=5e-3), (group, key)
    # the model card shows these numbers and the verdict computed from them
    card = (PLUGIN / "README.md").read_text()
    s = got["all"]
    assert f"| click model | {s['iou@1']:.3f} | {s['iou@3']:.3f} | {s['iou@5']:.3f} |" in card
    assert verdict(stored["results"], stored["paired"]) in card
    d = stored["paired"]["all"]["iou@1 vs region_grow"]
    assert f"| all | iou@1 | region grow | {d['mean']:+.3f} | [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |" in card
    meta = spec.meta["metrics"]
    assert all(meta[k] == pytest.approx(s[k], abs=2e-3) for k in KEYS)


def test_paired_bootstrap_difference():
    """The card's paired comparison: a constant lead has a zero-width interval; a noisy one an interval
    around its mean, the same on every run (fixed seed), that excludes 0 only when the lead is clear."""
    from models.click.evaluate import paired_difference

    base = np.linspace(0.2, 0.8, 30)
    d = paired_difference(list(base + 0.1), list(base))
    assert d["mean"] == pytest.approx(0.1) and d["ci95"] == pytest.approx([0.1, 0.1])
    assert (d["wins"], d["losses"], d["objects"]) == (30, 0, 30)
    rng = np.random.default_rng(1)
    noisy = base + rng.normal(0.0, 0.2, 30)
    d = paired_difference(list(noisy), list(base))
    assert d == paired_difference(list(noisy), list(base))
    assert d["ci95"][0] < d["mean"] < d["ci95"][1] and d["ci95"][0] < 0 < d["ci95"][1]
    clear = paired_difference(list(base + 0.2 + rng.normal(0.0, 0.1, 30)), list(base))
    assert clear["ci95"][0] > 0.1


def test_region_grow_rows_at_1_3_and_5_clicks_reproduced():
    from models.click import evaluate as ev
    from models.click.data import heldout_scenes
    from workbench.inference.promptable.simulate import summarize

    stored = json.loads(METRICS.read_text())
    held = heldout_scenes()
    grow = ev.grow_predictor(stored["baselines"]["region_grow_tolerance"])
    per = dict(zip([s[0] for s in held], ev.curves(grow, held, 5)))
    for group, scenes in {"all": held, **ev.heldout_groups(held)}.items():
        got = summarize([per[s[0]] for s in scenes])
        row = stored["results"]["region_grow"][group]
        assert [got[k] for k in ("iou@1", "iou@3", "iou@5")] == pytest.approx(
            [row[k] for k in ("iou@1", "iou@3", "iou@5")], abs=1e-4), group


def test_segment_cli_with_the_bundled_model(tmp_path, capsys):
    """The CLI on a held-out synthetic object: three simulated clicks give the engine's mask (the same
    code path), and the mask covers the object better than after the first click alone."""
    from models.click.data import heldout_scenes
    from workbench.cli import main
    from workbench.core.image import ImageVolume
    from workbench.inference.promptable.prompts import Prompt
    from workbench.inference.promptable.run import segment_with_prompt
    from workbench.inference.promptable.simulate import first_click, iou, next_click
    from workbench.io import read_image, write_png

    name, img, gt = next(s for s in heldout_scenes() if s[0] == "camera.png#1")
    write_png(tmp_path / "scene.png", img)
    spec = load_plugin(PLUGIN)
    vol = ImageVolume(img)
    clicks = [first_click(gt)]
    ious = []
    for _ in range(3):
        res = segment_with_prompt(spec, vol, Prompt(list(clicks)))
        ious.append(iou(res.mask, gt))
        clicks.append(next_click(gt, res.mask))
    clicks.pop()
    argv = ["segment", str(tmp_path / "scene.png"), "-m", "click", "-o", str(tmp_path / "m.png")]
    for c in clicks:
        argv += ["--click", f"{int(c.x)},{int(c.y)}:{'+' if c.include else '-'}"]
    assert main(argv) == 0, capsys.readouterr().err
    mask = read_image(tmp_path / "m.png").data[0] > 0
    np.testing.assert_array_equal(mask, res.mask)
    assert ious[-1] > ious[0], ious


def test_same_object_in_8_bit_16_bit_hu_and_rgb():
    """The plugin normalises by percentiles and reads colour as luma: the same slice stored as uint8,
    uint16, float HU-like values or RGB gives (nearly) the same mask for the same click."""
    from models.click.data import heldout_scenes
    from workbench.core.image import ImageVolume
    from workbench.inference.promptable.prompts import Prompt
    from workbench.inference.promptable.run import PromptSession
    from workbench.inference.promptable.simulate import first_click, iou

    name, img, gt = next(s for s in heldout_scenes() if s[0].startswith("mni") and s[1].dtype == np.uint8)
    sess = PromptSession(load_plugin(PLUGIN), provider="cpu", threads=1)
    prompt = Prompt([first_click(gt)])
    ref = sess.predict(ImageVolume(img), prompt).mask
    variants = {"uint16": img.astype(np.uint16) * 257, "HU float": img.astype(np.float32) * 8.0 - 1000.0,
                "RGB": np.repeat(img[..., None], 3, axis=2)}
    for label, v in variants.items():
        data = v[None] if v.ndim == 2 else v[None]
        assert iou(sess.predict(ImageVolume(data), prompt).mask, ref) > 0.97, label


def test_mni_training_draws_favour_the_brain_and_large_components():
    """The recipe's MNI target pick (models/click/data.py): on a slice of one brain and many small
    fragments, the brain and the large components are drawn at their declared shares, not uniformly."""
    from models.click import data

    brain = np.zeros((100, 100), bool)
    brain[5:95, 5:95] = True
    large = np.zeros_like(brain)
    large[10:40, 10:40] = True  # 900 px
    small = []
    for i in range(6):
        m = np.zeros_like(brain)
        m[50 + 6 * i:54 + 6 * i, 50:55] = True  # 20 px fragments
        small.append(m)
    comps = [brain, large] + small
    rng = np.random.default_rng(3)
    picks = [data.pick_component(rng, comps) for _ in range(4000)]
    share = {name: np.mean([p is m for p in picks]) for name, m in (("brain", brain), ("large", large))}
    assert share["brain"] == pytest.approx(data.BRAIN_SHARE, abs=0.03)
    # large: LARGE_SHARE of the non-brain draws, plus its uniform share of the rest
    want = (1 - data.BRAIN_SHARE) * (data.LARGE_SHARE + (1 - data.LARGE_SHARE) / (len(comps) - 1))
    assert share["large"] == pytest.approx(want, abs=0.03)
    assert share["large"] > 3 * (1 - share["brain"] - share["large"]) / len(small)
