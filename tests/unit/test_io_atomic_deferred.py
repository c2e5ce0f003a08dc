"""DeferredSync: atomic writes without a per-file fsync, made durable by one sync at the end."""
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from workbench.io import atomic
from workbench.io.atomic import DeferredSync, atomic_write_bytes, atomic_write_text


@pytest.fixture
def calls(monkeypatch):
    seen = {"fsync": 0, "sync": 0}
    real_fsync = os.fsync

    def fsync(fd):
        seen["fsync"] += 1
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "sync", lambda: seen.__setitem__("sync", seen["sync"] + 1), raising=False)
    return seen


def test_plain_writes_fsync_each_file(tmp_path, calls):
    atomic_write_text(tmp_path / "a.txt", "a")
    atomic_write_bytes(tmp_path / "b.bin", b"b")
    assert calls == {"fsync": 2, "sync": 0}


def test_deferred_writes_on_worker_threads_sync_once(tmp_path, calls):
    deferred = DeferredSync()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(deferred.run, atomic_write_text, tmp_path / f"f{i}.txt", str(i)) for i in range(6)]
        for f in futures:
            f.result()
    assert calls == {"fsync": 0, "sync": 0}
    # atomic all the same: final names hold the full content, no temporary files are left
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"f{i}.txt" for i in range(6)]
    assert (tmp_path / "f3.txt").read_text() == "3"
    deferred.close()
    deferred.close()  # idempotent
    assert calls == {"fsync": 0, "sync": 1}
    # the deferral is scoped to run(): the same thread writes durably again outside it
    atomic_write_text(tmp_path / "after.txt", "x")
    assert calls["fsync"] == 1


def test_writes_after_close_fsync_themselves(tmp_path, calls):
    deferred = DeferredSync()
    deferred.close()
    deferred.run(atomic_write_text, tmp_path / "late.txt", "late")
    assert calls == {"fsync": 1, "sync": 0} and (tmp_path / "late.txt").read_text() == "late"


def test_failed_write_leaves_previous_file(tmp_path, calls):
    target = tmp_path / "keep.txt"
    target.write_text("old")

    def boom():
        with atomic.atomic_open(target) as fh:
            fh.write("new, half written")
            raise OSError("disk full")

    with DeferredSync() as deferred, pytest.raises(OSError):
        deferred.run(boom)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    assert calls["sync"] == 0  # nothing was written through it
