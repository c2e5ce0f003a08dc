"""What common exporters write into a model, and the well-known label sets.

* Ultralytics (YOLOv5u/v8/11 ``export(format="onnx")``): ``custom_metadata_map`` holds ``names`` (a Python
  dict literal ``{0: 'person', ...}``), ``imgsz`` (``[640, 640]``), ``stride`` and ``task``
  (``detect | classify | segment | pose | obb``); preprocessing is RGB, x/255, a centred letterbox padded
  with 114.
* torchvision / timm classifiers exported by ``torch.onnx.export``: producer ``pytorch``, 1000 ImageNet
  classes, ImageNet mean/std on RGB in [0, 1].
* OpenVINO-converted graphs (Open Model Zoo, ``mo``/``ovc`` round trips): producer or metadata naming
  OpenVINO; these take BGR 0-255 with any normalisation folded into the graph.
* Any exporter: label lists under ``names``/``labels``/``classes``/``class_names`` (JSON or Python list or
  dict, or comma/newline separated).
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .graph import Graph

LABEL_KEYS = ("names", "labels", "classes", "class_names")
ULTRALYTICS_TASKS = {"detect": "detection", "classify": "classification"}


@dataclass
class Hints:
    """Exporter facts read from the graph metadata (``family`` is ``None`` when nothing is recognised)."""

    family: str | None = None
    labels: list[str] | None = None
    labels_key: str | None = None
    imgsz: list[int] | None = None
    stride: int | None = None
    task: str | None = None  # exporter's own task word (Ultralytics: detect, classify, segment, ...)
    notes: list[str] = field(default_factory=list)


def _parse_labels(text: str) -> list[str] | None:
    text = text.strip()
    if not text:
        return None
    value: Any = None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
            break
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    if value is None:
        sep = "\n" if "\n" in text else ","
        parts = [p.strip() for p in text.split(sep)]
        return parts if len(parts) > 1 and all(parts) else None
    if isinstance(value, dict):
        try:
            items = sorted(((int(k), str(v)) for k, v in value.items()))
        except (TypeError, ValueError):
            return None
        return [v for _, v in items]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, int)) for v in value):
        return [str(v) for v in value]
    return None


def _int_list(text: str) -> list[int] | None:
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, int):
        return [value, value]
    if isinstance(value, (list, tuple)) and len(value) in (1, 2) and all(isinstance(v, int) for v in value):
        return [int(value[0]), int(value[-1])]
    return None


def read_hints(graph: Graph) -> Hints:
    """Recognise the exporter from the producer name and ``custom_metadata_map``."""
    meta = {k.lower(): v for k, v in graph.metadata.items()}
    hints = Hints()
    for key in LABEL_KEYS:
        if key in meta:
            labels = _parse_labels(meta[key])
            if labels:
                hints.labels, hints.labels_key = labels, key
                break
    producer = graph.producer.lower()
    text = " ".join([producer, meta.get("author", ""), meta.get("description", "")]).lower()
    if "ultralytics" in text or ({"imgsz", "stride", "task"} <= set(meta) and "names" in meta):
        hints.family = "ultralytics"
        hints.imgsz = _int_list(meta.get("imgsz", "")) if "imgsz" in meta else None
        stride = _int_list(meta.get("stride", "")) if "stride" in meta else None
        hints.stride = stride[0] if stride else None
        hints.task = meta.get("task", "").strip().lower() or None
    elif "openvino" in text or any("openvino" in k or k in ("mo_version", "conversion_parameters") for k in meta):
        hints.family = "openvino"
    elif producer.startswith("pytorch"):
        hints.family = "pytorch"
    elif producer.startswith(("tf2onnx", "keras2onnx", "tensorflow")):
        hints.family = "tensorflow"
    return hints


def well_known_labels(name: str) -> list[str]:
    """A label set shipped with Workbench: ``imagenet1k``, ``coco80`` or ``voc21``."""
    text = resources.files(__package__).joinpath("labels", f"{name}.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def guess_label_set(task: str, n_classes: int) -> tuple[str, list[str]] | None:
    """The well-known label set a class count suggests for a task, as ``(description, labels)``."""
    if task == "classification" and n_classes == 1000:
        return "ImageNet-1k (1000 classes)", well_known_labels("imagenet1k")
    if task == "classification" and n_classes == 1001:
        return "ImageNet-1k with a background column first (1001 classes, TF-slim)", \
            ["background", *well_known_labels("imagenet1k")]
    if task == "detection" and n_classes == 80:
        return "COCO-80 (80 classes)", well_known_labels("coco80")
    if task == "detection" and n_classes == 21:
        return "PASCAL VOC with background (21 classes)", well_known_labels("voc21")
    if task == "detection" and n_classes == 20:
        return "PASCAL VOC (20 classes)", well_known_labels("voc21")[1:]
    if task == "segmentation" and n_classes == 21:
        return "PASCAL VOC-21 (background + 20 classes)", well_known_labels("voc21")
    return None
