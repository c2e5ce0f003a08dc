"""``workbench explain -m PLUGIN IMAGE [--method ...] [--class LABEL] -o DIR``: a saliency map of a
classification plugin (occlusion, RISE) or an uncertainty map of a segmentation plugin (entropy, margin,
test-time-augmentation disagreement), written as ``<stem>_saliency.tiff`` (float32, image geometry),
``<stem>_saliency.png`` (overlay) and ``<stem>.json`` (method, parameters, cost, top class, peak)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.settings import load_settings

NAME = "explain"
HELP = ("why did the model say that: a saliency map (classifiers: occlusion, rise) or an uncertainty map "
        "(segmenters: entropy, margin, tta) of one image, as float TIFF, overlay PNG and JSON")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="an image file, volume or DICOM folder")
    parser.add_argument("-m", "--model", required=True, metavar="PLUGIN",
                        help="id of an installed plugin or a path to a plugin folder")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created)")
    parser.add_argument("--method", choices=("occlusion", "rise", "gradcam", "entropy", "margin", "tta"), default=None,
                        help="default: rise for classification plugins, entropy for segmentation plugins; gradcam "
                             "only for plugins that declare explain: (feature map + class weights)")
    parser.add_argument("--class", dest="target", default=None, metavar="LABEL",
                        help="class to explain (label or index; default: the top class)")
    parser.add_argument("--slice", type=int, default=None, help="slice of a stack (default: the middle one)")
    g = parser.add_argument_group("occlusion and rise")
    g.add_argument("--window", type=float, default=0.25,
                   help="occlusion window: model-input pixels (>= 1) or a fraction of its side (< 1); "
                        "default 0.25")
    g.add_argument("--stride", type=float, default=0.125, help="occlusion step, same units; default 0.125")
    g.add_argument("--baseline", choices=("blur", "mean"), default="blur",
                   help="what hidden pixels show: the blurred input (default) or its mean")
    g.add_argument("--masks", type=int, default=500, help="RISE: number of random masks N (default 500)")
    g.add_argument("--seed", type=int, default=0, help="RISE: seed of the masks (default 0)")
    g.add_argument("--cells", type=int, default=8, help="RISE: grid cells per mask side (default 8)")
    g.add_argument("--keep", type=float, default=0.5, help="RISE: probability a cell is kept (default 0.5)")
    g.add_argument("--batch-size", type=int, default=16,
                   help="perturbed inputs per session.run when the model's batch dim is dynamic (default 16)")
    g = parser.add_argument_group("entropy, margin and tta")
    g.add_argument("--flips", default="h,v", help="tta: flips to run, comma-separated from h, v, hv (default h,v)")
    g.add_argument("--threshold", type=float, default=0.5,
                   help="uncertainty above which a pixel counts as uncertain in the per-label summary")
    g = parser.add_argument_group("output")
    g.add_argument("--colormap", default="inferno", help="overlay colormap: inferno (default), magma, viridis, "
                                                         "plasma, turbo, jet")
    g.add_argument("--opacity", type=float, default=0.6, help="overlay opacity 0-1 (default 0.6)")
    g.add_argument("--report", action="store_true",
                   help="also write <stem>_saliency_report.html and .pdf (the figure, what the map means and "
                        "what it does not, parameters, cost; de-identified)")
    g.add_argument("--provider", default=None, choices=("auto", "cpu", "cuda"), help="execution provider")
    g.add_argument("--force", action="store_true", help="allow outputs to overwrite the input (refused by default)")


def method_params(args: argparse.Namespace, method: str) -> dict:
    """The keyword parameters of one method from the command line."""
    if method == "occlusion":
        return {"window": args.window, "stride": args.stride, "baseline": args.baseline,
                "batch_size": args.batch_size}
    if method == "rise":
        return {"n_masks": args.masks, "seed": args.seed, "cells": args.cells, "p": args.keep,
                "baseline": args.baseline, "batch_size": args.batch_size}
    if method == "gradcam":
        return {}
    params = {"threshold": args.threshold, "batch_size": args.batch_size}
    if method == "tta":
        params["flips"] = [f.strip() for f in args.flips.split(",") if f.strip()]
    return params


def run(args: argparse.Namespace) -> int:
    from ..core.errors import ExportError
    from ..export.heatmap import COLORMAPS, write_explanation
    from ..export.prediction import output_stem
    from ..inference.explain import default_method, run_explain
    from ..inference.run import Engine
    from ..io import read_image
    from ._inference_cli import ProgressBar, warn_provider

    if args.colormap not in COLORMAPS:
        raise ExportError(f"--colormap {args.colormap}: expected one of {', '.join(COLORMAPS)}")
    if not 0.0 <= args.opacity <= 1.0:
        raise ExportError(f"--opacity {args.opacity}: expected a value from 0 to 1")
    settings = load_settings()
    provider = args.provider or settings.provider
    engine = Engine(args.model, provider=provider, settings=settings)
    warn_provider(provider, engine.provider)
    method = args.method or default_method(engine.spec.task)
    image = read_image(args.image, max_pixels=settings.max_pixels)
    bar: list[ProgressBar] = []

    def progress(done: int, total: int, message: str) -> None:
        if not bar:
            bar.append(ProgressBar(total, method))
        bar[0].update(done)

    expl = run_explain(engine, image, method=method, slice_index=args.slice, target=args.target,
                       progress=progress, **method_params(args, method))
    if bar:
        bar[0].close()
    stem = output_stem(image, Path(args.image).name)
    from ..io.paths import check_output, protecting  # issue 11: outputs never overwrite the input

    if Path(args.image).is_dir():
        check_output(args.output, inputs=[args.image], option="-o", force=args.force, folder=True)
    with protecting([args.image], enabled=not args.force):
        written = write_explanation(expl, image, Path(args.output), stem, cmap=args.colormap,
                                    opacity=args.opacity)
        if args.report:
            from ..export.heatmap_report import write_heatmap_report

            written.update(write_heatmap_report(expl, image, Path(args.output), stem))
    peak = expl.peak
    what = (f"{expl.target['label']} ({expl.target['score']:.3f})" if expl.target else
            ", ".join(f"{r['name']}: {r['mean_uncertainty']:.3f}" for r in expl.summary))
    print(f"{args.image}: {method} of {what}; peak at x={peak['x']}, y={peak['y']}; "
          f"{expl.cost.model_runs} model runs in {expl.cost.ms:.0f} ms "
          f"({expl.cost.multiple:.0f}x one run) -> {written['json']}", file=sys.stdout)
    return 0
