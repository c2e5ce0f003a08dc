"""Writing a proposed plugin: a complete folder or nothing.

Everything (model copy, sha256, plugin.yaml, labels.txt, the sample) goes into a hidden staging folder
beside the target; the folder is validated with :func:`~workbench.inference.spec.load_plugin` and
smoke-run through a fresh :class:`~workbench.inference.run.Engine` (the sha256 verified, a real session)
and only then renamed into place. Any failure removes the staging folder: never a half-written plugin.
"""
from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from ...core.errors import PluginError, WorkbenchError
from ...core.settings import Settings
from ..checksum import file_sha256
from ..spec import SAMPLE_SUFFIXES, load_plugin
from .propose import MAX_INLINE_LABELS, Proposal

HEADER = ("# Written by `workbench models import` from {source}.\n"
          "# Every field is documented in docs/PLUGINS.md. Weak guesses (check them):{weak}\n")


def _sample_name(sample: Path) -> str | None:
    name = sample.name.lower()
    for suffix in sorted(SAMPLE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return f"sample{suffix}"
    return None


def manifest_text(proposal: Proposal, manifest: dict[str, Any] | None = None) -> str:
    """The plugin.yaml text: a header naming the weak guesses, then the fields in contract order."""
    m = manifest if manifest is not None else proposal.manifest
    weak = sorted({d.field for d in proposal.weak})
    header = HEADER.format(source=proposal.graph.path.name,
                           weak=("\n#   " + "\n#   ".join(weak)) if weak else " none")
    return header + yaml.safe_dump(m, sort_keys=False, allow_unicode=True, width=110)


def write_plugin_folder(proposal: Proposal, target: str | Path, *, manifest: dict[str, Any] | None = None,
                        settings: Settings | None = None, smoke: bool = True) -> Path:
    """Write the plugin folder ``target`` (which must not exist or be empty).

    Parameters
    ----------
    proposal : Proposal
    target : str or Path
    manifest : dict, optional
        An edited manifest (the GUI form); default: the proposal's.
    settings : Settings, optional
    smoke : bool
        Run the written plugin once on its sample (or a synthetic image) before moving it into place.

    Returns
    -------
    Path
        The plugin folder.

    Raises
    ------
    PluginError
        The target exists and is not empty, the manifest does not validate, or the smoke run fails;
        nothing is left behind.
    """
    target = Path(target).expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PluginError("-o: exists and is not an empty folder; choose a new plugin folder", path=target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.importing-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        m = copy.deepcopy(manifest if manifest is not None else proposal.manifest)
        model_dst = staging / "model.onnx"
        shutil.copyfile(proposal.graph.path, model_dst)
        m["model"] = {"file": "model.onnx", "sha256": file_sha256(model_dst)}
        # ONNX external data (issue 11): copy every file the graph loads and put it under the checksum
        from ..guards import external_data_files

        external = {}
        for name in external_data_files(model_dst):
            src = Path(proposal.graph.path).parent / name
            rel = Path(name)
            if rel.is_absolute() or ".." in rel.parts or not src.is_file():
                raise PluginError(f"the model loads external data {name!r}, which is missing or outside its "
                                  "folder", path=proposal.graph.path)
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, staging / rel)
            external[rel.as_posix()] = file_sha256(staging / rel)
        if external:
            m["model"]["external_data"] = external
        out = m.get("output", {})
        labels = out.get("labels")
        if labels and len(labels) > MAX_INLINE_LABELS:
            (staging / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
            out.pop("labels")
            out["labels_file"] = "labels.txt"
        if proposal.sample is not None:
            sample_name = _sample_name(proposal.sample)
            if sample_name is not None and proposal.sample.is_file():
                shutil.copyfile(proposal.sample, staging / sample_name)
                m["sample"] = sample_name
        (staging / "plugin.yaml").write_text(manifest_text(proposal, m), encoding="utf-8")
        spec = load_plugin(staging)
        if smoke:
            _smoke(spec, proposal, settings)
        if target.exists():
            target.rmdir()  # empty (checked above)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _smoke(spec, proposal: Proposal, settings: Settings | None) -> None:
    from ..run import Engine, predict
    from ..session import _CACHE, _CACHE_LOCK

    try:
        engine = Engine(spec, provider="cpu", settings=settings or Settings())
        if spec.input.is_volumetric:  # a 3-D model runs on a whole volume: the crop the candidates ran on
            predict(engine, proposal.probe_image or proposal.image)
        else:
            predict(engine, proposal.image, slices=[proposal.image.n_slices // 2])
    except WorkbenchError as exc:
        raise PluginError(f"the written plugin does not run: {exc}", path=spec.manifest_path) from exc
    finally:
        # the staging folder is renamed next: drop the cached session that points into it
        with _CACHE_LOCK:
            for key in [k for k in _CACHE if k[0] == str(spec.model_path)]:
                del _CACHE[key]
