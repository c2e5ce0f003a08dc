"""The batch work list (stems fixed up front), the local cluster layout and the resume checks."""
from __future__ import annotations

import json
from pathlib import Path

from workbench.batch.cluster import local_layout
from workbench.batch.plan import OutputOptions, plan_items
from workbench.batch.resume import completed, remove_stale_temporaries


def test_stems_are_fixed_from_paths_in_list_order(tmp_path):
    folder = tmp_path / "in"
    files = [folder / n for n in ("a.png", "a.tif", "ct.nii.gz", "sub/a.png", "x.ome.tiff")]
    plans = plan_items(sorted(files), folder, recursive=True)
    assert [(p.name, p.stem, p.number) for p in plans] == [
        ("a.png", "a", 1), ("a.tif", "a_1", 2), ("ct.nii.gz", "ct", 3), ("sub/a.png", "sub_a", 4),
        ("x.ome.tiff", "x", 5)]
    flat = plan_items([folder / "a.png", folder / "a.tif"], folder)
    assert [p.stem for p in flat] == ["a", "a_1"]


def test_local_layout_keeps_workers_times_threads_within_the_cores():
    assert (local_layout(2, intra_op=1, cores=2).threads, local_layout(1, intra_op=1, cores=2).threads) == (1, 2)
    lay = local_layout(2, intra_op=2, cores=8)
    assert lay.workers * lay.threads * lay.intra_op == 8
    assert local_layout(3, intra_op=0, cores=2).threads == 1  # more workers than cores: 1 thread, said so
    assert "share them" in local_layout(3, intra_op=1, cores=2).describe()
    assert local_layout(1, intra_op=1, cores=2, threads=1).describe().startswith(
        "local cluster: 1 worker process x 1 thread x 1 ONNX Runtime intra-op thread on 2 cores")


def _result(out: Path, stem: str, sha: str, *, overlay: bool = True) -> None:
    data = {"task": "segmentation", "image": {"path": f"in/{stem}.png", "shape": [4, 4]},
            "plugin": {"id": "p", "name": "p", "version": "1", "sha256": sha}, "provider": "CPUExecutionProvider",
            "timing_ms": {"preprocess": 1.0, "inference": 2.0, "postprocess": 3.004},
            "segmentation": {"mask": f"{stem}_mask.png",
                             "classes": [{"value": 1, "name": "blob", "color": "#f00", "pixels": 5, "area_mm2": None}]}}
    (out / f"{stem}_mask.png").write_bytes(b"png")
    if overlay:
        data["overlay"] = f"{stem}_overlay.png"
        (out / f"{stem}_overlay.png").write_bytes(b"png")
    (out / f"{stem}.json").write_text(json.dumps(data))


def test_completed_needs_the_same_sha256_options_and_every_named_file(tmp_path):
    plan = plan_items([tmp_path / "in" / "a.png"], tmp_path / "in")[0]
    out = tmp_path / "out"
    out.mkdir()
    _result(out, "a", "f" * 64)
    done = completed(out, plan, "f" * 64, OutputOptions())
    assert done is not None and done.skipped
    assert done.row == {"image": "a.png", "status": "ok", "error": "", "task": "segmentation",
                        "result": "blob: 5 px", "warnings": "", "provider": "CPUExecutionProvider",
                        "preprocess_ms": 1.0,
                        "inference_ms": 2.0, "postprocess_ms": 3.0, "json": "a.json", "mask": "a_mask.png",
                        "overlay": "a_overlay.png"}
    assert completed(out, plan, "e" * 64, OutputOptions()) is None  # another plugin
    assert completed(out, plan, "f" * 64, OutputOptions(no_overlay=True)) is None  # other options
    assert completed(out, plan, "f" * 64, OutputOptions(report=True)) is None
    (out / "a_mask.png").unlink()
    assert completed(out, plan, "f" * 64, OutputOptions()) is None  # a named file is missing


def test_stale_temporaries_are_removed_and_outputs_kept(tmp_path):
    keep = ["a.json", "a_mask.png", ".workbench-batch.json", "summary.csv", ".hidden"]
    stale = [".a_mask.k2j_x9a1.png", ".summary.abcdefgh.csv", ".ct_mask.nii.0a1b2c3d.nii.gz"]
    for name in keep + stale:
        (tmp_path / name).write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == len(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_worker_plugin_checks_the_plugin_sha256(tmp_path, monkeypatch):
    import signal

    # EnginePlugin.setup ignores SIGINT (right in a worker process); here it would leak into the test
    # process, and every later subprocess of the suite would inherit SIG_IGN and ignore Ctrl+C
    monkeypatch.setattr(signal, "signal", lambda *a: signal.SIG_DFL)
    import pytest

    pytest.importorskip("distributed")
    import onnx_factory as F

    from workbench.batch.worker import EnginePlugin
    from workbench.core.settings import Settings
    from workbench.inference.session import clear_session_cache

    seg = {"id": "blobs", "task": "segmentation", "input": {"color": "gray", "resize": "stretch", "size": [8, 8]},
           "output": {"classes": [{"name": "background"}, {"name": "blob"}]}}
    folder = F.write_plugin(tmp_path / "p", F.threshold_segmenter(1), seg)
    from workbench.inference.registry import find_plugin

    sha = find_plugin(str(folder), Settings()).sha256
    clear_session_cache()
    good = EnginePlugin(str(folder), "cpu", Settings(), sha)
    good.setup()
    assert good.error is None and good.engine.spec.sha256 == sha
    other = EnginePlugin(str(folder), "cpu", Settings(), "0" * 64)  # the client resolved another version
    other.setup()
    assert other.engine is None and "another version of the plugin" in other.error
    clear_session_cache()
    (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes() + b"\0")  # tampered on this worker
    tampered = EnginePlugin(str(folder), "cpu", Settings(), sha)
    tampered.setup()
    assert tampered.engine is None and "sha256" in tampered.error
    clear_session_cache()
