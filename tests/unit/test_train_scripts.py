"""The bundled models' training scripts (``models/*/train.py`` on ``models/common/runner.py``) still run.

Each script trains for about a second into a temporary ``--out-dir`` and must leave weights.pt and an ONNX
file that onnxruntime loads with the input/output names of the shipped ``plugins/<id>/model.onnx``, without
touching the shipped files. Four scripts stop after the export (``--export-only``); the quality script,
the cheapest to evaluate, runs the whole path (held-out evaluation, metrics.json, plugin.yaml, model card).
The shared skeleton (options and defaults, schedule, resume, metrics history, rewrite) is checked in-process
on a toy recipe, and the click network's parameter-free prompt features on a drawn scene. Needs torch
(training only: CI skips this module), nilearn and onnxruntime. Runtime: ~50 s.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("nilearn")  # the MNI152 template: training data of three of the four models

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # models/ is training code, not an installed package
    sys.path.insert(0, str(REPO))

from models.common import runner  # noqa: E402
from models.common.runner import Recipe, cosine_lr  # noqa: E402

# folder under models/ -> plugin id, and the defaults models/README.md and the model cards document
MODELS = {
    "brain_tissue": ("brain-tissue", {"minutes": 18.0, "batch": 8, "lr": 2e-3}),
    "denoiser": ("denoiser", {"minutes": 18.0, "batch": 16, "lr": 1e-3}),
    "quality": ("quality", {"minutes": 10.0, "batch": 16, "lr": 2e-3}),
    "focal_spot": ("focal-spot", {"minutes": 18.0, "batch": 16, "lr": 2e-3}),
    "click": ("click", {"minutes": 60.0, "batch": 8, "lr": 2e-3}),
    "similar_encoder": ("similar-encoder", {"minutes": 55.0, "batch": 64, "lr": 2e-3}),
}
OPTIONS = {"--minutes", "--batch", "--threads", "--lr", "--resume", "--rewrite-plugin", "--export-only", "--out-dir"}
EXTRA_OPTIONS = {"click": {"--warm-start"}}  # a recipe's own options, on top of the shared ones
FINISHED = re.compile(r"^finished: [1-9]\d* steps in \d+s, ", re.M)


def _recipe(name: str) -> type[Recipe]:
    module = importlib.import_module(f"models.{name}.train")
    (cls,) = [v for v in vars(module).values()
              if isinstance(v, type) and issubclass(v, Recipe) and v is not Recipe]
    return cls


def _shipped_state(name: str) -> dict:
    """Size and mtime of every shipped artefact of a model: a smoke run must change none of them."""
    files = [*(REPO / "models" / name).glob("*.pt"), *(REPO / "models" / name).glob("*.json"),
             *(REPO / "models" / name).glob("*.log"), *(REPO / "plugins" / MODELS[name][0]).iterdir()]
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


def _run_script(name: str, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", f"models.{name}.train", "--threads", "1", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"models/{name}/train.py {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _signature(path: Path):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return ([(i.name, i.shape) for i in sess.get_inputs()], [(o.name, len(o.shape)) for o in sess.get_outputs()])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", MODELS)
def test_options_and_defaults_unchanged(name):
    cls = _recipe(name)
    parser = cls().parser()
    assert {o for a in parser._actions for o in a.option_strings} - {"-h", "--help"} == \
        OPTIONS | EXTRA_OPTIONS.get(name, set())
    args = parser.parse_args([])
    expected = MODELS[name][1]
    assert (args.minutes, args.batch, args.lr) == (expected["minutes"], expected["batch"], expected["lr"])
    assert (args.threads, args.resume, args.rewrite_plugin, args.export_only, args.out_dir) == (
        1, False, False, False, None)
    assert (cls.plugin_id, cls.name) == (MODELS[name][0], name)
    assert parser.description == sys.modules[cls.__module__].__doc__.splitlines()[0]
    assert parser.description.startswith("Train, evaluate and export the ")
    assert parser.description.endswith(f"``python -m models.{name}.train``.")


@pytest.mark.parametrize("name", ["brain_tissue", "denoiser", "focal_spot", "click"])
def test_script_trains_and_exports(name, tmp_path):
    before = _shipped_state(name)
    out = _run_script(name, "--minutes", "0.02", "--export-only", "--out-dir", str(tmp_path))
    assert FINISHED.search(out), out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "weights.pt"]
    state = torch.load(tmp_path / "weights.pt")
    assert state and all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert _signature(tmp_path / "model.onnx") == _signature(REPO / "plugins" / MODELS[name][0] / "model.onnx")
    assert _shipped_state(name) == before


def test_quality_script_full_run(tmp_path):
    before = _shipped_state("quality")
    out = _run_script("quality", "--minutes", "0.02", "--out-dir", str(tmp_path))
    assert FINISHED.search(out), out
    shipped = REPO / "plugins" / "quality"
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in shipped.iterdir()} | {"weights.pt",
                                                                                          "metrics.json"}
    assert _signature(tmp_path / "model.onnx") == _signature(shipped / "model.onnx")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == set(json.loads((REPO / "models/quality/metrics.json").read_text())) - {"train_runs"}
    assert metrics["train"]["steps"] >= 1 and metrics["train"]["batch"] == 16
    assert json.dumps(metrics, indent=1) in out  # the log shows what metrics.json holds
    plugin = (tmp_path / "plugin.yaml").read_text()
    assert f"sha256: {_sha256(tmp_path / 'model.onnx')}" in plugin
    assert f"heldout_accuracy: {metrics['model_accuracy']}" in plugin
    assert f"**{metrics['model_accuracy']:.3f}**" in (tmp_path / "README.md").read_text()
    assert _shipped_state("quality") == before


# -- the shared skeleton on a toy recipe --------------------------------------------------------------------

class Toy(Recipe):
    """A one-convolution identity learner: every hook of the skeleton, none of a real model's cost."""

    plugin_id, name = "toy", "toy"
    minutes, batch, lr = 0.01, 2, 1e-2
    example_shape = (1, 1, 8, 8)

    def prepare(self):
        print("toy data", flush=True)

    def build_net(self):
        return torch.nn.Conv2d(1, 1, 3, padding=1)

    def loss(self, net):
        x = torch.from_numpy(self.rng.random((self.args.batch, 1, 8, 8), dtype=np.float32))
        loss = ((net(x) - x) ** 2).mean()
        return loss, {"loss": loss.item(), "raw": 1.0}

    def progress(self, ema, last):
        return f"loss(ema)={ema['loss']:.4f} raw={last['raw']:.1f}"

    def finished(self, ema):
        return f"loss(ema)={ema['loss']:.4f}"

    def measure(self, onnx_path):
        return {"score": 1.0}

    def train_summary(self, ema):
        return {"final_loss_ema": round(ema["loss"], 4)}

    @staticmethod
    def write_plugin(folder, sha, metrics):
        (folder / "plugin.yaml").write_text(f"sha256: {sha}\nscore: {metrics['score']}\n")

    @staticmethod
    def write_card(folder, metrics):
        (folder / "README.md").write_text(f"{metrics['train']['steps']} steps\n")


def _step_budget(n: int):
    """A Budget of exactly ``n`` steps (the real one is wall-clock)."""

    class StepBudget:
        def __init__(self, minutes):
            self.n = 0

        def left(self):
            self.n += 1
            return self.n <= n

        def fraction(self):
            return min(1.0, (self.n - 1) / n)

        def elapsed(self):
            return 0.0

    return StepBudget


def test_cosine_lr():
    assert cosine_lr(2e-3, 0.0, 0.0, 0.0) == 2e-3
    assert cosine_lr(2e-3, 0.5, 0.0, 0.0) == pytest.approx(1e-3)
    assert cosine_lr(2e-3, 1.0, 0.0, 0.0) == pytest.approx(0.0, abs=1e-18)
    assert cosine_lr(1e-3, 0.0, 0.03, 1e-6) == 1e-6  # warm-up starts at the floor
    assert cosine_lr(1e-3, 0.015, 0.03, 1e-6) == pytest.approx(0.5e-3, rel=3e-3)
    assert cosine_lr(1e-3, 1.0, 0.03, 1e-6) == pytest.approx(1e-6)


def test_runner_trains_resumes_and_rewrites(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "Budget", _step_budget(100))
    Toy().main(["--out-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert re.findall(r"^step (\d+) t=0s lr=\S+ loss\(ema\)=\S+ raw=1\.0$", out, re.M) == ["50", "100"]
    assert "finished: 100 steps in 0s, loss(ema)=" in out and "resumed" not in out
    first = json.loads((tmp_path / "metrics.json").read_text())
    assert first["score"] == 1.0 and first["train"]["steps"] == 100 and "train_runs" not in first
    assert (tmp_path / "plugin.yaml").read_text().startswith(f"sha256: {_sha256(tmp_path / 'model.onnx')}")
    assert _signature(tmp_path / "model.onnx") == ([("input", [1, 1, "height", "width"])], [("output", 4)])
    weights = torch.load(tmp_path / "weights.pt")

    monkeypatch.setattr(runner, "Budget", _step_budget(3))
    for runs in (2, 3):
        Toy().main(["--out-dir", str(tmp_path), "--resume"])
        assert f"resumed from {tmp_path / 'weights.pt'}" in capsys.readouterr().out
        metrics = json.loads((tmp_path / "metrics.json").read_text())
        assert [r["steps"] for r in metrics["train_runs"]] == [100] + [3] * (runs - 1)
    assert not torch.equal(torch.load(tmp_path / "weights.pt")["weight"], weights["weight"])

    (tmp_path / "plugin.yaml").unlink()
    (tmp_path / "README.md").unlink()
    Toy().main(["--out-dir", str(tmp_path), "--rewrite-plugin"])
    assert (tmp_path / "plugin.yaml").read_text().startswith(f"sha256: {_sha256(tmp_path / 'model.onnx')}")
    assert (tmp_path / "README.md").read_text() == "3 steps\n"


def test_runner_is_seeded(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "Budget", _step_budget(5))
    for run in ("a", "b"):
        Toy().main(["--out-dir", str(tmp_path / run), "--export-only"])
    a, b = torch.load(tmp_path / "a" / "weights.pt"), torch.load(tmp_path / "b" / "weights.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["model.onnx", "weights.pt"]


def test_runner_refuses_an_empty_budget(tmp_path):
    with pytest.raises(SystemExit, match=r"^--minutes 0\.0: no training step"):
        Toy().main(["--out-dir", str(tmp_path), "--minutes", "0"])
    assert not (tmp_path / "weights.pt").exists()


def test_click_prompt_features_grow_from_the_click():
    """The click network's in-graph region grow (models/click/net.py): on two discs of one intensity, the
    fuzzy connectedness of an include click is ~1 on its own disc and 0 on the other, unconnected one; the
    exclude click's map does the same for its disc; the similarity maps cannot tell the discs apart."""
    import cv2

    from models.click.net import CONNECT, SOFT_TOLERANCES, prompt_features
    from workbench.inference.promptable.prompts import click_maps

    img = np.full((128, 128), 0.2, np.float32)
    a, b = np.zeros_like(img, np.uint8), np.zeros_like(img, np.uint8)
    cv2.circle(a, (32, 40), 20, 1, -1)
    cv2.circle(b, (96, 90), 20, 1, -1)
    img[(a | b) > 0] = 0.8
    inc = click_maps([(40.0, 32.0)], 128, encoding="distance", radius=5.0)
    exc = click_maps([(90.0, 96.0)], 128, encoding="distance", radius=5.0)
    x = torch.from_numpy(np.stack([img, inc, exc, np.zeros_like(img)])[None])
    f = prompt_features(x)[0].numpy()
    n = len(SOFT_TOLERANCES)
    d_inc, sim_inc, connect = f[0], f[2], f[2 + 2 * n:]
    assert d_inc[a > 0].max() < 1e-6 and d_inc[(a | b) == 0].min() == pytest.approx(0.6)
    assert sim_inc[b > 0].min() > 0.99  # intensity alone: both discs
    for k, (which, _) in enumerate(CONNECT):
        own, other = (a, b) if which == 0 else (b, a)
        assert connect[k][own > 0].min() > 0.99, k
        assert connect[k][other > 0].max() < 1e-6, k
        assert connect[k][(a | b) == 0].max() < 1e-6, k


def test_click_warm_start_reproduces_the_shipped_onnx(tmp_path):
    """``models.click.train.warm_start`` (v3's start: v2's weights.pt was not kept): the shipped ONNX's
    folded convolutions, unfolded into a trainable ClickNet whose batch norms give back the folded output,
    gives the shipped model's logits (eval mode) -- the function asserts that on training samples -- and
    its weights.pt loads for ``--resume``."""
    import onnxruntime as ort

    from models.click.net import ClickNet
    from models.click.train import WIDTHS, warm_start

    out = tmp_path / "weights.pt"
    warm_start(out=out, samples=8)
    net = ClickNet(WIDTHS)
    net.load_state_dict(torch.load(out))
    net.eval()
    rng = np.random.default_rng(5)
    x = np.zeros((1, 4, 128, 128), np.float32)
    x[0, 0] = rng.random((128, 128))
    x[0, 1, 60:68, 60:68] = 1.0
    ref = ort.InferenceSession(str(REPO / "plugins/click/model.onnx"),
                               providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - ref).max() < 1e-2
