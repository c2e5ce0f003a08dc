"""A fixed-seed mutation fuzz of every reader (issue 11): images of every format, DICOM, NIfTI, .npy,
plugin.yaml, ONNX models, sessions. Each mutant (bytes flipped, inserted, deleted, truncated, blocks
duplicated) may be read or refused with the project's own error -- nothing else may escape."""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import onnx_factory as F
import pytest
from rel_helpers import fixtures

from workbench.core.document import Document
from workbench.core.errors import WorkbenchError
from workbench.inference.session import clear_session_cache, get_session
from workbench.inference.spec import load_plugin
from workbench.io import read_image, write_nifti, write_png, write_tiff
from workbench.session import read_session, save_session

SEED = 20261201
CASES = {"png": 80, "jpg": 50, "bmp": 40, "tif": 80, "npy": 60, "nii": 60, "nii.gz": 40, "dcm": 100,
         "yaml": 100, "onnx": 60, "wbsession": 80}


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(("flip", "set", "insert", "delete", "truncate", "dup"))
        if not b:
            break
        i = rng.randrange(len(b))
        if op == "flip":
            b[i] ^= 1 << rng.randrange(8)
        elif op == "set":
            b[i] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        elif op == "insert":
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == "delete":
            del b[i:i + rng.randint(1, 16)]
        elif op == "truncate":
            del b[i:]
        else:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 64)]
    return bytes(b)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    import cv2

    root = tmp_path_factory.mktemp("seeds")
    img = (np.arange(24 * 32).reshape(24, 32) % 256).astype(np.uint8)
    files = {"png": write_png(root / "a.png", img), "tif": write_tiff(root / "a.tif", np.stack([img, img]))}
    ok, buf = cv2.imencode(".jpg", img)
    (root / "a.jpg").write_bytes(buf.tobytes())
    ok, buf = cv2.imencode(".bmp", img)
    (root / "a.bmp").write_bytes(buf.tobytes())
    files["jpg"], files["bmp"] = root / "a.jpg", root / "a.bmp"
    np.save(root / "a.npy", img.astype(np.int16))
    files["npy"] = root / "a.npy"
    files["nii"] = write_nifti(root / "a.nii", np.stack([img, img]).astype(np.int16))
    files["nii.gz"] = write_nifti(root / "a.nii.gz", np.stack([img, img]).astype(np.int16))
    paths, _ = fixtures.write_dicom_series(root / "ct", n=2, rows=8, cols=8)
    files["dcm"] = paths[0]
    seg = {"id": "seg", "task": "segmentation", "input": {"color": "gray", "size": [16, 16]},
           "output": {"classes": [{"name": "bg"}, {"name": "fg", "color": "#ff0000"}]}}
    plugin = F.write_plugin(root / "plugin", F.threshold_segmenter(1, size=[16, 16]), seg)
    files["yaml"], files["onnx"] = plugin / "plugin.yaml", plugin / "model.onnx"
    doc = Document(read_image(files["png"]))
    with doc.labels.edit("b") as e:
        e.assign((slice(0, 1), slice(2, 9), slice(3, 11)), 2)
    files["wbsession"] = save_session(doc, root / "a.wbsession")
    return files


def _read(kind: str, path: Path, seeds) -> None:
    if kind == "yaml":
        load_plugin(path.parent)
    elif kind == "onnx":
        spec = load_plugin(path.parent)
        spec.model.sha256 = __import__("hashlib").sha256(path.read_bytes()).hexdigest()  # past the checksum
        clear_session_cache()
        get_session(spec, "cpu", warmup=True)
    elif kind == "wbsession":
        read_session(path)
    else:
        read_image(path)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_only_our_error_escapes(tmp_path, seeds, kind):
    rng = random.Random(f"{SEED}-{kind}")
    original = seeds[kind]
    data = original.read_bytes()
    work = tmp_path / "w"
    if kind in ("yaml", "onnx"):
        shutil.copytree(original.parent, work)
        target = work / original.name
    elif kind == "wbsession":
        work.mkdir()
        target = work / original.name
        shutil.copy(seeds["png"], work / "a.png")  # the session's source, found by its relative path
    else:
        work.mkdir()
        target = work / ("mutant." + kind if kind != "dcm" else "mutant.dcm")
    outcomes = {"read": 0, "refused": 0}
    scale = float(os.environ.get("WORKBENCH_FUZZ_SCALE", "1"))  # more cases locally: WORKBENCH_FUZZ_SCALE=10
    for case in range(int(CASES[kind] * scale)):
        target.write_bytes(_mutate(data, rng))
        try:
            _read(kind, target, seeds)
            outcomes["read"] += 1
        except WorkbenchError as exc:
            text = str(exc)
            assert "\n" not in text and text, (kind, case)
            outcomes["refused"] += 1
        except Exception as exc:  # noqa: BLE001 - the failure this test exists for
            pytest.fail(f"{kind} mutant {case}: {type(exc).__name__}: {exc}")
    assert outcomes["refused"] > 0, outcomes  # the mutations do reach the error paths
