"""The distributed batch: the same per-image work (:func:`.items.process_one`) on a Dask cluster.

``--workers N`` starts a :class:`distributed.LocalCluster` of N worker processes bound to 127.0.0.1 with
no dashboard; ``--scheduler ADDRESS`` connects to the user's running scheduler and to nothing else (the
client talks to the scheduler only; ``Client.run`` goes through it). A :class:`.worker.EnginePlugin` builds one
:class:`~workbench.inference.run.Engine` (one ONNX Runtime session, sha256-verified) per worker process,
once, and every task of that worker uses it. Tasks are one input file each. A worker that dies has its
tasks rescheduled by the scheduler (a task that kills ``distributed.scheduler.allowed-failures`` + 1
workers is reported as that input's error); outputs are written by the workers with the atomic writers,
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
        with dask.config.set({"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": [],
                              "distributed.worker.profile.enabled": False}):
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
                    on_done: Callable[[int, ItemPlan, ItemOutcome], None], window: int | None = None
                    ) -> dict[int, ItemOutcome]:
    """Run ``plans`` on ``client``'s cluster; returns ``{plan number: outcome}``.

    At most ``window`` tasks are submitted at a time (default: 8 per worker thread, at least 64).

    ``on_done(done, plan, outcome)`` is called as futures complete (the progress bar). Ctrl+C cancels
    every pending task and re-raises (the caller closes the cluster).
    """
    from distributed import as_completed

    from .worker import EnginePlugin, run_task, setup_error, sync_worker

    plugin = EnginePlugin(model, provider, settings, sha256)
    client.register_plugin(plugin, name=plugin.name)
    errors = {addr: err for addr, err in client.run(setup_error, plugin.name).items() if err}
    if errors and len(errors) == len(client.nthreads()):
        client.unregister_worker_plugin(plugin.name)
        raise WorkbenchError(f"on the workers: {next(iter(errors.values()))}")
    for addr, err in errors.items():
        print(f"workbench: warning: worker {addr}: {err} (its inputs fail)", file=sys.stderr)
    cwd, out = os.getcwd(), str(out_dir.resolve())
    todo = iter(plans)
    futures: dict[Any, ItemPlan] = {}
    completed = as_completed(loop=client.loop)

    def submit_next() -> None:
        plan = next(todo, None)
        if plan is not None:
            fut = client.submit(run_task, plugin.name, plan, options, out, cwd,
                                key=f"workbench-{sha256[:8]}-{plan.number}-{plan.stem}", pure=False)
            futures[fut] = plan
            completed.add(fut)

    # A bounded window of submitted tasks, refilled as they complete: an archive of 10^5 inputs never
    # sits in the scheduler at once, and Ctrl+C has only the window to cancel.
    for _ in range(window or max(64, 8 * sum(client.nthreads().values()))):
        submit_next()
    outcomes: dict[int, ItemOutcome] = {}
    try:
        for done, fut in enumerate(completed, start=1):
            plan = futures.pop(fut)
            try:
                outcome = fut.result()
            except Exception as exc:  # noqa: BLE001 -- a task that crashed its workers fails its input only
                reason = _one_line(exc)
                if type(exc).__name__ == "KilledWorker":
                    reason = "the worker processing this input died each time it was tried"
                outcome = ItemOutcome({"image": plan.name, "status": "error",
                                       "error": f"{type(exc).__name__}: {reason}"})
            outcomes[plan.number] = outcome
            on_done(done, plan, outcome)
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
