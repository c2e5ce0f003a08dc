"""``workbench models list`` / ``workbench models check PATH`` / ``workbench models import MODEL.onnx -o DIR``
/ ``workbench models trust PLUGIN`` / ``workbench models untrust PLUGIN``."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..core.errors import WorkbenchError
from ..core.settings import load_settings

NAME = "models"
HELP = "list the installed model plugins, or validate a plugin folder and smoke-run it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(parser))
    p_list = sub.add_parser("list", help="installed plugins in search order, and broken ones")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_check = sub.add_parser("check", help="validate a plugin folder (or installed id), verify sha256, compare "
                                           "the manifest with the graph and smoke-run its sample")
    p_check.add_argument("path", metavar="PATH", help="plugin folder, its plugin.yaml, or an installed id")
    p_check.add_argument("--provider", default="auto", choices=("auto", "cpu", "cuda"))
    from ._models_import import add_import_parser  # models import: its own module

    add_import_parser(sub)
    # trust / untrust of plugin code (issue 21): workbench/commands/_trust_cli.py
    from ._trust_cli import add_trust_parsers

    add_trust_parsers(sub)


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args)
    if args.action == "import":
        from ._models_import import run_import

        return run_import(args)
    if args.action in ("trust", "untrust"):
        from ._trust_cli import run_trust

        return run_trust(args)
    return _check(args)


def _list(args: argparse.Namespace) -> int:
    from ..inference.registry import discover_plugins, search_dirs

    settings = load_settings()
    found = discover_plugins(settings)
    if args.json:
        print(json.dumps({
            "plugins": [{"id": p.id, "name": p.name, "task": p.task, "version": p.version, "source": p.source,
                         "folder": str(p.folder), "description": p.description,
                         "providers": p.runtime.providers} for p in found.plugins],
            "errors": [str(e) for e in found.errors],
            "search_dirs": [{"source": s, "folder": str(d)} for s, d in search_dirs(settings)]}, indent=2))
        return 0
    if not found.plugins:
        print("no plugins found; searched: " + ", ".join(str(d) for _, d in search_dirs(settings)))
    else:
        w_id = max(len(p.id) for p in found.plugins)
        w_name = max(len(p.name) for p in found.plugins)
        for p in found.plugins:
            print(f"{p.id:<{w_id}}  {p.name:<{w_name}}  {p.task:<14}  {p.version:<8}  {p.source:<11}  {p.folder}")
    for err in found.errors:
        print(f"workbench: broken plugin: {err}", file=sys.stderr)
    return 0


def _check(args: argparse.Namespace) -> int:
    from ..core.image import ImageVolume
    from ..inference.checksum import verify_sha256
    from ..inference.registry import find_plugin
    from ..inference.run import Engine, predict
    from ..inference.session import warmup_shape
    from ._inference_cli import summary

    settings = load_settings()
    spec = find_plugin(args.path, settings)
    print(f"manifest  ok  {spec.manifest_path}: {spec.id} {spec.version} ({spec.task})")
    verify_sha256(spec)
    print(f"sha256    ok  {spec.model.file} {spec.sha256}")
    if spec.task == "promptable":  # clicks, not a whole-image run (commands/_prompt_cli.py)
        from ._prompt_cli import check_promptable

        return check_promptable(spec, args, settings)
    if spec.task == "embedding":  # issue 18: a vector, not a Result (commands/_embedding_cli.py)
        from ._embedding_cli import check_embedding

        return check_embedding(spec, args, settings)
    engine = Engine(spec, provider=args.provider, settings=settings)
    info = engine.model.input
    shape = ["?" if d is None else d for d in info.shape]
    print(f"graph     ok  input {info.name!r} {shape} {info.dtype.name} {info.layout}; outputs "
          f"{', '.join(repr(n) for n in engine.model.output_names)}")
    print(f"session   ok  {engine.provider} (asked: {', '.join(engine.model.providers)}), "
          f"loaded + warm-up {engine.model.load_ms:.0f} ms")
    sample = spec.sample_path
    if sample is not None:
        from ..io import read_image

        image = read_image(sample, max_pixels=settings.max_pixels)
        what = sample.name
    else:
        # no sample shipped: a smooth synthetic image of the model's input size still exercises every step
        shp = warmup_shape(spec, info)
        if spec.input.is_volumetric:  # a 3-D model (issue 12): a synthetic volume of its input/tile size
            d, h, w = (shp[2], shp[3], shp[4]) if info.layout == "NCDHW" else (shp[1], shp[2], shp[3])
            zz, yy, xx = np.mgrid[0:d, 0:h, 0:w]
            vol = ((np.sin(xx / 7.0) + np.cos(yy / 5.0) + np.sin(zz / 3.0) + 3) * 42).astype(np.uint8)
            image = ImageVolume(np.repeat(vol[..., None], 3, axis=3) if spec.input.channels == 3 else vol)
            what = f"synthetic {d}x{h}x{w} volume (no sample in the plugin folder)"
        else:
            h, w = (shp[2], shp[3]) if info.layout == "NCHW" else (shp[1], shp[2])
            yy, xx = np.mgrid[0:h, 0:w]
            plane = ((np.sin(xx / 7.0) + np.cos(yy / 5.0) + 2) * 63).astype(np.uint8)
            image = ImageVolume(np.repeat(plane[..., None], 3, axis=2)[None] if spec.input.channels == 3 else plane)
            what = f"synthetic {h}x{w} image (no sample in the plugin folder)"
    try:
        result = predict(engine, image, slices=None if spec.input.is_volumetric else [image.n_slices // 2])
    except WorkbenchError as exc:
        raise WorkbenchError(f"smoke run on {what} failed: {exc}") from exc
    t = result.info.timing_ms
    print(f"smoke run ok  {what}: {summary(result)} (pre {t['preprocess']:.1f} ms, inference "
          f"{t['inference']:.1f} ms, post {t['postprocess']:.1f} ms)")
    # bioimage.io packages (issue 12): reproduce the package's own test output
    from ..inference.bioimageio import check_test_tensors

    report = check_test_tensors(engine)
    if report is not None:
        print(report.line())
        if not report.ok:
            return 1
    return 0
