"""``workbench batch -m PLUGIN DIR -o DIR``: a folder of images, prefetched, with progress and summary.csv."""
from __future__ import annotations

import argparse
import csv
import io
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..core.errors import WorkbenchError
from ..core.settings import load_settings
from ._inference_cli import ProgressBar, add_common, summary, warn_provider, write_outputs

NAME = "batch"
HELP = "run a model plugin over a folder of images (prefetching, progress bar, summary CSV)"

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".nii.gz", ".npy")
SUMMARY_FIELDS = ("image", "status", "error", "task", "result", "provider", "preprocess_ms", "inference_ms",
                  "postprocess_ms", "json", "mask", "output", "overlay", "report_html", "report_pdf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", help="folder of images")
    add_common(parser)
    parser.add_argument("-r", "--recursive", action="store_true", help="also search sub-folders")
    parser.add_argument("--prefetch", type=int, default=2, metavar="N",
                        help="images decoded and preprocessed ahead of inference (default 2)")


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files of ``folder`` by suffix, sorted (hidden files skipped)."""
    if not folder.is_dir():
        raise WorkbenchError("not a folder", path=folder)
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    files = [p for p in pattern if p.is_file() and not p.name.startswith(".")
             and p.name.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(files)


def run(args: argparse.Namespace) -> int:
    from ..core.results import DetectionResult
    from ..export.detections import write_detections_csv
    from ..export.prediction import output_stem
    from ..inference.run import Engine, run_many
    from ..io import read_image
    from ..io.atomic import DeferredSync, atomic_write_text

    folder = Path(args.folder)
    files = list_images(folder, args.recursive)
    if not files:
        raise WorkbenchError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder", path=folder)
    settings = load_settings()
    provider = args.provider or settings.provider
    engine = Engine(args.model, provider=provider, settings=settings)
    warn_provider(provider, engine.provider)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)

    def reader(path: Path):
        return read_image(path, max_pixels=settings.max_pixels)

    rows: list[dict] = []
    detections: list[tuple[str, DetectionResult]] = []
    bar = ProgressBar(len(files), f"{engine.spec.id}")
    stems: dict[str, int] = {}
    number = {path: k for k, path in enumerate(files, start=1)}  # reports name images "image <k>"
    # Writing runs on its own threads so that PNG encoding overlaps the next inference. The outputs skip
    # their per-file fsync (still atomic: temp file + os.replace); one os.sync() makes them all durable
    # before summary.csv is written -- see workbench.io.atomic.DeferredSync for why that is enough.
    writer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="workbench-writer")
    deferred = DeferredSync()
    pending: list[tuple[dict, Future]] = []
    failures = 0
    try:
        for done, item in enumerate(run_many(engine, files, reader, prefetch=max(1, args.prefetch)), start=1):
            name = str(Path(item.source).relative_to(folder))
            row = {"image": name}
            if item.error is not None:
                failures += 1
                row.update(status="error", error=str(item.error))
                rows.append(row)
                bar.update(done, f"error: {name}")
                continue
            result, image = item.result, item.image
            stem = output_stem(image, Path(name).name)
            if args.recursive and Path(name).parent != Path("."):
                stem = str(Path(name).parent / stem).replace("/", "_").replace("\\", "_")
            if stem in stems:
                stems[stem] += 1
                stem = f"{stem}_{stems[stem]}"
            else:
                stems[stem] = 0
            t = result.info.timing_ms
            row.update(status="ok", error="", task=result.info.task, result=summary(result),
                       provider=result.info.provider, preprocess_ms=round(t.get("preprocess", 0.0), 2),
                       inference_ms=round(t.get("inference", 0.0), 2),
                       postprocess_ms=round(t.get("postprocess", 0.0), 2))
            if isinstance(result, DetectionResult):
                detections.append((name, result))
            pending.append((row, writer.submit(deferred.run, write_outputs, args, engine, result, image, out_dir,
                                               stem, number.get(item.source, done))))
            rows.append(row)
            bar.update(done, name)
        for row, fut in pending:
            try:
                written = fut.result()
            except WorkbenchError as exc:
                failures += 1
                row.update(status="error", error=str(exc))
                continue
            row.update({k: v.name for k, v in written.items()})
    finally:
        writer.shutdown(wait=True)
        deferred.close()
        bar.close()
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow(row)
    atomic_write_text(out_dir / "summary.csv", buf.getvalue())
    if detections:
        write_detections_csv(out_dir / "detections.csv", detections)
    ok = len(rows) - failures
    print(f"{ok}/{len(rows)} images done -> {out_dir / 'summary.csv'}" +
          (f"; {failures} failed (see the error column)" if failures else ""))
    for row in rows:
        if row.get("status") == "error":
            print(f"workbench: error: {row['image']}: {row['error']}", file=sys.stderr)
    return 2 if failures else 0
