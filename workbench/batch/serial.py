"""The single-process batch: prefetching reads, inference on this thread, writes on two writer threads."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

from .items import finish_item, read_for
from .plan import ItemOutcome, ItemPlan, OutputOptions


def run_serial(engine: Any, plans: list[ItemPlan], options: OutputOptions, out_dir: Path, *, prefetch: int = 2,
               on_done: Callable[[int, str, bool], None] | None = None) -> dict[int, ItemOutcome]:
    """Run ``plans`` in this process; returns ``{plan number: outcome}``.

    ``on_done(done, name, failed)`` is called after each inference (the progress bar). Writing runs on its
    own threads so that PNG encoding overlaps the next inference. The outputs skip their per-file fsync
    (still atomic: temp file + os.replace); one os.sync() makes them all durable before the caller writes
    summary.csv -- see :class:`workbench.io.atomic.DeferredSync` for why that is enough.
    """
    from ..inference.run import run_many
    from ..io.atomic import DeferredSync

    writer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="workbench-writer")
    deferred = DeferredSync()
    pending: list[tuple[ItemPlan, Future]] = []
    outcomes: dict[int, ItemOutcome] = {}
    items = run_many(engine, [p.source for p in plans], read_for(engine.settings), prefetch=max(1, prefetch))
    try:
        with closing(items):
            for done, item in enumerate(items, start=1):
                plan = plans[done - 1]
                if item.error is not None:
                    outcomes[plan.number] = finish_item(engine, item, plan, options, out_dir)
                else:
                    pending.append((plan, writer.submit(deferred.run, finish_item, engine, item, plan, options,
                                                        out_dir)))
                if on_done is not None:
                    on_done(done, plan.name, item.error is not None)
        for plan, fut in pending:
            outcomes[plan.number] = fut.result()
    finally:
        writer.shutdown(wait=True)
        deferred.close()
    return outcomes
