"""The proposal of a volumetric (5-D input) model: :func:`propose` calls this for 3-D graphs.

Rules and criteria: :mod:`.volume3d`. The result is the same :class:`~.propose.Proposal` as for 2-D
models, so ``workbench models import``, the import dialog and the folder writer need no 3-D path of their
own; its ``probe_image`` is the centred crop of the sample (one tile) the candidates ran on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...core.image import ImageVolume
from .exporters import Hints
from .graph import Graph, ImportRefused, TensorInfo
from .guess import Decision
from .normalise import Candidate
from .probe import engine_for, spec_from_manifest
from .volume3d import (
    SYNTHETIC_SHAPE,
    _manifest_input,
    centre_crop,
    guess_volume_input,
    probe_multiple,
    rank_volume,
    read_sample,
    run_candidate,
    spacing_decisions,
    synthetic_volume,
    tile_geometry,
    volume_candidates,
)


def propose_volume(graph: Graph, tensor: TensorInfo, hints: Hints, decisions: list[Decision], *, model: Path,
                   sample: str | Path | ImageVolume | None, task: str | None, label_list: list[str] | None,
                   name: str | None, max_pixels: int | None):
    """Guess the plugin manifest of a 3-D model (see :func:`~.propose.propose` for the parameters).

    Raises
    ------
    ImportRefused
        A task other than segmentation, an input of other than 1 or 3 channels, a graph that runs at no
        probed size, outputs that are no per-voxel map, every candidate failing on the sample.
    WorkbenchError
        Unreadable sample, a label count that does not match.
    """
    from .propose import Proposal, _labels, _located, slug

    if task not in (None, "segmentation"):
        raise ImportRefused(f"--task {task}: 3-D (5-D input) models are imported for segmentation only, the one "
                            "task of the 3-D engine", path=graph.path)
    inp = guess_volume_input(graph, tensor)
    probe_multiple(graph, inp)
    image, sample_path = read_sample(sample, max_pixels)
    has_sample = image is not None and image.n_slices >= 2
    if image is not None and not has_sample:
        decisions.append(Decision("sample", None, f"{image.display_name} is a 2-D image and the model is 3-D: "
                                  "a synthetic phantom volume is used instead (give a NIfTI or DICOM series)", True))
        sample_path = None
    if not has_sample:
        sd, sh, sw = (d if d is not None else s for d, s in zip(inp.dims, SYNTHETIC_SHAPE))
        image = synthetic_volume((sd, sh, sw))
    assert image is not None
    geometry, geo_decisions = tile_geometry(inp, image)
    tile = geometry["tile"]["size"] if "tile" in geometry else geometry["size"]
    crop = centre_crop(image, tile)
    if inp.dtype == "uint8":
        cands, order_why = [Candidate("raw", "gray" if inp.channels == 1 else "rgb", "raw 0-255 (uint8 input)",
                                      {})], "uint8 input: raw values"
    else:
        cands, order_why = volume_candidates(inp.channels, image if has_sample else None)
    ranking = None
    if has_sample and len(cands) > 1:
        ranking = rank_volume(graph, inp, geometry, cands, image, crop)
        chosen = ranking.chosen
        if chosen is None:
            raise ImportRefused("every candidate normalisation failed on the sample: "
                                + "; ".join(c.note for c in ranking.candidates[:2]), path=graph.path)
        tied = [c.label for c in ranking.ties if c is not chosen]
        nxt = ranking.candidates[1] if len(ranking.candidates) > 1 else None
        why = (f"best {ranking.criterion} on a {'x'.join(map(str, crop.data.shape[:3]))} crop of the sample: "
               f"{chosen.score:.4g}" + (f"; tied with {', '.join(tied[:4])}, chosen by convention ({order_why})"
                                        if tied else f"; next {nxt.label} {nxt.score:.4g}" if nxt else ""))
        weak = ranking.weak
    else:
        chosen = cands[0]
        why = order_why + ("" if len(cands) == 1 else "; no sample volume to compare candidates (give --sample)")
        weak = len(cands) > 1
    run = run_candidate(graph, inp, geometry, chosen, image, crop)  # the output rules on the chosen input
    og = run.guess
    manifest: dict[str, Any] = {
        "schema_version": 1, "id": slug(name or model.stem), "name": name or model.stem, "version": "1.0.0",
        "task": "segmentation", "description": f"Imported from {model.name} by workbench models import",
        "model": {"file": "model.onnx", "sha256": "0" * 64}, "input": _manifest_input(inp, geometry, chosen),
        "output": dict(og.output)}
    own = [Decision("input.name", tensor.name, f"the graph's image input {tensor.declared}"),
           Decision("input.layout", inp.layout, inp.layout_why, inp.layout_weak),
           Decision("input.dtype", inp.dtype, f"graph input type {tensor.type}")]
    if inp.multiple_of > 1 or not inp.fixed:
        own.append(Decision("input.multiple_of", inp.multiple_of, inp.multiple_why))
    own += geo_decisions + spacing_decisions(image, has_sample)
    own.append(Decision("input.intensity", chosen.intensity or "none (raw values)", why, weak))
    own.append(Decision("input.color", chosen.color, f"{inp.channels} input channel(s)"))
    decisions[:] = [d for d in decisions if d.field == "meta.exporter"] + og.decisions + \
        [d for d in decisions if d.field != "meta.exporter"] + own
    labels = _labels(og, manifest, label_list, hints, decisions)
    spec = spec_from_manifest(manifest)
    engine_for(_located(spec, graph), graph)  # the graph check the engine will make
    return Proposal(manifest, decisions, graph, inp, image, sample_path, hints, ranking,  # type: ignore[arg-type]
                    labels, crop)
