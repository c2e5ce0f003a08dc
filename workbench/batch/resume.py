"""``--resume``: the run record of an output folder and the inputs whose outputs are already complete.

Every batch run writes ``OUT/.workbench-batch.json`` first: the plugin (id, version, sha256) and the
options that change the outputs. ``--resume`` refuses a folder whose record differs, and skips an input
when its ``<stem>.json`` exists, records the same plugin sha256, and every file it names exists. The JSON
is written last of an input's files (after the mask, overlay and report it names), and every write is
atomic, so a run killed at any moment leaves each input either complete or redone.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..core.errors import WorkbenchError
from .plan import ItemOutcome, ItemPlan, OutputOptions

RECORD_NAME = ".workbench-batch.json"
RECORD_FORMAT = 1
# What io.atomic leaves behind when a process dies mid-write: ".<name>.<8 random chars><suffix>".
_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.[A-Za-z0-9.]+$")


def run_record(spec: Any, options: OutputOptions) -> dict[str, Any]:
    """The record of a run: plugin identity and output options."""
    return {"format": RECORD_FORMAT, "plugin": {"id": spec.id, "version": spec.version, "sha256": spec.sha256},
            "options": options.as_dict()}


def check_record(out_dir: Path, record: dict[str, Any]) -> None:
    """Refuse to resume into a folder made by another plugin or other options.

    Raises
    ------
    WorkbenchError
        The record differs (names the first differing setting) or cannot be read.
    """
    path = out_dir / RECORD_NAME
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"--resume: cannot read the run record ({exc})", path=path) from exc
    if old.get("plugin", {}).get("sha256") != record["plugin"]["sha256"]:
        raise WorkbenchError(f"--resume: this folder holds results of plugin {old.get('plugin', {}).get('id')!r} "
                             f"sha256 {str(old.get('plugin', {}).get('sha256'))[:12]}..., not "
                             f"{record['plugin']['id']!r} sha256 {record['plugin']['sha256'][:12]}...; "
                             "use another output folder", path=out_dir)
    for key, value in record["options"].items():
        if old.get("options", {}).get(key) != value:
            flag = "--" + key.replace("_", "-")
            raise WorkbenchError(f"--resume: the run in this folder used {flag}={old.get('options', {}).get(key)}, "
                                 f"this one {flag}={value}; use the same options or another output folder",
                                 path=out_dir)


def write_record(out_dir: Path, record: dict[str, Any]) -> None:
    from ..io.atomic import atomic_write_text

    atomic_write_text(out_dir / RECORD_NAME, json.dumps(record, indent=2))


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete the temporary files a killed run left (never a finished output); returns how many."""
    removed = 0
    for path in out_dir.iterdir():
        if path.name != RECORD_NAME and _TEMP.match(path.name) and path.is_file():
            try:
                path.unlink()
                removed += 1
            except OSError:
                continue
    return removed


def completed(out_dir: Path, plan: ItemPlan, sha256: str, options: OutputOptions) -> ItemOutcome | None:
    """The outcome of an input whose outputs are complete (rebuilt from its JSON), else None."""
    path = out_dir / f"{plan.stem}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("plugin", {}).get("sha256") != sha256:
        return None
    files = {"json": path.name}
    task = data.get("task")
    section: dict[str, Any] = data[task] if isinstance(data.get(task), dict) else {}
    if task == "segmentation" and section.get("mask"):
        files["mask"] = section["mask"]
    if task == "restoration" and section.get("output"):
        files["output"] = section["output"]
    if data.get("overlay"):
        files["overlay"] = data["overlay"]
    for kind, name in (data.get("report") or {}).items():
        files[f"report_{kind}"] = name
    if ("overlay" in files) == options.no_overlay or ("report_html" in files) != options.report:
        return None
    if not all((out_dir / name).is_file() for name in files.values()):
        return None
    try:
        return _outcome(plan, data, files)
    except (KeyError, IndexError, TypeError, ValueError):
        return None  # a JSON this version did not write: redo the input


def _outcome(plan: ItemPlan, data: dict[str, Any], files: dict[str, str]) -> ItemOutcome:
    from ..core.results import Detection, DetectionResult, RunInfo, box4

    t = data.get("timing_ms", {})
    row: dict[str, Any] = {"image": plan.name, "status": "ok", "error": "", "task": data["task"],
                           "result": _summary(data), "warnings": "; ".join(data.get("warnings", [])),
                           "provider": data["provider"],
                           "preprocess_ms": round(t.get("preprocess", 0.0), 2),
                           "inference_ms": round(t.get("inference", 0.0), 2),
                           "postprocess_ms": round(t.get("postprocess", 0.0), 2), **files}
    detections = None
    if data["task"] == "detection":
        plugin = data["plugin"]
        info = RunInfo(plugin_id=plugin["id"], plugin_name=plugin.get("name", plugin["id"]),
                       plugin_version=plugin["version"], sha256=plugin["sha256"], provider=data["provider"],
                       task="detection", source_path=data["image"].get("path"), timing_ms=dict(t),
                       slice_indices=list(data.get("slices", [0])))
        dets = [Detection(int(d["index"]), d["label"], float(d["score"]), box4(d["box"]), int(d.get("slice", 0)))
                for d in data["detection"]["detections"]]
        detections = DetectionResult(info, dets)
    return ItemOutcome(row, detections=detections, skipped=True)


def _summary(data: dict[str, Any]) -> str:
    """``Result.summary()`` (:mod:`workbench.core.results`) from a JSON result."""
    task = data["task"]
    if task == "classification":
        top = data["classification"]["top"]
        return f"{top[0]['label']} ({top[0]['score']:.3f})" if top else "no classes"
    if task == "segmentation":
        parts = [f"{c['name']}: {c['pixels']} px" for c in data["segmentation"]["classes"] if c["pixels"]]
        return ", ".join(parts) if parts else "nothing segmented"
    if task == "detection":
        n = len(data["detection"]["detections"])
        return f"{n} detection{'s' if n != 1 else ''}"
    shape = data["restoration"]["shape"]
    h, w = (shape[1], shape[2]) if "slices" in data else (shape[0], shape[1])
    return f"restored {h}x{w}"

