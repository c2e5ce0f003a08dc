"""Unit tests of the packaging helpers (no build needed; a few seconds).

    .venv/bin/python -m pytest -q packaging/tests

Not part of ./scripts/test (testpaths = tests): the packaged build itself is checked by smoke_test.sh.
"""
from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PKG))

import bundle_prune  # noqa: E402
import icons  # noqa: E402
import smoke_test  # noqa: E402


# --- bundle_prune -----------------------------------------------------------------------------------------

def _toc(*dests):
    return [(d, f"/src/{os.path.basename(d)}", "BINARY") for d in dests]


LINKS = {
    "libqgtk3.so": {"libgtk-3.so.0", "libglib-2.0.so.0", "libQt6Gui.so.6"},
    "libgtk-3.so.0": {"libcairo.so.2", "libglib-2.0.so.0"},
    "libcairo.so.2": set(),
    "libglib-2.0.so.0": set(),
    "libQt6Gui.so.6": {"libQt6Core.so.6"},
    "libQt6Core.so.6": set(),
    "libqxcb.so": {"libQt6Gui.so.6", "libglib-2.0.so.0"},
    "libonnxruntime_providers_shared.so": set(),  # dlopen'ed: nothing links it
}


def _imports(src):
    return [(name, f"/lib/{name}") for name in LINKS[os.path.basename(src)]]


def test_prune_drops_the_plugin_and_only_the_libraries_nothing_kept_needs():
    binaries = _toc("PySide6/Qt/plugins/platformthemes/libqgtk3.so", "libgtk-3.so.0", "libcairo.so.2",
                    "libglib-2.0.so.0", "PySide6/Qt/lib/libQt6Gui.so.6", "PySide6/Qt/lib/libQt6Core.so.6",
                    "PySide6/Qt/plugins/platforms/libqxcb.so", "onnxruntime/capi/libonnxruntime_providers_shared.so")
    kept, dropped = bundle_prune.prune_binaries(binaries, bundle_prune.LINUX_QT_PLUGIN_DROPS, _imports)
    assert {os.path.basename(d[0]) for d in dropped} == {"libqgtk3.so", "libgtk-3.so.0", "libcairo.so.2"}
    # glib and Qt are still linked by the xcb plugin; the dlopen'ed provider is never a candidate
    assert {os.path.basename(k[0]) for k in kept} == {"libglib-2.0.so.0", "libQt6Gui.so.6", "libQt6Core.so.6",
                                                      "libqxcb.so", "libonnxruntime_providers_shared.so"}


def test_prune_keeps_everything_when_nothing_matches_and_survives_unreadable_binaries():
    binaries = _toc("libQt6Core.so.6", "libglib-2.0.so.0")

    def broken(src):
        raise OSError("ldd failed")

    kept, dropped = bundle_prune.prune_binaries(binaries, bundle_prune.LINUX_QT_PLUGIN_DROPS, broken)
    assert kept == binaries and dropped == []


def test_prune_datas_drops_translations_and_symlinks_to_dropped_libraries():
    datas = [("PySide6/Qt/translations/qt_de.qm", "/src/qt_de.qm", "DATA"),
             ("libgtk-3.so.0", "PySide6/Qt/lib/libgtk-3.so.0", "SYMLINK"),
             ("libQt6Core.so.6", "PySide6/Qt/lib/libQt6Core.so.6", "SYMLINK"),
             ("pyqtgraph/colors/maps/CET-L1.csv", "/src/CET-L1.csv", "DATA")]
    dropped = [("PySide6/Qt/lib/libgtk-3.so.0", "/src/libgtk-3.so.0", "BINARY")]
    assert [d[0] for d in bundle_prune.prune_datas(datas, dropped)] == ["libQt6Core.so.6",
                                                                       "pyqtgraph/colors/maps/CET-L1.csv"]


# --- icons ----------------------------------------------------------------------------------------------

def test_ico_and_icns_containers_index_every_png():
    pngs = {16: b"\x89PNG-a", 256: b"\x89PNG-bbbb"}
    ico = icons.ico_bytes(pngs)
    assert struct.unpack("<HHH", ico[:6]) == (0, 1, 2)
    w, h, _, _, planes, bpp, size, offset = struct.unpack("<BBBBHHII", ico[6 + 16:6 + 32])
    assert (w, h, planes, bpp) == (0, 0, 1, 32)  # 0 means 256
    assert ico[offset:offset + size] == pngs[256]

    all_sizes = {s: bytes([s % 251]) * (s // 8 + 1) for s, _ in icons.ICNS_TYPES}
    icns = icons.icns_bytes(all_sizes)
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    pos, seen = 8, {}
    while pos < len(icns):
        kind, length = struct.unpack(">4sI", icns[pos:pos + 8])
        seen[kind] = icns[pos + 8:pos + length]
        pos += length
    assert seen == {kind: all_sizes[s] for s, kind in icons.ICNS_TYPES}


def test_icons_script_writes_files_pillow_can_open(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    subprocess.run([sys.executable, str(PKG / "icons.py"), str(tmp_path)], check=True, env=env, timeout=120)
    with pil.open(tmp_path / "workbench.ico") as ico:
        assert (256, 256) in ico.info["sizes"] and (16, 16) in ico.info["sizes"]
    with pil.open(tmp_path / "workbench.png") as png:
        assert png.size == (256, 256)
        # the SVG's dark rounded square is drawn, with transparent corners
        assert png.getpixel((0, 0))[3] == 0 and png.getpixel((128, 20))[3] == 255


# --- runtime hooks --------------------------------------------------------------------------------------

def _run_hook(tmp_path, body: str, env: dict | None = None) -> dict:
    """Run ``body`` in a fresh interpreter that looks frozen enough for the hooks (sys._MEIPASS, a stub
    _pyi_rth_utils.qt recording its calls); ``body`` leaves its findings in ``out``."""
    stub = tmp_path / "stub" / "_pyi_rth_utils"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    (stub / "qt.py").write_text(textwrap.dedent("""
        import sys
        calls = []
        def ensure_single_qt_bindings_package(name):
            calls.append(("single", name))
        def create_embedded_qt_conf(name, prefix):
            calls.append(("conf", name, prefix, "PySide6.QtCore" in sys.modules))
    """))
    script = textwrap.dedent(f"""
        import json, os, runpy, sys
        sys.path.insert(0, {str(tmp_path / 'stub')!r})
        sys._MEIPASS = {str(tmp_path / 'bundle')!r}
        out = {{}}
    """) + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_lazy_pyside6_hook_defers_qt_until_the_gui_imports_it(tmp_path):
    out = _run_hook(tmp_path, f"""
        runpy.run_path({str(PKG / 'hooks' / 'rthook_pyside6_lazy.py')!r})
        from _pyi_rth_utils import qt
        out["qt_imported_at_start"] = "PySide6.QtCore" in sys.modules
        out["calls_at_start"] = list(qt.calls)
        out["plugin_path"] = os.environ["QT_PLUGIN_PATH"]
        from PySide6 import QtCore
        out["calls_after_import"] = list(qt.calls)
        out["works"] = bool(QtCore.qVersion())
        from PySide6 import QtCore as again  # a second import must not register again
        out["calls_after_second_import"] = len(qt.calls)
        out["finders_left"] = [type(f).__name__ for f in sys.meta_path if "Relocate" in type(f).__name__]
    """)
    bundle_qt = str(tmp_path / "bundle" / "PySide6" / "Qt")
    assert out["qt_imported_at_start"] is False
    assert out["calls_at_start"] == [["single", "PySide6"]]
    assert out["plugin_path"] == os.path.join(bundle_qt, "plugins")
    # registered once, right after QtCore itself was loaded (the stub saw it in sys.modules)
    assert out["calls_after_import"] == [["single", "PySide6"], ["conf", "PySide6", bundle_qt, True]]
    assert out["works"] is True
    assert out["calls_after_second_import"] == 2 and out["finders_left"] == []


@pytest.mark.parametrize("preset", [None, "/srv/plugins"])
def test_workbench_hook_points_at_the_bundled_plugins_unless_set(tmp_path, preset):
    env = {"WORKBENCH_PLUGINS_DIR": preset} if preset else {}
    clear = "" if preset else "os.environ.pop('WORKBENCH_PLUGINS_DIR', None)"
    out = _run_hook(tmp_path, f"""
        {clear}
        runpy.run_path({str(PKG / 'hooks' / 'rthook_workbench.py')!r})
        out["dir"] = os.environ["WORKBENCH_PLUGINS_DIR"]
    """, env=env)
    assert out["dir"] == (preset or str(tmp_path / "bundle" / "plugins"))


# --- the smoke test's PNG reader ----------------------------------------------------------------------------

def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _encode_png(path: Path, rows: list[bytes], width: int, channels: int) -> None:
    """A PNG whose rows cycle through all five filter types, so the reader's unfiltering is exercised."""
    color = {1: 0, 3: 2, 4: 6}[channels]
    raw, prev = b"", bytes(width * channels)
    for y, row in enumerate(rows):
        kind = y % 5
        out = bytearray()
        for i, x in enumerate(row):
            a = row[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            pred = (0, a, b, (a + b) >> 1, _paeth(a, b, c))[kind]
            out.append((x - pred) & 255)
        raw += bytes([kind]) + bytes(out)
        prev = row

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, len(rows), 8, color, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_reader_undoes_every_filter(tmp_path, channels):
    rng = random.Random(channels)
    width, height = 7, 11
    rows = [bytes(rng.randrange(256) for _ in range(width * channels)) for _ in range(height)]
    path = tmp_path / "x.png"
    _encode_png(path, rows, width, channels)
    assert smoke_test.read_png(path) == (width, height, channels, rows)


def test_blank_and_overlay_measures():
    grey = [bytes([40, 40, 40] * 50)] * 10
    assert smoke_test.pixel_std(grey) == 0
    assert smoke_test.overlay_pixels(grey, 3) == 0
    # #ff7f0e at 50% over mid grey: (191, 127, 71)
    tinted = [bytes([191, 127, 71] * 50)] * 10
    assert smoke_test.overlay_pixels(tinted, 3) == 500
    assert smoke_test.pixel_std([bytes([0, 255] * 8)]) == pytest.approx(127.5)


# --- smoke_extra, the QtOpenGL stand-in ---------------------------------------------------------------------

import smoke_extra  # noqa: E402


def test_synthetic_pngs_read_back_as_written(tmp_path):
    for kind in ("ramp", "checker", "disc"):
        rows = smoke_extra._synthetic(kind, 40)
        smoke_extra.write_png(tmp_path / f"{kind}.png", rows, 40)
        width, height, channels, back = smoke_test.read_png(tmp_path / f"{kind}.png")
        assert (width, height, channels) == (40, 40, 1) and back == rows
    assert len({tuple(smoke_extra._synthetic(k, 40)) for k in ("ramp", "checker", "disc")}) == 3


def test_help_check_names_a_missing_picture(tmp_path):
    data = tmp_path / "workbench" / "gui" / "help" / "data"
    (data / "images").mkdir(parents=True)
    (data / "USER_GUIDE.md").write_text("# Guide\n![window](images/a.png)\n![menu](images/b.png)\n")
    (data / "images" / "a.png").write_bytes(b"png")
    seen = []

    def check(cond, reason):
        if not cond:
            raise smoke_test.SmokeFailure(reason)

    with pytest.raises(smoke_test.SmokeFailure, match=r"missing \['images/b.png'\]"):
        smoke_extra.check_help(tmp_path, check=check, ok=lambda *a: seen.append(a))
    (data / "images" / "b.png").write_bytes(b"png")
    smoke_extra.check_help(tmp_path, check=check, ok=lambda *a: seen.append(a))
    assert seen == [("user guide", "0 KiB, all 2 pictures present")]


def test_qtopengl_stub_imports_and_fails_only_when_used():
    import importlib.util

    spec = importlib.util.spec_from_file_location("stub_qtopengl", PKG / "stubs" / "QtOpenGL.py")
    stub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stub)
    buffer = stub.QOpenGLBuffer  # what pyqtgraph touches at import time: a name, nothing more
    assert not hasattr(stub, "__path__")  # a module, not a package: the import system must not look inside
    with pytest.raises(ImportError, match="left out of this Workbench build"):
        buffer.Type.VertexBuffer
    with pytest.raises(ImportError, match=r"QOpenGLShaderProgram"):
        stub.QOpenGLShaderProgram()
