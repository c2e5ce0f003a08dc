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


def list_images(folder: Path, recursive: bool = False, *, exclude: Path | None = None) -> list[Path]:
    """Image files of ``folder`` by suffix, sorted (hidden files skipped).

    ``exclude`` is the output folder: nothing below it, and no file listed in a ``summary.csv`` of it (the
    outputs of an earlier run), is taken as an input -- a batch never reads its own outputs. Dangling
    symlinks, symlink loops and files that are not regular (FIFOs, devices) are skipped with a note.
    """
    from ..io.folders import scan_folder

    return scan_folder(folder, recursive=recursive, suffixes=IMAGE_SUFFIXES, exclude=exclude,
                       exclude_listed=_listed_outputs(exclude) if exclude is not None else ())


def _listed_outputs(out_dir: Path) -> set[str]:
    """File names an earlier run recorded in ``out_dir/summary.csv`` (its json/mask/output/overlay/report
    columns)."""
    path = out_dir / "summary.csv"
    names: set[str] = set()
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            for row in csv.DictReader(fh):
                for key in ("json", "mask", "output", "overlay", "report_html", "report_pdf"):
                    if row.get(key):
                        names.add(str(out_dir / _unescape_cell(row[key])))
    except OSError:
        pass
    return names


def _unescape_cell(value: str) -> str:
    from ..io.csv_safe import unescape_cell

    return unescape_cell(value)


def run(args: argparse.Namespace) -> int:
    from ..inference.run import Engine
    from ..io.paths import check_output, protecting

    folder = Path(args.folder)
    out_dir = Path(args.output)
    check_output(out_dir, inputs=[folder], option="-o", force=args.force, folder=True)
    files = list_images(folder, args.recursive, exclude=out_dir)
    if not files:
        raise WorkbenchError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder", path=folder)
    settings = load_settings()
    provider = args.provider or settings.provider
    engine = Engine(args.model, provider=provider, settings=settings)
    warn_provider(provider, engine.provider)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"cannot create the output folder ({exc.strerror or exc})", path=out_dir) from exc
    with protecting(files, enabled=not args.force):
        return _run(args, engine, settings, folder, files, out_dir)


def _run(args, engine, settings, folder: Path, files: list[Path], out_dir: Path) -> int:
    from ..core.results import DetectionResult
    from ..export.detections import write_detections_csv
    from ..export.prediction import output_stem
    from ..inference.run import run_many
    from ..io import read_image
    from ..io.atomic import DeferredSync, atomic_write_text
    from ..io.csv_safe import escape_row
    from ..io.folders import display

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
    for row in rows:  # text cells escaped against formula injection; undecodable file-name bytes as U+FFFD
        w.writerow(escape_row({k: display(v) if isinstance(v, str) else v for k, v in row.items()}))
    summary_path = out_dir / "summary.csv"
    try:
        atomic_write_text(summary_path, buf.getvalue())
    except OSError as exc:  # a full disk: the failed images' files are already gone (write_prediction)
        raise WorkbenchError(f"cannot write the summary ({exc.strerror or exc}); {len(rows) - failures} of "
                             f"{len(rows)} images were written", path=summary_path) from exc
    if detections:
        write_detections_csv(out_dir / "detections.csv", detections)
    ok = len(rows) - failures
    print(display(f"{ok}/{len(rows)} images done -> {summary_path}") +
          (f"; {failures} failed (see the error column)" if failures else ""))
    for row in rows:
        if row.get("status") == "error":
            print(display(f"workbench: error: {row['image']}: {row['error']}"), file=sys.stderr)
    return 2 if failures else 0
