"""``workbench segment --click/--box -m PLUGIN``: the promptable-model step of the segment command.

The prompt's mask is the first mask of the pipeline; the classic steps given after it (``--islands largest
--fill-holes``...) then clean it up. The model runs through :mod:`workbench.inference.promptable.run`, the
code path of the GUI's AI click tool.
"""
from __future__ import annotations

import argparse

import numpy as np

from ..core.errors import ProcessingError
from ..inference.promptable.prompts import Prompt, PromptError, parse_box, parse_click


def add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("promptable model (a mask from clicks; the steps then apply to it)")
    group.add_argument("-m", "--model", metavar="PLUGIN", default=None,
                       help="a promptable plugin (task: promptable): id, folder or plugin.yaml, e.g. click")
    group.add_argument("--click", dest="clicks", action="append", default=None, metavar="X,Y[,Z][:+|:-]",
                       help="a click in pixels (Z: slice of a stack), applied in order; :+ includes (default), "
                            ":- excludes")
    group.add_argument("--box", default=None, metavar="X0,Y0,X1,Y1", help="a box around the object (pixels)")


def parse_prompt(args: argparse.Namespace) -> Prompt | None:
    """The prompt of the command line, or None when no --click/--box is given (checked before any reading)."""
    clicks = [parse_click(c) for c in (args.clicks or [])]
    box = parse_box(args.box) if args.box is not None else None
    if not clicks and box is None:
        if args.model is not None:
            raise PromptError("-m/--model: give at least one --click or --box for the promptable model")
        return None
    if args.model is None:
        raise PromptError("--click/--box: name the promptable model with -m PLUGIN (e.g. -m click)")
    zs = {c.z for c in clicks}
    if len(zs - {None}) > 1 or (None in zs and len(zs) > 1):
        raise PromptError("--click: give every click the same Z (one slice is segmented)")
    return Prompt(clicks, box)


def prompt_mask(args: argparse.Namespace, vol, prompt: Prompt) -> np.ndarray:
    """The ``(z, y, x)`` bool mask of the prompt (the segmented slice; other slices empty)."""
    from ..inference.promptable.run import segment_with_prompt
    from ..inference.registry import find_plugin

    spec = find_plugin(args.model)
    if spec.task != "promptable":
        raise ProcessingError(f"-m {args.model}: a {spec.task} model; --click needs a promptable one "
                              "(task: promptable)")
    z = prompt.clicks[0].z if prompt.clicks and prompt.clicks[0].z is not None else None
    if z is None and vol.n_slices > 1:
        raise PromptError(f"--click: the image is a stack of {vol.n_slices} slices; give X,Y,Z")
    index = z or 0
    if not 0 <= index < vol.n_slices:
        raise PromptError(f"--click: slice {index} is outside the image's 0..{vol.n_slices - 1}")
    result = segment_with_prompt(spec, vol, prompt, index=index)
    mask = np.zeros((vol.n_slices,) + vol.plane_shape, bool)
    mask[index] = result.mask
    return mask


def check_promptable(spec, args: argparse.Namespace, settings) -> int:
    """``models check`` of a promptable plugin: sessions, then one click at the sample's centre."""
    from ..core.errors import WorkbenchError
    from ..core.image import ImageVolume
    from ..inference.promptable.prompts import Click
    from ..inference.promptable.run import PromptSession

    session = PromptSession(spec, provider=args.provider or "auto", threads=settings.intra_op_threads)
    names = [i.name for i in session.model.get_inputs()]
    extra = f" + decoder {spec.prompt.decoder.file}" if session.decoder is not None else ""
    print(f"session   ok  {spec.prompt.kind}: inputs {', '.join(repr(n) for n in names)}{extra}")
    sample = spec.sample_path
    if sample is not None:
        from ..io import read_image

        image, what = read_image(sample, max_pixels=settings.max_pixels), sample.name
    else:
        yy, xx = np.mgrid[0:128, 0:128]
        image, what = ImageVolume(((np.hypot(yy - 64, xx - 64) < 30) * 200 + 20).astype(np.uint8)), \
            "synthetic 128x128 disk (no sample in the plugin folder)"
    z = image.n_slices // 2
    h, w = image.plane_shape
    try:
        result = session.predict(image, Prompt([Click(w // 2, h // 2)]), index=z)
    except WorkbenchError as exc:
        raise WorkbenchError(f"smoke run on {what} failed: {exc}") from exc
    print(f"smoke run ok  {what}: click at {w // 2},{h // 2} -> {int(result.mask.sum())} px (encoder "
          f"{result.encoder_ms:.1f} ms, decoder {result.decoder_ms:.1f} ms)")
    return 0
