"""What runs inside a Dask worker process (imported only there and by :mod:`.cluster`: needs distributed)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin, get_worker

from ..core.errors import PluginError, WorkbenchError
from ..core.settings import Settings
from .plan import ItemOutcome, ItemPlan, OutputOptions

PLUGIN_PREFIX = "workbench-engine-"


class EnginePlugin(WorkerPlugin):
    """A worker plugin: one :class:`Engine` per worker process, created in :meth:`setup`.

    ``setup`` refuses to run a plugin whose manifest sha256 is not the one the client resolved (another
    version installed on that worker), and the session creation itself verifies the model file against
    that sha256 (:func:`workbench.inference.checksum.verify_sha256`), on every worker.
    """

    idempotent = False

    def __init__(self, model: str, provider: str, settings: Settings, sha256: str) -> None:
        self.model = model
        self.provider = provider
        self.settings = settings
        self.sha256 = sha256
        self.engine: Any = None
        self.deferred: Any = None
        self.error: str | None = None

    @property
    def name(self) -> str:
        return PLUGIN_PREFIX + self.sha256[:16]

    def setup(self, worker: Any = None) -> None:
        from ..inference.run import Engine
        from ..io.atomic import DeferredSync

        _ignore_sigint()
        # One task slot = one core (plus ORT's intra-op threads): OpenCV's own pool (one thread per core in
        # every worker) would oversubscribe the cores the layout already gave out. Results are the same.
        import cv2

        cv2.setNumThreads(1)
        try:
            engine = Engine(self.model, provider=self.provider, settings=self.settings)
            if engine.spec.sha256 != self.sha256:
                raise PluginError(f"this worker has another version of the plugin (sha256 "
                                  f"{engine.spec.sha256[:12]}..., the client's is {self.sha256[:12]}...)",
                                  path=self.model)
        except WorkbenchError as exc:
            self.error = str(exc)  # reported by every task of this worker, as that input's error
            return
        self.engine = engine
        self.deferred = DeferredSync()

    def teardown(self, worker: Any = None) -> None:
        if self.deferred is not None:
            self.deferred.close()

    def sync(self) -> None:
        """Make this worker's outputs durable (one ``os.sync``), then keep deferring."""
        from ..io.atomic import DeferredSync

        if self.deferred is not None:
            old, self.deferred = self.deferred, DeferredSync()
            old.close()


def _ignore_sigint() -> None:
    """A worker restarted by its nanny (after a crash) must not die of the client's Ctrl+C either: the
    client cancels and closes the cluster itself (see :func:`.cluster.start_local`)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _plugin_on_worker(name: str) -> EnginePlugin:
    plugin = get_worker().plugins.get(name)
    if not isinstance(plugin, EnginePlugin):
        raise WorkbenchError("the workbench plugin is not set up on this worker")
    return plugin


def run_task(plugin_name: str, plan: ItemPlan, options: OutputOptions, out_dir: str,
             client_cwd: str) -> ItemOutcome:
    """One input on a worker: the worker's engine, the shared :func:`.items.process_one`."""
    from .items import process_one

    plugin = _plugin_on_worker(plugin_name)
    if plugin.engine is None:
        return ItemOutcome({"image": plan.name, "status": "error", "error": plugin.error or "no engine"})
    return plugin.deferred.run(process_one, plugin.engine, plan, options, Path(out_dir), plugin.engine.settings,
                               client_cwd=client_cwd)


def run_chunk(plugin_name: str, plans: list[ItemPlan], options: OutputOptions, out_dir: str,
              client_cwd: str) -> list[ItemOutcome]:
    """Several inputs in one task (:func:`run_task` each, in order): one scheduler round trip for all.

    Stops before the next input once the task is cancelled (Ctrl+C: the client cancels every pending
    task) or the worker is closing, so a cancelled run does not go on writing a chunk's remaining outputs
    while the cluster shuts down; the outcomes of a cancelled task are never read.
    """
    outcomes = []
    for i, plan in enumerate(plans):
        if i and _task_cancelled():
            break
        outcomes.append(run_task(plugin_name, plan, options, out_dir, client_cwd))
    return outcomes


def _task_cancelled() -> bool:
    """True when the task this thread runs was cancelled or released, or its worker is shutting down."""
    try:
        worker = get_worker()
        task = worker.state.tasks.get(worker.get_current_task())
        return task is None or task.state in ("cancelled", "released") or \
            worker.status.name not in ("running", "paused")
    except (ValueError, AttributeError, KeyError):  # not inside a task (a direct call): keep going
        return False


def sync_worker(plugin_name: str, dask_worker: Any = None) -> int:
    """``Client.run`` target: make the files this worker wrote durable; returns its pid."""
    plugin = dask_worker.plugins.get(plugin_name) if dask_worker is not None else None
    if plugin is not None:
        plugin.sync()
    return os.getpid()


def setup_error(plugin_name: str, dask_worker: Any = None) -> str | None:
    """``Client.run`` target: why this worker has no engine (None when it has one)."""
    plugin = dask_worker.plugins.get(plugin_name) if dask_worker is not None else None
    if plugin is None:
        return "the workbench plugin is not set up on this worker"
    return plugin.error
