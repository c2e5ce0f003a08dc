"""Render ``assets/icons/workbench.svg`` into the icon files the packaged builds need.

``python packaging/icons.py OUT_DIR`` writes ``workbench.png`` (256 px, Linux .desktop / hicolor),
``workbench.ico`` (Windows: PNG-compressed entries 16-256 px, readable since Windows Vista) and
``workbench.icns`` (macOS: PNG entries 16-1024 px). Only PySide6 (QtSvg) is needed, so the same script works
on every build platform without Pillow or platform tools; the spec runs it in a subprocess with the
offscreen Qt platform.
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

SVG = Path(__file__).resolve().parents[1] / "assets" / "icons" / "workbench.svg"
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# icns element types holding PNG data, by pixel size
ICNS_TYPES = ((16, b"icp4"), (32, b"icp5"), (64, b"icp6"), (128, b"ic07"), (256, b"ic08"), (512, b"ic09"),
              (1024, b"ic10"))


def render_png(renderer, size: int) -> bytes:
    """The SVG drawn on a transparent ``size`` x ``size`` canvas, as PNG bytes."""
    from PySide6 import QtCore, QtGui

    image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_ARGB32)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(image)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    buf = QtCore.QBuffer()
    buf.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buf, "PNG"):
        raise RuntimeError(f"{SVG}: could not encode a {size}px PNG")
    return bytes(buf.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """A Windows .ico whose entries are PNG streams (width/height byte 0 means 256)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, blobs = b"", b""
    for s in sizes:
        data = pngs[s]
        entries += struct.pack("<BBBBHHII", s % 256, s % 256, 0, 0, 1, 32, len(data), offset + len(blobs))
        blobs += data
    return header + entries + blobs


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """A macOS .icns of PNG elements (type + big-endian length including the 8-byte element header)."""
    body = b"".join(kind + struct.pack(">I", len(pngs[s]) + 8) + pngs[s] for s, kind in ICNS_TYPES)
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: icons.py OUT_DIR", file=sys.stderr)
        return 2
    from PySide6 import QtGui, QtSvg

    app = QtGui.QGuiApplication.instance() or QtGui.QGuiApplication(["icons"])  # noqa: F841 (keeps Qt alive)
    renderer = QtSvg.QSvgRenderer(str(SVG))
    if not renderer.isValid():
        print(f"icons.py: {SVG}: not a valid SVG", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    sizes = sorted(set(ICO_SIZES) | {s for s, _ in ICNS_TYPES})
    pngs = {s: render_png(renderer, s) for s in sizes}
    (out / "workbench.png").write_bytes(pngs[256])
    (out / "workbench.ico").write_bytes(ico_bytes({s: pngs[s] for s in ICO_SIZES}))
    (out / "workbench.icns").write_bytes(icns_bytes(pngs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
