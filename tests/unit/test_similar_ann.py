"""Similar-case search, second slice (issue 18): the approximate index kept consistent with SQLite, the v1 ->
v2 upgrade, thumbnails, the identity opt-in, near-duplicates and ROI queries."""
from __future__ import annotations

import json
import shutil
import sqlite3

import cv2
import numpy as np
import pytest

from tests.data import io_fixtures
from tests.unit.test_similar_search import cli, library, projection_encoder, texture
from workbench.similar import ann
from workbench.similar.build import find_duplicates
from workbench.similar.query import search_vector
from workbench.similar.store import IndexStore

pytest.importorskip("usearch")


@pytest.fixture
def small_ann(monkeypatch):
    """Build approximate indexes from 5 vectors on (the default threshold is 20 000)."""
    monkeypatch.setattr(ann, "MIN_VECTORS", 5)


def _query(db, path):
    """search_vector for a stored file's own vector, and how it was found."""
    with IndexStore(db) as store:
        entries, matrix = store.load_vectors()
        row = [i for i, e in enumerate(entries) if e.path == str(path.resolve())][0]
        hits, how = search_vector(store, db, matrix[row], 3)
    return hits, how


def test_ann_is_built_used_and_never_trusted_when_stale(tmp_path, capsys, small_ann):
    enc = projection_encoder(tmp_path / "enc")
    lib = tmp_path / "lib"
    paths = library(lib, 12)
    db = tmp_path / "lib.wbindex"
    code, out, _ = cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)
    assert code == 0 and "(approximate index up to date)" in out
    assert ann.ann_path(db).is_file() and ann.header_path(db).is_file()
    hits, how = _query(db, paths[4])
    assert how == "approximate" and hits[0].path == str(paths[4].resolve())
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)

    # a run killed after committing a file to SQLite but before rebuilding the graph: the generation moved on,
    # so the old graph (which does not know the new file) is refused and search is exact -- and right
    new = lib / "new.png"
    cv2.imwrite(str(new), texture(77))
    with IndexStore(db, create=True) as store:
        store.replace_file(str(new.resolve()), "f" * 64, None, np.eye(1, 24, 3, dtype=np.float32))
    with IndexStore(db) as store:
        assert ann.load(store, db) is None
        hits, how = search_vector(store, db, np.eye(1, 24, 3, dtype=np.float32)[0], 1)
    assert how == "exact" and hits[0].path == str(new.resolve())
    # the next run re-embeds the file (its fingerprint differs) and rebuilds the graph
    code, out, _ = cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)
    assert code == 0 and "1 changed" in out and "(approximate index up to date)" in out
    assert _query(db, new)[1] == "approximate"


def test_ann_refused_when_its_header_names_another_file_or_it_is_damaged(tmp_path, capsys, small_ann):
    enc = projection_encoder(tmp_path / "enc")
    lib = tmp_path / "lib"
    paths = library(lib, 8)
    db = tmp_path / "lib.wbindex"
    assert cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)[0] == 0
    graph = ann.ann_path(db)
    # killed between writing a new graph and its header: the header names the previous file
    copy = tmp_path / "other.ann"
    shutil.copyfile(graph, copy)
    copy.replace(graph)
    assert _query(db, paths[2])[1] == "exact"
    # truncated by hand: refused, not fatal
    assert cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)[0] == 0
    assert _query(db, paths[2])[1] == "approximate"
    graph.write_bytes(graph.read_bytes()[:100])
    hits, how = _query(db, paths[2])
    assert how == "exact" and hits[0].path == str(paths[2].resolve())
    # below the threshold the files are removed: the exact scan serves small libraries
    for p in paths[3:]:
        p.unlink()
    code, out, _ = cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)
    assert code == 0 and "5 removed" in out and not graph.exists() and not ann.header_path(db).exists()


def test_v1_index_is_read_and_upgraded_in_place(tmp_path, capsys):
    enc = projection_encoder(tmp_path / "enc")
    lib = tmp_path / "lib"
    paths = library(lib, 3)
    db = tmp_path / "old.wbindex"
    assert cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)[0] == 0
    con = sqlite3.connect(db)  # turn it into what the first slice wrote (schema 1)
    con.executescript("DROP TABLE thumbnails; DROP TABLE identity; DELETE FROM meta WHERE key = 'generation';"
                      "UPDATE schema_version SET version = 1;")
    con.close()
    code, out, _ = cli("search", str(paths[1]), "--db", str(db), "-k", "1", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)[0]["path"] == str(paths[1].resolve())
    assert sqlite3.connect(db).execute("SELECT version FROM schema_version").fetchone()[0] == 1  # search reads only
    library(lib, 1, start=40)
    code, out, _ = cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)
    assert code == 0 and "1 added, 0 changed, 3 unchanged" in out
    con = sqlite3.connect(db)
    assert con.execute("SELECT version FROM schema_version").fetchone()[0] == 2
    assert con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0] == "1"
    con.close()


def test_thumbnails_and_identity_only_when_asked(tmp_path, capsys):
    enc = projection_encoder(tmp_path / "enc")
    lib = tmp_path / "lib"
    library(lib, 2)
    files, _ = io_fixtures.write_dicom_series(tmp_path / "dcm", n=1, rows=40, cols=30)
    shutil.copyfile(files[0], lib / "ct.dcm")
    big = (np.arange(300 * 200) % 251).reshape(200, 300).astype(np.uint8)
    cv2.imwrite(str(lib / "wide.png"), big)
    db = tmp_path / "plain.wbindex"
    assert cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)[0] == 0
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM identity").fetchone()[0] == 0
    raw = con.execute("SELECT t.png FROM thumbnails t JOIN files f ON f.id = t.file_id WHERE f.path LIKE '%wide.png'"
                      ).fetchone()[0]
    dump = b"".join(bytes(r[0]) for r in con.execute("SELECT png FROM thumbnails")) + \
        "".join(str(r) for r in con.execute("SELECT * FROM files")).encode() + \
        "".join(str(r) for r in con.execute("SELECT * FROM meta")).encode()
    con.close()
    thumb = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    assert thumb.shape == (43, 64)  # 300x200 -> at most 64 px, aspect kept
    assert b"Test^Patient" not in dump and b"ID0001" not in dump and b"19700101" not in dump
    code, out, _ = cli("search", str(lib / "ct.dcm"), "--db", str(db), "-k", "1", "--json", capsys=capsys)
    assert code == 0 and "identity" not in json.loads(out)[0]

    db2 = tmp_path / "phi.wbindex"
    assert cli("index", str(lib), "--db", str(db2), "-m", str(enc), "--identity", capsys=capsys)[0] == 0
    code, out, _ = cli("search", str(lib / "ct.dcm"), "--db", str(db2), "-k", "1", "--json", capsys=capsys)
    hit = json.loads(out)[0]
    assert hit["path"].endswith("ct.dcm")
    assert hit["identity"]["PatientName"] == "Test^Patient" and hit["identity"]["PatientID"] == "ID0001"
    with IndexStore(db2) as store:
        assert store.thumbnail(hit["path"], 0) is not None


def test_duplicates_lists_copies_and_near_copies(tmp_path, capsys):
    enc = projection_encoder(tmp_path / "enc")
    lib = tmp_path / "lib"
    paths = library(lib, 6)
    shutil.copyfile(paths[2], lib / "copy_of_2.png")
    noisy = texture(4).astype(np.int16) + np.random.default_rng(3).integers(-3, 4, (64, 64))
    cv2.imwrite(str(lib / "noisy_4.png"), np.clip(noisy, 0, 255).astype(np.uint8))
    db = tmp_path / "d.wbindex"
    code, out, _ = cli("index", str(lib), "--db", str(db), "-m", str(enc), "--duplicates", "--threshold", "0.99",
                       capsys=capsys)
    lines = out.splitlines()
    assert code == 0 and "near-duplicates (cosine >= 0.99): 2 pairs" in out
    pairs = lines[lines.index("near-duplicates (cosine >= 0.99): 2 pairs") + 1:]
    assert pairs[0].startswith("1.0000") and "copy_of_2.png" in pairs[0] and "img002.png" in pairs[0]
    assert "noisy_4.png" in pairs[1] and "img004.png" in pairs[1]
    assert [p.a[0] for p in find_duplicates(db, threshold=0.99)] == \
        sorted([str((lib / "copy_of_2.png").resolve()), str(paths[4].resolve())], key=lambda s: "copy" not in s)
    code, _, err = cli("index", str(lib), "--db", str(db), "-m", str(enc), "--duplicates", "--threshold", "1.5",
                       capsys=capsys)
    assert code == 2 and "--threshold 1.5: must be in (0, 1]" in err


def test_roi_query_finds_the_image_inside_a_composite(tmp_path, capsys):
    enc = projection_encoder(tmp_path / "enc")
    lib = tmp_path / "lib"
    paths = library(lib, 6)
    db = tmp_path / "r.wbindex"
    assert cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)[0] == 0
    canvas = np.zeros((100, 160), np.uint8)
    canvas[20:84, 80:144] = texture(3)  # library image 3, pasted at x 80..143, y 20..83
    canvas[10:74, 5:69] = texture(5)
    query = tmp_path / "composite.png"
    cv2.imwrite(str(query), canvas)
    code, out, _ = cli("search", str(query), "--db", str(db), "-k", "1", "--roi", "80,20,144,84", "--json",
                       capsys=capsys)
    hit = json.loads(out)[0]
    assert code == 0 and hit["path"] == str(paths[3].resolve()) and hit["score"] > 0.999
    code, out, _ = cli("search", str(query), "--db", str(db), "-k", "1", "--roi", "5,10,69,74", "--json",
                       capsys=capsys)
    assert json.loads(out)[0]["path"] == str(paths[5].resolve())
    for roi, msg in (("1,2,3", "expected X0,Y0,X1,Y1"), ("50,50,40,60", "needs 0 <= X0 < X1"),
                     ("0,0,200,50", "outside the 160x100 image"), ("0,0,4,4", "smaller than 8x8")):
        code, _, err = cli("search", str(query), "--db", str(db), "--roi", roi, capsys=capsys)
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_changing_run_updates_the_graph_in_place(tmp_path, capsys, small_ann, monkeypatch):
    enc = projection_encoder(tmp_path / "enc")
    lib = tmp_path / "lib"
    paths = library(lib, 10)
    db = tmp_path / "lib.wbindex"
    assert cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)[0] == 0
    library(lib, 2, start=50)  # add 2
    cv2.imwrite(str(paths[0]), texture(60))  # change 1
    paths[1].unlink()  # delete 1

    def no_rebuild(*_a, **_k):
        raise AssertionError("the graph matched the store: it must be updated, not rebuilt")

    monkeypatch.setattr(ann, "build", no_rebuild)
    code, out, _ = cli("index", str(lib), "--db", str(db), "-m", str(enc), capsys=capsys)
    assert code == 0 and "2 added, 1 changed, 8 unchanged, 1 removed" in out
    assert "11 files, 11 vectors (approximate index up to date)" in out
    with IndexStore(db) as store:
        graph = ann.load(store, db)
        assert graph is not None and graph.index.size == 11
        keys, matrix = store.keyed_vectors()
        for key, vec in zip(keys, matrix):  # every stored vector is in the graph and finds itself first
            got, scores = graph.search(vec, 1)
            assert int(got[0]) == int(key) and scores[0] > 0.999
    hits, how = _query(db, lib / "img050.png")
    assert how == "approximate" and hits[0].path == str((lib / "img050.png").resolve())
    assert str(paths[1].resolve()) not in {h.path for h in _query(db, paths[0])[0]}


def test_doctor_reports_the_usearch_self_test(capsys):
    """`workbench doctor` builds, saves, loads and searches a small HNSW graph (the packaged build's smoke
    test reads the line: a broken native wheel is otherwise silent, search just falls back to exact)."""
    code, out, _ = cli("doctor", capsys=capsys)
    line = next(x for x in out.splitlines() if x.startswith("similar-case search"))
    assert code in (0, 1)  # 1 only for an onnxruntime problem of this machine
    assert ": ok (" in line and "256/256 vectors found themselves" in line


def test_usearch_self_test_says_when_search_stays_exact(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_usearch(name, *args, **kwargs):
        if name.startswith("usearch"):
            raise ImportError("No module named 'usearch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_usearch)
    assert ann.selftest().startswith("usearch not installed (No module named 'usearch'): libraries of >= 20000")
