"""The distributed batch: the same per-image work (:func:`.items.process_one`) on a Dask cluster.

``--workers N`` starts a :class:`distributed.LocalCluster` of N worker processes bound to 127.0.0.1 with
no dashboard; ``--scheduler ADDRESS`` connects to the user's running scheduler and to nothing else (the
client talks to the scheduler only; ``Client.run`` goes through it). A :class:`.worker.EnginePlugin` builds one
:class:`~workbench.inference.run.Engine` (one ONNX Runtime session, sha256-verified) per worker process,
once, and every task of that worker uses it. Tasks are a few input files each (:func:`chunk_size`). A
worker that dies has its tasks rescheduled by the scheduler (a task that kills
``distributed.scheduler.allowed-failures`` + 1 workers is split into one task per input, and the input
that kills them again is reported as that input's error); outputs are written by the workers with the atomic writers,
so a killed or cancelled task leaves no half-written file.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..core.errors import WorkbenchError
from ..core.settings import Settings
from .plan import ItemOutcome, ItemPlan, OutputOptions


class ClusterUnavailable(WorkbenchError):
    """``--workers``/``--scheduler`` without the ``cluster`` extra."""


def require_distributed() -> None:
    """Raise :class:`ClusterUnavailable` (one line, exit 2) when dask.distributed cannot be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ClusterUnavailable("--workers/--scheduler need dask.distributed: pip install 'workbench[cluster]' "
                                 f"(import failed: {exc})") from None


def cpu_count() -> int:
    """The cores this process may run on (the affinity mask, as under taskset or a SLURM allocation)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class LocalLayout:
    """How ``--workers N`` splits the cores: N processes x ``threads`` tasks at once x ``intra_op`` ORT
    threads per task, with N x threads x intra_op <= cores whenever N <= cores."""

    workers: int
    threads: int
    intra_op: int
    cores: int

    def describe(self) -> str:
        over = "" if self.workers * self.threads * self.intra_op <= self.cores else \
            " (more workers than cores: they share them)"
        return (f"local cluster: {self.workers} worker process{'es' if self.workers != 1 else ''} x "
                f"{self.threads} thread{'s' if self.threads != 1 else ''} x {self.intra_op} ONNX Runtime "
                f"intra-op thread{'s' if self.intra_op != 1 else ''} on {self.cores} cores{over}")


def local_layout(workers: int, *, intra_op: int, threads: int | None = None, cores: int | None = None
                 ) -> LocalLayout:
    """Threads per worker for ``--workers N``: the cores left per worker after its ORT intra-op threads
    (the ``intra_op_threads`` setting, 1 by default; 0 = runtime default is pinned to 1 so the product
    stays known), at least 1. ``threads`` overrides (``--threads-per-worker``)."""
    cores = cores or cpu_count()
    intra = max(1, intra_op)
    if threads is None:
        threads = max(1, cores // (workers * intra))
    return LocalLayout(workers, max(1, threads), intra, cores)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# The local cluster's Dask settings. Routes and profiler: see start_local. The rest trims what the
# scheduler, nannies and workers do on timers, which on a desktop competes with the tasks for the same cores
# (measured at 2 cores: every event loop ticked 50 times a second): the loop-latency tick, the memory and
# system monitors, and work stealing, which has nothing to balance between identical local workers.
LOCAL_CONFIG = {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": [],
                "distributed.worker.profile.enabled": False,
                "distributed.admin.tick.interval": "1s",
                "distributed.worker.memory.monitor-interval": "1s",
                "distributed.admin.system-monitor.interval": "2s",
                "distributed.scheduler.work-stealing": False}
MAX_CHUNK = 8


def chunk_size(n_inputs: int, threads: int) -> int:
    """Inputs per task: a Dask task costs ~3-5 ms of scheduler, client and worker CPU (measured, 2 cores),
    which sits on the cores the models need; a few inputs per task share it. At least four tasks per worker
    thread stay, so the workers end together; never more than :data:`MAX_CHUNK` (a retried task redoes
    that many)."""
    return max(1, min(MAX_CHUNK, n_inputs // max(1, 4 * threads)))


def start_local(layout: LocalLayout):
    """``(cluster, client)``: a LocalCluster of ``layout.workers`` processes with every listening socket
    (scheduler, nannies, workers) on 127.0.0.1 and no dashboards."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    # Ctrl+C in a terminal signals the whole process group. Only this process should handle it (cancel,
    # then close the cluster): worker processes started while SIGINT is ignored keep ignoring it (Python
    # leaves an inherited SIG_IGN alone), instead of dying mid-task with a traceback each.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        # Dask always opens an HTTP listener per scheduler and worker (dashboard, /health, /metrics). No
        # dashboard, no routes (every request answers 404), loopback and a free port instead of 8787.
        # The statistical profiler (a stack sample of every task thread each 10 ms) is for the dashboard.
        with dask.config.set(LOCAL_CONFIG):
            cluster = LocalCluster(n_workers=layout.workers, threads_per_worker=layout.threads, processes=True,
                                   host="127.0.0.1", scheduler_port=0, dashboard_address=None,
                                   worker_dashboard_address=None, silence_logs=logging.ERROR,
                                   scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
    except (OSError, TimeoutError, RuntimeError) as exc:
        raise WorkbenchError(f"--workers {layout.workers}: cannot start the local cluster ({_one_line(exc)})") from None
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    return cluster, Client(cluster, set_as_default=False)


def _quiet_logs(dask_worker: Any = None) -> None:
    import logging

    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def quiet_teardown(client: Any, timeout: float = 2.0) -> None:
    """Ctrl+C on a local cluster: silence Dask's loggers here and on the workers before closing it.

    Closing under running tasks makes Dask log errors with tracebacks (a task that finishes after the
    scheduler has gone, a heartbeat on a closed connection); they are noise after a cancel, and the
    command's own line says what happened. Bounded: a busy or dead worker does not delay the exit.
    """
    _quiet_logs()
    thread = threading.Thread(target=lambda: client.run(_quiet_logs, on_error="ignore"), daemon=True)
    thread.start()
    thread.join(timeout)


def describe_cluster(client, address: str) -> str:
    """``cluster tcp://...: 4 workers, 16 threads`` (what ``--scheduler`` found)."""
    workers = client.nthreads()
    threads = sum(workers.values())
    return f"cluster {address}: {len(workers)} worker{'s' if len(workers) != 1 else ''}, {threads} threads"


def connect(address: str, timeout: float = 30.0):
    """A client of the user's scheduler (the only connection made), or a one-line error."""
    from distributed import Client

    if "://" not in address:
        raise WorkbenchError(f"--scheduler {address}: expected tcp://HOST:PORT (or tls://, ucx://)")
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise WorkbenchError(f"--scheduler {address}: cannot connect ({_one_line(exc)})") from None


def run_distributed(client: Any, plans: list[ItemPlan], *, model: str, provider: str, settings: Settings,
                    sha256: str, options: OutputOptions, out_dir: Path,
                    on_done: Callable[[int, ItemPlan, ItemOutcome], None], window: int | None = None,
                    chunk: int | None = None) -> dict[int, ItemOutcome]:
    """Run ``plans`` on ``client``'s cluster; returns ``{plan number: outcome}``.

    At most ``window`` tasks are submitted at a time (default: 8 per worker thread, at least 64), each of
    ``chunk`` inputs (default: :func:`chunk_size`). A task of several inputs that fails as a whole (its
    worker died each time it was tried) is split into one task per input, so only the input that kills its
    worker fails.

    ``on_done(done, plan, outcome)`` is called as futures complete (the progress bar). Ctrl+C cancels
    every pending task and re-raises (the caller closes the cluster).
    """
    from distributed import as_completed

    from .worker import EnginePlugin, run_chunk, setup_error, sync_worker

    plugin = EnginePlugin(model, provider, settings, sha256)
    client.register_plugin(plugin, name=plugin.name)
    errors = {addr: err for addr, err in client.run(setup_error, plugin.name).items() if err}
    if errors and len(errors) == len(client.nthreads()):
        client.unregister_worker_plugin(plugin.name)
        raise WorkbenchError(f"on the workers: {next(iter(errors.values()))}")
    for addr, err in errors.items():
        print(f"workbench: warning: worker {addr}: {err} (its inputs fail)", file=sys.stderr)
    cwd, out = os.getcwd(), str(out_dir.resolve())
    threads = sum(client.nthreads().values())
    # several inputs per task (measured at 2 workers on 2 cores: one input per task cost ~19.5 ms of worker,
    # scheduler and client CPU per image, chunks of 4 ~10.8 ms); a cancelled task stops before its next
    # input (worker.run_chunk), so Ctrl+C does not leave chunks writing while the cluster closes
    k = chunk or chunk_size(len(plans), threads)
    todo = iter([plans[i:i + k] for i in range(0, len(plans), k)])
    retry: list[list[ItemPlan]] = []  # single inputs of a failed chunk, submitted before the rest
    futures: dict[Any, list[ItemPlan]] = {}
    completed = as_completed(loop=client.loop)

    def submit_next() -> None:
        group = retry.pop(0) if retry else next(todo, None)
        if group is not None:
            first = group[0]
            key = f"workbench-{sha256[:8]}-{first.number}-{first.stem}" + (f"-x{len(group)}" if len(group) > 1 else "")
            fut = client.submit(run_chunk, plugin.name, group, options, out, cwd, key=key, pure=False)
            futures[fut] = group
            completed.add(fut)

    # A bounded window of submitted tasks, refilled as they complete: an archive of 10^5 inputs never
    # sits in the scheduler at once, and Ctrl+C has only the window to cancel.
    for _ in range(window or max(64, 8 * threads)):
        submit_next()
    outcomes: dict[int, ItemOutcome] = {}
    done = 0
    try:
        for fut in completed:
            group = futures.pop(fut)
            try:
                results = fut.result()
            except Exception as exc:  # noqa: BLE001 -- a task that crashed its workers fails its input only
                if len(group) > 1:
                    retry.extend([plan] for plan in group)
                    for _ in group:
                        submit_next()
                    continue
                reason = _one_line(exc)
                if type(exc).__name__ == "KilledWorker":
                    reason = "the worker processing this input died each time it was tried"
                results = [ItemOutcome({"image": group[0].name, "status": "error",
                                        "error": f"{type(exc).__name__}: {reason}"})]
            for plan, outcome in zip(group, results):
                done += 1
                outcomes[plan.number] = outcome
                on_done(done, plan, outcome)
            if len(results) < len(group):  # a chunk that stopped early (its worker was closing): redo the rest
                retry.extend([plan] for plan in group[len(results):])
                for _ in group[len(results) + 1:]:
                    submit_next()
            submit_next()
    except BaseException:
        client.cancel(list(futures), force=True)
        raise
    try:
        client.run(sync_worker, plugin.name)
    except Exception as exc:  # noqa: BLE001 -- durability is best effort once every task has finished
        print(f"workbench: warning: could not sync the workers' file systems ({_one_line(exc)})", file=sys.stderr)
    client.unregister_worker_plugin(plugin.name)
    return outcomes
