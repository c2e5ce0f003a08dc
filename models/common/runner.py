"""The skeleton every bundled model's ``train.py`` shares: options, seeding, the time-budgeted training loop,
checkpoint save/resume, ONNX export, metrics.json and the plugin rewrite.

A training script subclasses :class:`Recipe`, sets its constants and supplies what is its own (data, net,
loss, held-out evaluation, plugin files); ``Recipe.main`` runs the rest in the same order for every model.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from .data import REPO
from .export import Budget, export_onnx, plugin_dir, sha256_file

LOG_EVERY = 50  # steps between two progress lines


def cosine_lr(peak: float, fraction: float, warmup: float, floor: float) -> float:
    """Learning rate at ``fraction`` of the budget: a linear ramp over the first ``warmup`` (none if 0),
    then cosine decay from ``peak`` to 0, plus ``floor``."""
    ramp = min(1.0, fraction / warmup) if warmup else 1.0
    return peak * ramp * 0.5 * (1 + math.cos(math.pi * fraction)) + floor


def shown(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (what the logs have always printed)."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


class Recipe:
    """One model's training script. Subclasses set the class attributes and override the hooks.

    While ``main`` runs, ``self.args`` holds the parsed options, ``self.rng`` a NumPy generator and
    ``self.gen`` a torch generator, both seeded with 0 (use one of them for every random draw). The plugin
    writers are module functions of the script, bound with ``staticmethod``.
    """

    plugin_id: str = ""  # folder under plugins/
    name: str = ""  # folder under models/
    minutes: float = 18.0  # default training budget
    batch: int = 16
    lr: float = 2e-3  # peak learning rate
    warmup: float = 0.03  # fraction of the budget with a linear learning-rate ramp (0: none)
    lr_floor: float = 1e-6  # added to the schedule so that the last steps still move
    weight_decay: float = 1e-4
    clip_grad: float | None = None  # max gradient norm, or no clipping
    example_shape: tuple = (1, 1, 64, 64)  # the export's example input (height and width stay dynamic)

    # -- hooks ------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Load the training data (and fit what must precede training, e.g. a baseline); print a summary."""
        raise NotImplementedError

    def build_net(self) -> torch.nn.Module:
        raise NotImplementedError

    def loss(self, net: torch.nn.Module) -> tuple[torch.Tensor, dict[str, float]]:
        """One mini-batch: the loss to minimise and the scalars to smooth (EMA) for the log."""
        raise NotImplementedError

    def progress(self, ema: dict[str, float], last: dict[str, float]) -> str:
        """The end of a progress line (after ``step N t=..s lr=..``)."""
        raise NotImplementedError

    def finished(self, ema: dict[str, float]) -> str:
        """The end of the final training line (after ``finished: N steps in ..s,``)."""
        raise NotImplementedError

    def measure(self, onnx_path: Path) -> dict:
        """Held-out evaluation of the exported file against the baseline, latency and extras: metrics.json."""
        raise NotImplementedError

    def train_summary(self, ema: dict[str, float]) -> dict:
        """metrics["train"] entries besides steps and seconds."""
        raise NotImplementedError

    @staticmethod
    def write_plugin(folder: Path, sha: str, metrics: dict) -> None:
        """Write plugin.yaml (with the model's sha256 and metrics), labels and samples into ``folder``."""
        raise NotImplementedError

    @staticmethod
    def write_card(folder: Path, metrics: dict) -> None:
        """Write the model card ``folder/README.md`` with this run's figures."""
        raise NotImplementedError

    # -- the shared skeleton ----------------------------------------------------------------------------

    def parser(self) -> argparse.ArgumentParser:
        # the --help description: the first line of the training script's module docstring
        ap = argparse.ArgumentParser(description=sys.modules[type(self).__module__].__doc__.splitlines()[0])
        ap.add_argument("--minutes", type=float, default=self.minutes, help="training wall-time budget")
        ap.add_argument("--batch", type=int, default=self.batch)
        ap.add_argument("--threads", type=int, default=1)
        schedule = "warm-up, cosine decay" if self.warmup else "cosine decay over the budget"
        ap.add_argument("--lr", type=float, default=self.lr, help=f"peak learning rate ({schedule})")
        ap.add_argument("--resume", action="store_true",
                        help=f"continue from models/{self.name}/weights.pt (a second cosine cycle)")
        ap.add_argument("--rewrite-plugin", action="store_true",
                        help="only rewrite the plugin files (plugin.yaml, labels, samples, model card) from the "
                             "existing model.onnx and metrics.json")
        ap.add_argument("--export-only", action="store_true",
                        help="stop after weights.pt and model.onnx: no held-out evaluation, metrics.json or "
                             "plugin.yaml (quick trial runs)")
        ap.add_argument("--out-dir", type=Path, default=None, metavar="DIR",
                        help=f"read and write weights.pt, metrics.json and the plugin files in DIR instead of "
                             f"models/{self.name}/ and plugins/{self.plugin_id}/ (trial runs, tests)")
        return ap

    def main(self, argv=None) -> None:
        """Parse the options, then rewrite the plugin files, or train, export, evaluate and publish."""
        args = self.args = self.parser().parse_args(argv)
        if args.out_dir is not None:
            args.out_dir.mkdir(parents=True, exist_ok=True)
            work = folder = args.out_dir
        else:
            work, folder = REPO / "models" / self.name, plugin_dir(self.plugin_id)
        if args.rewrite_plugin:
            self.publish(folder, sha256_file(folder / "model.onnx"), json.loads((work / "metrics.json").read_text()))
        else:
            self.train(work, folder)

    def train(self, work: Path, folder: Path) -> None:
        """Seed, train for the budget, save ``work/weights.pt``, export ``folder/model.onnx``, then (unless
        --export-only) evaluate, write ``work/metrics.json`` and publish the plugin files."""
        args = self.args
        torch.manual_seed(0)
        torch.set_num_threads(args.threads)
        self.rng = np.random.default_rng(0)
        self.gen = torch.Generator().manual_seed(0)
        self.prepare()
        net = self.build_net()
        if args.resume:
            net.load_state_dict(torch.load(work / "weights.pt"))
            print(f"resumed from {shown(work / 'weights.pt')}", flush=True)
        opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=self.weight_decay)
        budget = Budget(args.minutes)
        steps, ema = self.fit(net, opt, budget)
        net.eval()
        torch.save(net.state_dict(), work / "weights.pt")
        onnx_path = folder / "model.onnx"
        sha = export_onnx(net, torch.zeros(*self.example_shape), onnx_path, dynamic_hw=True)
        if args.export_only:
            print(f"exported {shown(onnx_path)} (--export-only: not evaluated)", flush=True)
            return
        metrics = self.measure(onnx_path)
        # seconds are read here, after export and evaluation, as in the shipped metrics.json files
        metrics["train"] = {"steps": steps, "seconds": round(budget.elapsed()), **self.train_summary(ema)}
        metrics_path = work / "metrics.json"
        if args.resume and metrics_path.exists():  # none after an --export-only run: nothing to carry over
            previous = json.loads(metrics_path.read_text())
            metrics["train_runs"] = previous.get("train_runs", [previous["train"]]) + [metrics["train"]]
        print(json.dumps(metrics, indent=1), flush=True)
        metrics_path.write_text(json.dumps(metrics, indent=1) + "\n")
        self.publish(folder, sha, metrics)

    def publish(self, folder: Path, sha: str, metrics: dict) -> None:
        self.write_plugin(folder, sha, metrics)
        self.write_card(folder, metrics)

    def fit(self, net: torch.nn.Module, opt: torch.optim.Optimizer,
            budget: Budget) -> tuple[int, dict[str, float]]:
        """Steps with the ``cosine_lr`` schedule until the budget is spent; returns the step count and the
        final exponential moving averages of the ``loss`` hook's scalars."""
        step, ema = 0, {}
        while budget.left():
            lr = cosine_lr(self.args.lr, budget.fraction(), self.warmup, self.lr_floor)
            for g in opt.param_groups:
                g["lr"] = lr
            loss, last = self.loss(net)
            opt.zero_grad()
            loss.backward()
            if self.clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), self.clip_grad)
            opt.step()
            for k, v in last.items():
                ema[k] = v if k not in ema else 0.98 * ema[k] + 0.02 * v
            step += 1
            if step % LOG_EVERY == 0:
                print(f"step {step} t={budget.elapsed():.0f}s lr={lr:.2e} {self.progress(ema, last)}", flush=True)
        if step == 0:
            raise SystemExit(f"--minutes {self.args.minutes}: no training step fits in the budget")
        print(f"finished: {step} steps in {budget.elapsed():.0f}s, {self.finished(ema)}", flush=True)
        return step, ema
