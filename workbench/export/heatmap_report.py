"""The report section of a heat map: the figure (the image and the map over it) and one sentence on what
the map means and what it does not, with the method's parameters and cost; rendered by the report
engine (:mod:`workbench.export.report`) as HTML and PDF, de-identified like every report."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..core.errors import ExportError
from ..core.image import ImageVolume
from ..io.writers import output_dir
from .heatmap import render_heatmap
from .overlay import display_rgb

_METHOD_NAMES = {"occlusion": "occlusion sensitivity", "rise": "RISE (randomised input sampling)",
                 "gradcam": "Grad-CAM (declared feature map and class weights)",
                 "entropy": "entropy of the class probabilities", "margin": "margin of the two best classes",
                 "tta": "test-time-augmentation disagreement"}


def meaning(expl: Any) -> str:
    """One sentence: what the map shows and what it does not."""
    if expl.method == "gradcam":
        return (f"Bright areas are where the model's last feature map, weighted by its declared class weights, "
                f"supports \u201c{expl.target['label']}\u201d most; the map does not say that the prediction is "
                "right or what the region contains, and it is only as sharp as that feature map.")
    if expl.method in ("occlusion", "rise"):
        baseline = "a blurred copy" if expl.parameters.get("baseline") == "blur" else "the image mean"
        how = (f"hiding that part of the image (a window replaced by {baseline})" if expl.method == "occlusion"
               else "keeping that part of the image in randomly masked copies")
        return (f"Bright areas are where {how} changed the model's score for \u201c{expl.target['label']}\u201d the "
                "most, i.e. the image regions this model relied on for this image; the map does not say that "
                "the prediction is right, what the region contains, or how the model decides on other "
                "images, and it is only as sharp as the window or mask cells.")
    what = {"entropy": "its class probabilities are most evenly split",
            "margin": "its two most likely classes are closest",
            "tta": "flipped copies of the image get a different label"}[expl.method]
    return (f"Bright pixels are where the model hesitates ({what}); the map is not a calibrated probability "
            "of error and stays dark where the model is confidently wrong.")


def build_heatmap_report(expl: Any, image: ImageVolume, *, image_label: str = "image 1",
                         now: _dt.datetime | None = None) -> Any:
    """The :class:`~workbench.export.report.Report` of one heat map."""
    from .report import DISCLAIMER, Picture, Report, Table

    now = now or _dt.datetime.now().astimezone()
    info = expl.info
    name = _METHOD_NAMES.get(expl.method, expl.method)
    pictures = [Picture(display_rgb(image, expl.slice_index), "image"),
                Picture(render_heatmap(expl, image, legend=True), f"{name}: {expl.units}")]
    cost = expl.cost
    rows = [["method", name], ["units", expl.units]]
    if expl.target:
        rows.append(["class explained", f"{expl.target['label']} (score {expl.target['score']:.3f})"])
    if expl.top:
        rows.append(["top class", f"{expl.top['label']} (score {expl.top['score']:.3f})"])
    peak = expl.peak
    rows.append(["peak (x, y)", f"{peak['x']}, {peak['y']} (value {peak['value']:.3g})"])
    for key, value in expl.parameters.items():
        if value is not None:
            rows.append([key.replace("_", " "), str(value)])
    rows.append(["cost", f"{cost.model_runs} model runs in {cost.session_calls} session.run calls, "
                         f"{cost.ms:.0f} ms = {cost.multiple:.0f}x one run ({cost.run_ms:.1f} ms)"])
    for row in expl.summary:
        rows.append([f"label {row['name']}", f"{row['pixels']} px, mean uncertainty {row['mean_uncertainty']:.3f}, "
                                            f"uncertain {100 * row['uncertain_fraction']:.1f}%"])
    provenance = []
    if info is not None:
        provenance = [("Plugin", f"{info.plugin_name} ({info.plugin_id})"), ("Plugin version", info.plugin_version),
                      ("Model sha256", info.sha256), ("Execution provider", info.provider)]
    provenance += [("Report date", now.strftime("%Y-%m-%d %H:%M %Z").strip()), ("Software", f"Workbench {__version__}")]
    plugin_name = info.plugin_name if info is not None else expl.plugin_id
    return Report(
        title="Saliency report" if expl.task == "classification" else "Uncertainty report",
        subtitle=f"{plugin_name} \u00b7 {image_label}" + (f" \u00b7 slice {expl.slice_index + 1}"
                                                           if image.n_slices > 1 else ""),
        summary=meaning(expl), disclaimer=DISCLAIMER, intended_use="", pictures=pictures,
        image_fields=[("Image", image_label), ("Size", f"{image.width} \u00d7 {image.height} px")],
        findings=Table(columns=["", ""], rows=rows, numeric=[False, False]), provenance=provenance,
        generated=now.strftime("%Y-%m-%d %H:%M"),
        footer="De-identified report: no patient data and no file paths are shown.")


def write_heatmap_report(expl: Any, image: ImageVolume, out_dir: str | Path, stem: str, *,
                         formats: Sequence[str] = ("html", "pdf"), image_label: str = "image 1") -> dict[str, Path]:
    """Write ``<stem>_saliency_report.html`` / ``.pdf``; returns ``{"report_html": ..., "report_pdf": ...}``.

    Raises
    ------
    ExportError
    """
    from .report.write import write_report_files

    report = build_heatmap_report(expl, image, image_label=image_label)
    out_dir = output_dir(out_dir)
    bad = next((f for f in formats if f not in ("html", "pdf")), None)
    if bad is not None:
        raise ExportError(f"report format {bad}: expected html or pdf")
    return write_report_files(report, out_dir, f"{stem}_saliency_report", formats)
