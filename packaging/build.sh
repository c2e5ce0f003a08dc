#!/usr/bin/env bash
# Build the frozen Workbench (PyInstaller, one-folder) into packaging/dist/Workbench/.
#
# Idempotent: creates packaging/.venv-build on first use and reinstalls only when pyproject.toml,
# constraints.txt or the pins below change. The app itself is frozen from this working tree (the spec puts
# the repo root on PyInstaller's search path), so the build venv holds only the dependencies + PyInstaller.
#
#   packaging/build.sh                 build (reuses the venv)
#   packaging/build.sh --update-lock   re-resolve the dependencies from PyPI, rewrite constraints.txt, build
#   packaging/build.sh --tarball       build, then pack packaging/dist/workbench-VERSION-linux-ARCH.tar.gz
#   packaging/build.sh --deb           build, then pack packaging/dist/workbench_VERSION_amd64.deb (dpkg-deb)
#   packaging/build.sh --no-slim       skip packaging/slim_bundle.py (the unshrunk PyInstaller output)
#   packaging/build.sh --gpu           the NVIDIA variant: packaging/dist/Workbench-gpu/ from its own venv
#                                      (.venv-build-gpu, the `gpu` extra: onnxruntime-gpu + CUDA/cuDNN wheels)
#
# Environment: PYTHON (default: python3.11, else python3) picks the interpreter of the build venv; it must
# be a CPython built with a shared libpython (pyenv and Debian builds are).
set -euo pipefail

PKG="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$PKG/.." && pwd)"
VENV="$PKG/.venv-build"
DIST="$PKG/dist"
WORK="$PKG/build"
PYINSTALLER_PIN="pyinstaller==6.22.3"
HOOKS_PIN="pyinstaller-hooks-contrib==2026.9"
# the app's runtime dependencies: [project].dependencies + the extras a clinic build ships (pacs: DICOMweb)
EXTRAS="cpu,codecs,pacs"
# CONSTRAINTS=FILE: another pin file (linux/build_bullseye.sh: PySide6 6.9, whose wheels need glibc 2.28)
CONSTRAINTS="${CONSTRAINTS:-$PKG/constraints.txt}"

update_lock=0
tarball=0
deb=0
slim=1
variant=cpu
for arg in "$@"; do
    case "$arg" in
        --update-lock) update_lock=1 ;;
        --tarball) tarball=1 ;;
        --deb) deb=1 ;;
        --no-slim) slim=0 ;;
        --gpu) variant=gpu ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

# the spec reads WORKBENCH_VARIANT; the GPU variant has its own venv so neither build undoes the other
export WORKBENCH_VARIANT="$variant"
OTHER_ORT=onnxruntime-gpu
if [ "$variant" = gpu ]; then
    VENV="$PKG/.venv-build-gpu"
    WORK="$PKG/build-gpu"
    EXTRAS="gpu,codecs,pacs"
    OTHER_ORT=onnxruntime
fi

if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif command -v python3.11 >/dev/null 2>&1; then
    PY="python3.11"
else
    PY="python3"
fi

t_start=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
    echo "build: creating $VENV with $("$PY" --version 2>&1)"
    "$PY" -m venv "$VENV"
fi
BPY="$VENV/bin/python"

# Requirements come from pyproject.toml so they never drift from what the source install uses.
REQS="$VENV/requirements.txt"
"$BPY" - "$ROOT/pyproject.toml" "$EXTRAS" > "$REQS" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
reqs = list(project["dependencies"])
for extra in sys.argv[2].split(","):
    reqs += project["optional-dependencies"][extra]
print("\n".join(reqs))
EOF
echo "$PYINSTALLER_PIN" >> "$REQS"
echo "$HOOKS_PIN" >> "$REQS"

stamp="$VENV/.installed"
fingerprint() { cat "$REQS" "$@" | sha256sum | cut -c1-16; }
if [ -f "$CONSTRAINTS" ]; then want="$(fingerprint "$CONSTRAINTS")"; else want="none"; fi
if [ "$update_lock" = 1 ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    constraint_args=()
    if [ "$update_lock" = 0 ] && [ -f "$CONSTRAINTS" ]; then
        constraint_args=(-c "$CONSTRAINTS")
    fi
    echo "build: installing dependencies into $VENV"
    "$BPY" -m pip install --quiet --disable-pip-version-check --upgrade pip
    # onnxruntime and onnxruntime-gpu install the same module: a build carries exactly one of them.
    if "$BPY" -m pip show "$OTHER_ORT" >/dev/null 2>&1; then
        "$BPY" -m pip uninstall --quiet -y onnxruntime onnxruntime-gpu
    fi
    "$BPY" -m pip install --quiet --disable-pip-version-check "${constraint_args[@]}" -r "$REQS"
    if [ "$update_lock" = 1 ] || [ ! -f "$CONSTRAINTS" ]; then
        {
            echo "# Exact versions of the packaged build's dependencies (written by packaging/build.sh --update-lock)."
            echo "# The frozen app was smoke-tested with these; build.sh installs with -c constraints.txt."
            "$BPY" -m pip freeze --disable-pip-version-check --exclude-editable | grep -v '^-e '
        } > "$CONSTRAINTS"
        echo "build: wrote $PKG/constraints.txt"
    fi
    # the stamp covers the constraints as they are now (the lock may just have been rewritten)
    fingerprint "$CONSTRAINTS" > "$stamp"
fi

# PyInstaller bundles the system libraries the Qt platform plugins link (X11/xcb, xkbcommon, wayland) from
# the build machine, so a workstation needs only the graphics driver stack (libGL/libEGL, which must match
# it and are never bundled), fontconfig and glibc. A library missing here would be missing in the bundle.
QT_PLUGINS="$("$BPY" -c 'import PySide6, os; print(os.path.join(os.path.dirname(PySide6.__file__), "Qt", "plugins"))')"
missing_libs() {
    ldd "$QT_PLUGINS"/platforms/libqxcb.so "$QT_PLUGINS"/platforms/libqwayland*.so \
        "$QT_PLUGINS"/xcbglintegrations/*.so 2>/dev/null | awk '/not found/ {print $1}' | sort -u
}
if [ -n "$(missing_libs)" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        echo "build: installing the system libraries Qt's xcb/wayland plugins link: $(missing_libs | tr '\n' ' ')"
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 \
            libxcb-render-util0 libxcb-image0 libxcb-xkb1 libxkbcommon0 libxkbcommon-x11-0 libx11-xcb1 \
            libwayland-client0 libwayland-cursor0 libwayland-egl1 libegl1 libgl1 libfontconfig1 \
            libdbus-1-3 >/dev/null
    fi
    if [ -n "$(missing_libs)" ]; then
        echo "build: error: Qt platform plugins link libraries this machine lacks: $(missing_libs | tr '\n' ' ')" >&2
        exit 1
    fi
fi
t_deps=$(date +%s)

echo "build: running PyInstaller $("$BPY" -m PyInstaller --version)"
# --noconfirm: replace dist/Workbench without asking; the work dir is kept so rebuilds reuse its cache.
"$BPY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" "$PKG/workbench.spec"
t_end=$(date +%s)

APP="$DIST/Workbench"
[ "$variant" = gpu ] && APP="$DIST/Workbench-gpu"
# issue 20: strip, stub OpenCV's video/AVIF libraries, share SciPy's OpenBLAS, empty ICU data, ... (SLIMMING.txt)
if [ "$slim" = 1 ]; then
    "$BPY" "$PKG/slim_bundle.py" "$APP" | sed 's/^/build: /'
fi
"$BPY" -m pip freeze --disable-pip-version-check > "$APP/BUILD-REQUIREMENTS.txt"
{
    echo "workbench $("$BPY" -c "import sys; sys.path.insert(0, '$ROOT'); import workbench; print(workbench.__version__)")"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm) with $("$BPY" --version 2>&1)"
    echo "source $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || echo '+dirty')"
    # glibc is the one system library never bundled: the newest symbol version any binary uses is the
    # oldest glibc the build runs on (install.sh checks it)
    echo "glibc_min $(find "$APP" -type f \( -name '*.so*' -o -name Workbench \) -exec objdump -T {} + 2>/dev/null \
        | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
} > "$APP/BUILD-INFO.txt"

size=$(du -sh "$APP" | cut -f1)
files=$(find "$APP" -type f | wc -l)
echo "build: $APP"
echo "build: size $size in $files files; dependencies $((t_deps - t_start)) s, PyInstaller $((t_end - t_deps)) s, total $((t_end - t_start)) s"

if [ "$tarball" = 1 ]; then
    bash "$PKG/linux/make_tarball.sh"
fi
if [ "$deb" = 1 ]; then
    bash "$PKG/linux/make_deb.sh"
fi
