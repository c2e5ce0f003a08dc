"""``workbench batch -m PLUGIN DIR -o DIR [--workers N | --scheduler ADDRESS] [--resume]``: a folder of
images, prefetched, with progress and summary.csv; on all cores or a Dask cluster (docs/SCALING.md)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..batch.plan import IMAGE_SUFFIXES, SUMMARY_FIELDS, ItemOutcome, OutputOptions, list_images  # noqa: F401
from ..core.errors import WorkbenchError
from ..core.settings import load_settings
from ._inference_cli import ProgressBar, add_common, output_dir, warn_provider

NAME = "batch"
HELP = "run a model plugin over a folder of images (prefetching, progress bar, summary CSV; --workers/--scheduler)"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", help="folder of images")
    add_common(parser)
    parser.add_argument("-r", "--recursive", action="store_true", help="also search sub-folders")
    parser.add_argument("--prefetch", type=int, default=2, metavar="N",
                        help="images decoded and preprocessed ahead of inference (default 2; serial run)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive, metavar="N",
                       help="run on a local Dask cluster of N worker processes (loopback only, no dashboard; "
                            "needs the 'cluster' extra)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on a running Dask cluster, e.g. tcp://10.0.0.5:8786 (workers must see DIR, "
                            "-o and the plugin at the same paths)")
    parser.add_argument("--threads-per-worker", type=_positive, metavar="T",
                        help="with --workers: inputs each worker runs at once (default: cores / (N x "
                             "intra-op threads))")
    parser.add_argument("--resume", action="store_true",
                        help="skip inputs whose outputs exist from a run of the same plugin (sha256) and "
                             "options into the same -o folder")


def run(args: argparse.Namespace) -> int:
    distributed = args.workers is not None or args.scheduler is not None
    if args.threads_per_worker is not None and args.workers is None:
        raise WorkbenchError("--threads-per-worker needs --workers N")
    if args.scheduler is not None and "://" not in args.scheduler:
        raise WorkbenchError(f"--scheduler {args.scheduler}: expected tcp://HOST:PORT (or tls://, ucx://)")
    if distributed:
        from ..batch.cluster import require_distributed

        require_distributed()
    from ..io.paths import check_output, protecting

    folder = Path(args.folder)
    out_dir = output_dir(args)
    check_output(out_dir, inputs=[folder], option="-o", force=args.force, folder=True)
    files = list_images(folder, args.recursive, exclude=out_dir)
    if not files:
        raise WorkbenchError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder", path=folder)
    settings = load_settings()
    provider = args.provider or settings.provider
    engine = None
    if distributed:  # the workers load the session; the client only resolves and checks the plugin
        from ..inference.decoders import decoder_for
        from ..inference.registry import find_plugin

        spec = find_plugin(args.model, settings)
        decoder_for(spec, settings)  # an untrusted custom decoder is refused here, not on every worker
    else:
        from ..inference.run import Engine

        engine = Engine(args.model, provider=provider, settings=settings)
        warn_provider(provider, engine.provider)
        spec = engine.spec
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"cannot create the output folder ({exc.strerror or exc})", path=out_dir) from exc
    with protecting(files, enabled=not args.force):
        return _run(args, engine, spec, provider, settings, folder, files, out_dir)


def _run(args, engine, spec, provider, settings, folder: Path, files: list[Path], out_dir: Path) -> int:
    from ..batch.plan import plan_items, write_summary
    from ..batch.resume import check_record, completed, remove_stale_temporaries, run_record, write_record
    from ..io.folders import display

    distributed = engine is None
    options = OutputOptions(no_overlay=args.no_overlay, report=args.report, report_names=args.report_names,
                            report_dates=args.report_dates, recursive=args.recursive)
    plans = plan_items(files, folder, recursive=args.recursive)
    record = run_record(spec, options)
    done: dict[int, ItemOutcome] = {}
    if args.resume:
        check_record(out_dir, record)
        remove_stale_temporaries(out_dir)
        for plan in plans:
            outcome = completed(out_dir, plan, spec.sha256, options)
            if outcome is not None:
                done[plan.number] = outcome
        print(f"resume: {len(done)} of {len(plans)} inputs already done, {len(plans) - len(done)} to run",
              file=sys.stderr)
    write_record(out_dir, record)
    todo = [p for p in plans if p.number not in done]
    bar = ProgressBar(len(todo), f"{spec.id}")
    try:
        if not todo:
            ran: dict[int, ItemOutcome] = {}
        elif distributed:
            ran = _run_on_cluster(args, todo, spec, provider, settings, options, out_dir, bar)
        else:
            from ..batch.serial import run_serial

            ran = run_serial(engine, todo, options, out_dir, prefetch=args.prefetch,
                             on_done=lambda n, name, failed: bar.update(n, f"error: {name}" if failed else name))
    except KeyboardInterrupt:
        bar.close()
        print("workbench: cancelled; every output written so far is complete: run again with --resume to "
              "finish", file=sys.stderr)
        raise
    bar.close()
    outcomes = [done.get(p.number) or ran[p.number] for p in plans]
    write_summary(out_dir, outcomes)
    failures = sum(o.failed for o in outcomes)
    print(display(f"{len(outcomes) - failures}/{len(outcomes)} images done -> {out_dir / 'summary.csv'}") +
          (f"; {failures} failed (see the error column)" if failures else ""))
    for outcome in outcomes:
        if outcome.failed:
            print(display(f"workbench: error: {outcome.row['image']}: {outcome.row['error']}"), file=sys.stderr)
        elif outcome.row.get("warnings"):  # outside the plugin's meta.expects (issue 20): ran, but say so
            print(display(f"workbench: warning: {outcome.row['image']}: outside what {spec.id} was made for: "
                          f"{outcome.row['warnings']}"), file=sys.stderr)
    return 2 if failures else 0


def _run_on_cluster(args, todo, spec, provider, settings, options, out_dir, bar) -> dict[int, ItemOutcome]:
    from ..batch.cluster import connect, describe_cluster, local_layout, run_distributed, start_local

    model = str(Path(args.model).resolve()) if Path(args.model).exists() else args.model
    cluster = None
    if args.scheduler:
        client = connect(args.scheduler)
        worker_settings = settings
    else:
        layout = local_layout(args.workers, intra_op=settings.intra_op_threads, threads=args.threads_per_worker)
        print(f"workbench: {layout.describe()}", file=sys.stderr)
        worker_settings = settings.model_copy(update={"intra_op_threads": layout.intra_op})
        cluster, client = start_local(layout)
    try:
        if args.scheduler:
            print(f"workbench: {describe_cluster(client, args.scheduler)}", file=sys.stderr)

        bar.t0 = time.perf_counter()  # img/s of the run, not of the cluster start

        def on_done(n: int, plan, outcome: ItemOutcome) -> None:
            bar.update(n, f"error: {plan.name}" if outcome.failed else plan.name)

        return run_distributed(client, todo, model=model, provider=provider, settings=worker_settings,
                               sha256=spec.sha256, options=options, out_dir=out_dir, on_done=on_done)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
