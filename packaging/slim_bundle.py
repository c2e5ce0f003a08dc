"""Shrink a frozen Linux bundle after PyInstaller: ``python packaging/slim_bundle.py dist/Workbench``.

What takes the space (issue 20: 535 MiB -> <= 350 MiB) and what this does about it, each step keeping every
smoke-test check green:

1. **Debug symbols.** libpython (pyenv builds keep them), the DICOM codecs, SciPy's OpenBLAS and ~240
   other libraries ship a ``.symtab``: ``strip --strip-unneeded`` (dynamic symbols stay) saves ~60 MiB.
2. **OpenCV's video and AVIF stack.** The opencv-python-headless wheel links FFmpeg (avcodec, avformat,
   avutil, swscale, + swresample, libvpx, OpenSSL, libdrm) and libavif (+ libaom) into ``cv2``; the app
   never opens a video or an AVIF file with OpenCV (it reads images through its own readers, imdecode/
   imencode of PNG/TIFF/JPEG only). The libraries ``cv2`` links are replaced by stubs with the same soname
   and symbol versions whose functions return 0 (OpenCV creates AVIF encoder objects at start-up: they
   must be harmless) and whose media-opening calls return FFmpeg's error, so ``cv2.VideoCapture`` reports
   "not opened"; the libraries only they needed are dropped: ~42 MiB.
3. **A third OpenBLAS.** NumPy (ILP64), SciPy (LP64) and OpenCV each bring an OpenBLAS. OpenCV calls 19
   BLAS/LAPACK functions (gemm, gesv, gesdd, getrf, ...), all of which SciPy's library exports under a
   ``scipy_`` prefix with the same LP64 ABI. OpenCV's 39 MiB copy (+ its libgfortran/libquadmath) is
   replaced by a shim of one-instruction trampolines (``jmp scipy_<name>``) into SciPy's: the same
   functions, computed, not stubbed.
4. **Pillow's AVIF and WebP plugins** (``PIL/_avif``, ``PIL/_webp`` and their libavif/libwebp, 6 MiB):
   Pillow treats a missing plugin module as "format not supported"; the app reads neither format.
5. **Duplicates and leftovers:** identical libraries in two wheels' ``.libs`` folders become symlinks
   (3 MiB), OpenCV's Haar cascade XML files go (1 MiB).
6. **ICU data** (31 MiB, ``libicudata.so.73`` of PySide6): Qt links ICU for collation, IDNA and locale-
   aware case mapping, and falls back to its own Unicode tables when ICU has no data; the app sorts and
   compares with Python, so the data library is replaced by one holding an empty ICU data package. Left
   out with ``--keep-icu``.

Every removal is listed in ``SLIMMING.txt`` inside the bundle. Needs binutils (readelf, objdump, nm,
strip) and gcc, which every Linux build machine has. Standard library only.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FFMPEG_STUBBED = ("libavcodec", "libavformat", "libavutil", "libswscale", "libavif")
# stubbed functions that must fail rather than return 0 ("success" for these): AVERROR(ENOSYS)
STUB_ERRORS = {"avformat_open_input": -38, "avformat_alloc_output_context2": -38, "avio_open": -38,
               "avio_open2": -38, "avformat_find_stream_info": -38, "avcodec_open2": -38}
OPENBLAS = "libopenblasp"


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def elf_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p)]


def needed(path: Path) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", run("readelf", "-d", str(path)))


def soname(path: Path) -> str:
    m = re.search(r"\(SONAME\)\s+Library soname: \[(.+?)\]", run("readelf", "-d", str(path)))
    return m.group(1) if m else path.name


def undefined_versioned(consumer: Path) -> list[tuple[str, str]]:
    """``(symbol, version or '')`` of every undefined dynamic function symbol of ``consumer``."""
    out = []
    for line in run("objdump", "-T", str(consumer)).splitlines():
        if "*UND*" not in line:
            continue
        parts = line.split()
        sym = parts[-1]
        # binutils >= 2.37 prints "(LIBAVUTIL_60)", older ones "LIBAVUTIL_60"; unversioned: "Base" or nothing
        # (the size column then comes last but one)
        ver = parts[-2].strip("()")
        if ver == "Base" or re.fullmatch(r"[0-9a-f]{16}", ver) or ver == "*UND*":
            ver = ""
        out.append((sym, ver))
    return out


def defined(lib: Path) -> set[str]:
    return {line.split()[-1].split("@")[0] for line in run("nm", "-D", "--defined-only", str(lib)).splitlines()
            if line.strip()}


def compile_shared(out: Path, source: str, suffix: str, name: str, *, version_script: str | None = None,
                   link: list[str] = ()) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"stub{suffix}"
        src.write_text(source)
        cmd = ["gcc", "-shared", "-fPIC", "-O1", "-s", "-o", str(out), str(src), f"-Wl,-soname,{name}"]
        if version_script is not None:
            vs = Path(tmp) / "versions.map"
            vs.write_text(version_script)
            cmd.append(f"-Wl,--version-script={vs}")
        run(*cmd, *link)


def stub_library(lib: Path, consumers: list[Path], log: list[str]) -> None:
    """Replace ``lib`` by functions that abort with one line, keeping what ``consumers`` import from it."""
    provided = defined(lib)
    wanted: dict[str, str] = {}
    for c in consumers:
        for sym, ver in undefined_versioned(c):
            if sym in provided:
                wanted[sym] = ver
    name = soname(lib)
    # OpenCV creates its AVIF encoder/decoder objects when imgcodecs initialises (at every start), so the
    # stubs must be harmless: each returns 0 (NULL, no-op). The calls that open a video or a stream
    # return FFmpeg's error instead, so cv2.VideoCapture / VideoWriter report "not opened" rather than
    # work on nothing.
    body = [f"long {s}(void) {{ return {STUB_ERRORS.get(s, 0)}; }}" for s in sorted(wanted)]
    versions: dict[str, list[str]] = {}
    for s, v in wanted.items():
        versions.setdefault(v, []).append(s)
    # the consumer binds each symbol to a version node (LIBAVCODEC_62, ...): define the same nodes;
    # unversioned symbols (libavif) need none and stay global
    script = "".join(f"{v} {{ global: {'; '.join(sorted(syms))}; }};\n" for v, syms in versions.items() if v) or None
    before = lib.stat().st_size
    compile_shared(lib, "\n".join(body) + "\n", ".c", name, version_script=script)
    log.append(f"stubbed {lib.name} ({before / 2**20:.1f} MiB -> {lib.stat().st_size / 2**10:.0f} KiB): "
               f"{len(wanted)} functions returning 0, or an error for those opening media")


def openblas_shim(lib: Path, target: Path, consumers: list[Path], log: list[str]) -> None:
    """Replace OpenCV's OpenBLAS by trampolines into SciPy's (the same functions with a ``scipy_`` prefix)."""
    provided = defined(lib)
    target_syms = defined(target)
    wanted = sorted({s for c in consumers for s, _ in undefined_versioned(c) if s in provided})
    missing = [s for s in wanted if f"scipy_{s}" not in target_syms]
    if missing:
        raise SystemExit(f"slim_bundle: {target.name} lacks {missing}: cannot replace {lib.name}")
    asm = [".text"]
    for s in wanted:
        asm += [f".globl {s}", f".type {s}, @function", f"{s}:", f"    jmp scipy_{s}@PLT"]
    asm.append('.section .note.GNU-stack,"",@progbits')
    rel = os.path.relpath(target.parent, lib.parent)
    before = lib.stat().st_size
    compile_shared(lib, "\n".join(asm) + "\n", ".s", soname(lib),
                   link=[str(target), f"-Wl,-rpath,$ORIGIN/{rel}", "-Wl,--disable-new-dtags"])
    # link against the bundled file by its soname, not by its build path
    log.append(f"replaced {lib.name} ({before / 2**20:.1f} MiB) by trampolines into {target.name}: {', '.join(wanted)}")


ICU_STUB = r"""
/* An empty ICU common-data package (a valid header, a table of contents with no entries): ICU reports
   U_MISSING_RESOURCE_ERROR for data-driven services and Qt falls back to its own Unicode tables. */
#include <stdint.h>
struct hdr { uint16_t headerSize; uint8_t magic1, magic2; uint16_t size, reserved; uint8_t isBigEndian,
  charsetFamily, sizeofUChar, reservedByte; uint8_t dataFormat[4]; uint8_t formatVersion[4];
  uint8_t dataVersion[4]; };
struct pkg { struct hdr h; uint8_t pad[8]; uint32_t count; };
__attribute__((visibility("default"))) const struct pkg %(sym)s __attribute__((aligned(16))) = {
  { 32, 0xda, 0x27, 20, 0, 0, 0, 2, 0, {'C', 'm', 'n', 'D'}, {1, 0, 0, 0}, {0, 0, 0, 0} }, {0}, 0 };
"""


def icu_stub(lib: Path, log: list[str]) -> None:
    syms = [s for s in defined(lib) if re.fullmatch(r"icudt\d+_dat", s)]
    if len(syms) != 1:
        log.append(f"kept {lib.name}: no single icudtNN_dat symbol")
        return
    before = lib.stat().st_size
    compile_shared(lib, ICU_STUB % {"sym": syms[0]}, ".c", soname(lib))
    log.append(f"replaced {lib.name} ({before / 2**20:.1f} MiB) by an empty ICU data package ({syms[0]})")


def drop_unreferenced(root: Path, folders: list[Path], log: list[str]) -> None:
    """Delete libraries of ``folders`` that no remaining ELF file of the bundle links, until none is left."""
    while True:
        elves = elf_files(root)
        wanted = {n for e in elves for n in needed(e)}
        gone = [p for f in folders if f.is_dir() for p in f.iterdir()
                if p.is_file() and is_elf(p) and soname(p) not in wanted and p.name not in wanted]
        if not gone:
            return
        for p in gone:
            log.append(f"dropped {p.relative_to(root)} ({p.stat().st_size / 2**20:.1f} MiB): nothing links it any more")
            p.unlink()


def loadable(path: Path, page: int = 4096) -> bool:
    """Whether every LOAD segment's file offset and address agree modulo the page size (what the dynamic
    loader requires: strip can break that in libraries whose headers patchelf moved, i.e. auditwheel's)."""
    for line in run("readelf", "-lW", str(path)).splitlines():
        parts = line.split()
        if parts[:1] == ["LOAD"]:
            offset, vaddr = int(parts[1], 16), int(parts[2], 16)
            if offset % page != vaddr % page:
                return False
    return True


def strip_all(root: Path, log: list[str]) -> None:
    saved, n, kept = 0, 0, []
    for p in elf_files(root):
        if ".symtab" not in run("readelf", "-S", "-W", str(p)):
            continue
        before = p.stat().st_size
        tmp = p.with_name(p.name + ".strip-tmp")
        subprocess.run(["strip", "--strip-unneeded", "-o", str(tmp), str(p)], check=True, capture_output=True)
        if not loadable(tmp):
            tmp.unlink()
            kept.append(p.name)
            continue
        shutil.copymode(p, tmp)
        os.replace(tmp, p)
        saved += before - p.stat().st_size
        n += 1
    log.append(f"stripped {n} libraries and executables (strip --strip-unneeded): {saved / 2**20:.1f} MiB"
               + (f"; left unstripped (strip would misalign their segments): {', '.join(sorted(kept))}"
                  if kept else ""))


def dedupe(root: Path, folders: list[Path], log: list[str]) -> None:
    """Identical copies of one library in two wheels' ``.libs`` folders (SciPy's wheel carries NumPy's
    libgfortran and libquadmath): keep the first, make the others relative symlinks to it."""
    import hashlib

    first: dict[tuple[str, str], Path] = {}
    for folder in folders:
        for p in sorted(folder.iterdir()) if folder.is_dir() else []:
            if not p.is_file() or p.is_symlink():
                continue
            key = (p.name, hashlib.sha256(p.read_bytes()).hexdigest())
            if key not in first:
                first[key] = p
                continue
            size = p.stat().st_size
            p.unlink()
            p.symlink_to(os.path.relpath(first[key], p.parent))
            log.append(f"linked {p.relative_to(root)} -> {first[key].relative_to(root)} (identical, {size / 2**20:.1f} MiB)")


def drop_dangling(root: Path, log: list[str]) -> None:
    """PyInstaller links some ``.libs`` libraries into ``_internal/``: remove links to dropped ones."""
    for p in root.rglob("*"):
        if p.is_symlink() and not p.exists():
            log.append(f"removed the link {p.relative_to(root)} (its library was dropped)")
            p.unlink()


def du(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def slim(app: Path, *, keep_icu: bool = False) -> list[str]:
    internal = app / "_internal"
    log = [f"before: {du(app) / 2**20:.1f} MiB"]
    cv2 = next(internal.glob("cv2/cv2*.so"))
    cvlibs = next(internal.glob("opencv_python*.libs"))
    stubs = [p for p in cvlibs.iterdir() if p.name.startswith(FFMPEG_STUBBED)]
    for lib in stubs:
        # consumers: cv2 and the other stubbed libraries are replaced together, so only cv2 counts
        stub_library(lib, [cv2], log)
    blas = next(cvlibs.glob(f"{OPENBLAS}*.so"), None)
    scipy_blas = next(internal.glob("scipy.libs/libscipy_openblas-*.so"), None)
    if blas is not None and scipy_blas is not None:
        openblas_shim(blas, scipy_blas, [cv2], log)
    for p in [*internal.glob("PIL/_avif*.so"), *internal.glob("PIL/_webp*.so")]:
        # the app reads no AVIF or WebP (io/folders.py IMAGE_SUFFIXES); Pillow reports them unsupported
        log.append(f"dropped {p.relative_to(app)} (Pillow: format unsupported)")
        p.unlink()
    if not keep_icu:
        for lib in internal.glob("PySide6/Qt/lib/libicudata.so.*"):
            icu_stub(lib, log)
    for p in internal.glob("cv2/data/*.xml"):  # OpenCV's Haar cascades (face detection): never used
        p.unlink()
    log.append("dropped cv2/data/*.xml (OpenCV's Haar cascades)")
    drop_unreferenced(internal, [cvlibs, internal / "pillow.libs"], log)
    drop_dangling(internal, log)
    dedupe(internal, sorted(internal.glob("*.libs")), log)
    strip_all(app, log)
    log.append(f"after: {du(app) / 2**20:.1f} MiB")
    with open(app / "SLIMMING.txt", "a", encoding="utf-8") as f:  # a second run adds its (empty) log
        f.write("packaging/slim_bundle.py\n" + "\n".join(log) + "\n")
    return log


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("app", type=Path, help="the PyInstaller one-folder bundle (dist/Workbench)")
    ap.add_argument("--keep-icu", action="store_true", help="keep PySide6's ICU data library")
    args = ap.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("slim_bundle: Linux only; nothing done")
        return 0
    for line in slim(args.app, keep_icu=args.keep_icu):
        print(f"slim: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
