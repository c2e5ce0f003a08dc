"""``workbench predict -m PLUGIN IMAGES... -o DIR``: run one plugin, write JSON + mask/restored + overlay."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import WorkbenchError
from ..core.settings import load_settings
from ._inference_cli import add_common, output_dir, summary, warn_outside, warn_provider, write_outputs

NAME = "predict"
HELP = "run a model plugin on images; writes per image a JSON result, the mask / restored image and an overlay"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files, volumes or DICOM folders")
    add_common(parser)


def run(args: argparse.Namespace) -> int:
    from ..inference.run import Engine
    from ..io.paths import check_output, protecting

    out_dir = output_dir(args)
    # a DICOM folder given as input must not receive the outputs (they would join the series); the image
    # files themselves are protected below, whatever their names
    check_output(out_dir, inputs=[p for p in args.images if Path(p).is_dir()], option="-o", force=args.force,
                 folder=True)
    settings = load_settings()
    provider = args.provider or settings.provider
    engine = Engine(args.model, provider=provider, settings=settings)
    warn_provider(provider, engine.provider)
    used_stems: set[str] = set()
    with protecting(args.images, enabled=not args.force):
        return _loop(args, engine, settings, out_dir, used_stems)


def _loop(args, engine, settings, out_dir: Path, used_stems: set[str]) -> int:
    from ..export.prediction import output_stem
    from ..inference.run import predict
    from ..io import read_image

    failures = 0
    for number, name in enumerate(args.images, start=1):
        try:
            image = read_image(name, max_pixels=settings.max_pixels)
            result = predict(engine, image)
            warn_outside(name, engine, result)
            stem = output_stem(image, Path(name).name)
            if stem in used_stems:  # two inputs with the same stem: keep both outputs
                stem = f"{stem}_{len(used_stems)}"
            used_stems.add(stem)
            written = write_outputs(args, engine, result, image, out_dir, stem, number)
        except WorkbenchError as exc:
            if len(args.images) == 1:
                raise
            print(f"workbench: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        t = result.info.timing_ms
        print(f"{name}: {summary(result)} [{engine.provider}, "
              f"{t.get('preprocess', 0) + t.get('inference', 0) + t.get('postprocess', 0):.1f} ms] "
              f"-> {written['json']}")
    return 2 if failures else 0
