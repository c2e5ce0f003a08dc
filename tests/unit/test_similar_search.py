"""Similar-case search (issue 18): embedding plugins, the index file, `workbench index` and `workbench search`."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx import helper

from tests.onnx_factory import const, model, vi, write_plugin
from workbench.cli import main
from workbench.core.errors import InferenceError
from workbench.inference.embedding import Embedder, to_vector
from workbench.inference.spec import EmbeddingSpec, load_plugin

SIDE = 32


def projection_encoder(folder: Path, dim: int = 24) -> Path:
    """A fixed random projection of the 32x32 gray image: distances between images are roughly kept."""
    weights = np.random.default_rng(0).standard_normal((SIDE * SIDE, dim)).astype(np.float32)
    nodes = [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "w"], ["embedding"])]
    proto = model(nodes, [vi("input", [1, 1, SIDE, SIDE])], [vi("embedding", [1, dim])], [const("w", weights)])
    return write_plugin(folder, proto, {"id": "proj-encoder", "task": "embedding",
                                        "input": {"color": "gray", "size": [SIDE, SIDE],
                                                  "intensity": {"scale": 1 / 255}},
                                        "output": {"name": "embedding"}})


def pooled_encoder(folder: Path) -> Path:
    """A 'feature map' (1, 16, 8, 8): the image reshaped into 16 channels, averaged by pool: avg."""
    nodes = [helper.make_node("Reshape", ["input", "shape"], ["fmap"])]
    proto = model(nodes, [vi("input", [1, 1, SIDE, SIDE])], [vi("fmap", [1, 16, 8, 8])],
                  [const("shape", np.array([1, 16, 8, 8], dtype=np.int64))])
    return write_plugin(folder, proto, {"id": "pool-encoder", "task": "embedding",
                                        "input": {"color": "gray", "size": [SIDE, SIDE]},
                                        "embedding": {"pool": "avg", "l2_normalize": False}})


def texture(seed: int, side: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((side, side)).astype(np.float32), (0, 0), 2 + seed % 3)
    img = (img - img.min()) / (np.ptp(img) + 1e-6)
    return (img * 255).astype(np.uint8)


def library(folder: Path, n: int, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        path = folder / f"img{i:03d}.png"
        cv2.imwrite(str(path), texture(i))
        paths.append(path)
    return paths


def cli(*argv: str, capsys) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def stored(db: Path) -> list[tuple[str, int]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT f.path, v.slice FROM vectors v JOIN files f ON f.id = v.file_id").fetchall()
    finally:
        con.close()


# -- the contract ----------------------------------------------------------------------------------------
def test_embedding_spec_defaults_and_refusals(tmp_path):
    spec = load_plugin(projection_encoder(tmp_path / "enc"))
    assert spec.task == "embedding" and spec.embedding == EmbeddingSpec()
    assert spec.embedding.l2_normalize and spec.embedding.pool == "none"
    bad = tmp_path / "bad"
    write_plugin(bad, (tmp_path / "enc" / "model.onnx").read_bytes(),
                 {"id": "bad", "task": "classification", "embedding": {"pool": "avg"}})
    with pytest.raises(Exception, match="embedding: is for task: embedding, not classification"):
        load_plugin(bad)


def test_to_vector_pools_and_normalises():
    fmap = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    vec = to_vector(fmap, EmbeddingSpec(pool="avg", l2_normalize=False))
    np.testing.assert_allclose(vec, fmap.mean(axis=(2, 3))[0])
    vec = to_vector(fmap.transpose(0, 2, 3, 1), EmbeddingSpec(pool="avg", layout="NHWC"))
    np.testing.assert_allclose(vec, fmap.mean(axis=(2, 3))[0] / np.linalg.norm(fmap.mean(axis=(2, 3))[0]),
                               rtol=1e-6)
    with pytest.raises(InferenceError, match="declare embedding.pool: avg"):
        to_vector(fmap, EmbeddingSpec())


def test_embedder_runs_through_preprocessing(tmp_path):
    from workbench.core.image import ImageVolume

    img = texture(3)
    emb = Embedder(pooled_encoder(tmp_path / "pool"))
    vec = emb.embed(ImageVolume(img[np.newaxis].astype(np.float32)))[0]
    # stretch to 32x32 then 16 channels of 64 consecutive pixels each: the means of the resized image
    small = cv2.resize(img.astype(np.float32), (SIDE, SIDE), interpolation=cv2.INTER_LINEAR)
    assert vec.shape == (16,)
    assert abs(float(vec.mean()) - float(small.mean())) < 2.0  # same image, resize filter aside


# -- index + search --------------------------------------------------------------------------------------
def test_index_then_search_finds_itself_first(tmp_path, capsys):
    enc = projection_encoder(tmp_path / "enc")
    paths = library(tmp_path / "lib", 8)
    db = tmp_path / "lib.wbindex"
    code, out, _ = cli("index", str(tmp_path / "lib"), "--db", str(db), "-m", str(enc), capsys=capsys)
    assert code == 0 and "8 added" in out and "8 files, 8 vectors" in out
    code, out, _ = cli("search", str(paths[5]), "--db", str(db), "-k", "3", "--json", capsys=capsys)
    hits = json.loads(out)
    assert code == 0 and len(hits) == 3
    assert hits[0]["path"] == str(paths[5].resolve()) and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert hits[1]["score"] < 0.9999 and hits[0]["rank"] == 1
    # a slightly noisy copy (not in the index) still finds its source first
    noisy = texture(5).astype(np.int16) + np.random.default_rng(1).integers(-6, 7, (64, 64))
    cv2.imwrite(str(tmp_path / "query.png"), np.clip(noisy, 0, 255).astype(np.uint8))
    code, out, _ = cli("search", str(tmp_path / "query.png"), "--db", str(db), capsys=capsys)
    assert code == 0 and out.splitlines()[0].endswith(str(paths[5].resolve()))
    # no patient fields: only the stored columns
    con = sqlite3.connect(db)
    cols = {r[1] for r in con.execute("PRAGMA table_info(files)")}
    con.close()
    assert cols == {"id", "path", "fingerprint", "modality", "n_slices"}


def test_incremental_rerun_adds_changes_and_removes(tmp_path, capsys):
    enc = projection_encoder(tmp_path / "enc")
    lib = tmp_path / "lib"
    paths = library(lib, 5)
    db = tmp_path / "lib.wbindex"
    assert cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)[0] == 0
    code, out, _ = cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)
    assert "0 added, 0 changed, 5 unchanged, 0 removed" in out
    library(lib, 1, start=10)  # add
    cv2.imwrite(str(paths[1]), texture(20))  # change
    paths[2].unlink()  # delete
    code, out, _ = cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)
    assert code == 0 and "1 added, 1 changed, 3 unchanged, 1 removed" in out and "5 files, 5 vectors" in out
    entries = stored(db)
    assert str(paths[2].resolve()) not in {p for p, _ in entries} and len(entries) == 5
    code, out, _ = cli("search", str(paths[1]), "--db", str(db), "-k", "1", "--json", capsys=capsys)
    hit = json.loads(out)[0]
    assert hit["path"] == str(paths[1].resolve()) and hit["score"] == pytest.approx(1.0, abs=1e-5)


def test_corrupt_file_is_skipped_with_a_line(tmp_path, capsys):
    enc = projection_encoder(tmp_path / "enc")
    lib = tmp_path / "lib"
    library(lib, 3)
    (lib / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code, out, _ = cli("index", str(lib), "--db", str(tmp_path / "x.wbindex"), "-m", str(enc), capsys=capsys)
    lines = out.splitlines()
    assert code == 0 and "3 added" in lines[0] and "1 skipped" in lines[0]
    assert len(lines) == 2 and lines[1].startswith(f"skipped {(lib / 'broken.png').resolve()}: ")


def test_newer_schema_and_foreign_files_are_refused(tmp_path, capsys):
    enc = projection_encoder(tmp_path / "enc")
    library(tmp_path / "lib", 2)
    db = tmp_path / "lib.wbindex"
    assert cli("index", str(tmp_path / "lib"), "--db", str(db), "-m", str(enc), capsys=capsys)[0] == 0
    con = sqlite3.connect(db)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    for argv in (("index", str(tmp_path / "lib"), "--db", str(db), "-m", str(enc)),
                 ("search", str(tmp_path / "lib" / "img000.png"), "--db", str(db))):
        code, out, err = cli(*argv, capsys=capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "schema version 99 is newer than this workbench reads (2)" in err
    (tmp_path / "junk.wbindex").write_bytes(b"hello, not sqlite" * 100)
    code, _, err = cli("search", str(tmp_path / "lib" / "img000.png"), "--db", str(tmp_path / "junk.wbindex"),
                       capsys=capsys)
    assert code == 2 and "not a workbench index" in err and len(err.strip().splitlines()) == 1
    other = tmp_path / "other"
    write_plugin(other, (enc / "model.onnx").read_bytes(),
                 {"id": "other-encoder", "task": "embedding", "input": {"color": "gray", "size": [SIDE, SIDE]}})
    fresh = tmp_path / "fresh.wbindex"
    assert cli("index", str(tmp_path / "lib"), "--db", str(fresh), "-m", str(enc), capsys=capsys)[0] == 0
    code, _, err = cli("index", str(tmp_path / "lib"), "--db", str(fresh), "-m", str(other), capsys=capsys)
    assert code == 2 and "built with encoder proj-encoder" in err


def test_kill_during_indexing_then_rerun(tmp_path, capsys):
    enc = projection_encoder(tmp_path / "enc")
    lib = tmp_path / "lib"
    paths = library(lib, 400)  # commits come every 0.5 s: the run must last longer than one group
    db = tmp_path / "lib.wbindex"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "index", str(lib), "--db", str(db), "-m", str(enc)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        count = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    count = len(stored(db))
                except sqlite3.DatabaseError:
                    count = 0  # being created
                if count >= 3:
                    break
            time.sleep(0.01)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert count >= 3, proc.stderr.read().decode() if proc.stderr else ""
    partial = stored(db)
    assert killed and len(partial) < len(paths), "the run finished before the kill; make the library bigger"
    code, out, _ = cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)
    entries = stored(db)
    assert code == 0 and "0 changed" in out and "400 files, 400 vectors" in out
    assert sorted(p for p, _ in entries) == sorted(str(p.resolve()) for p in paths)
    assert len(set(entries)) == len(entries)


def test_predict_refuses_an_embedding_model_in_one_line(tmp_path, capsys):
    enc = projection_encoder(tmp_path / "enc")
    img = library(tmp_path / "lib", 1)[0]
    code, _, err = cli("predict", "-m", str(enc), str(img), "-o", str(tmp_path / "out"), capsys=capsys)
    assert code == 2 and "is an embedding model: use it with `workbench index" in err
    assert len(err.strip().splitlines()) == 1


def test_models_check_smoke_runs_an_encoder(tmp_path, capsys):
    code, out, _ = cli("models", "check", str(pooled_encoder(tmp_path / "pool")), capsys=capsys)
    assert code == 0 and "smoke run ok" in out and "vector of 16 values" in out


def test_each_slice_of_a_volume_is_indexed(tmp_path, capsys):
    enc = projection_encoder(tmp_path / "enc")
    lib = tmp_path / "lib"
    lib.mkdir()
    vol = np.stack([texture(s) for s in (30, 31, 32, 33)]).astype(np.uint8)
    np.save(lib / "vol.npy", vol)
    db = tmp_path / "v.wbindex"
    code, out, _ = cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)
    assert code == 0 and "1 files, 4 vectors" in out
    code, out, _ = cli("search", str(lib / "vol.npy"), "--slice", "2", "--db", str(db), "-k", "2", "--json",
                       capsys=capsys)
    hits = json.loads(out)
    assert hits[0]["slice"] == 2 and hits[0]["score"] == pytest.approx(1.0, abs=1e-5) and hits[1]["slice"] != 2


def test_cancel_keeps_what_was_committed(tmp_path):
    import threading

    from workbench.core.errors import CancelledError
    from workbench.similar.build import index_folder

    enc = projection_encoder(tmp_path / "enc")
    library(tmp_path / "lib", 6)
    db = tmp_path / "c.wbindex"
    cancel = threading.Event()
    seen = []

    def progress(done, total, path):
        seen.append((done, total))
        if done == 3:
            cancel.set()

    with pytest.raises(CancelledError):
        index_folder(tmp_path / "lib", db, enc, progress=progress, cancel=cancel)
    assert seen[0] == (1, 6) and len(stored(db)) == 3
    summary = index_folder(tmp_path / "lib", db, enc)
    assert len(summary.added) == 3 and summary.unchanged == 3 and summary.files == 6
