# Shared by scripts/run and scripts/test: create or refresh .venv at the repo root.
# Idempotent: reinstalls only when pyproject.toml or the requested extras change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

ensure_venv() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "workbench: creating $VENV"
        "$PY" -m venv "$VENV"
    fi
    local stamp="$VENV/.workbench-installed"
    local want
    want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-$extras"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x "$VENV/bin/workbench" ]; then
        echo "workbench: installing into $VENV (extras: $extras)"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        # onnxruntime and onnxruntime-gpu provide the same module: never keep both. When the other one is
        # present, remove both (uninstalling one deletes files the other shares), then install the right one.
        local other=onnxruntime-gpu
        case ",$extras," in *,gpu,*) other=onnxruntime ;; esac
        if "$VENV/bin/python" -m pip show "$other" >/dev/null 2>&1; then
            echo "workbench: removing $other (switching ONNX Runtime build)"
            "$VENV/bin/python" -m pip uninstall --quiet -y onnxruntime onnxruntime-gpu
        fi
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$extras]"
        echo "$want" > "$stamp"
    fi
    ensure_system_libs
}

# Qt's platform plugins need shared libraries that slim Debian/Ubuntu images and some desktops lack:
# `import PySide6.QtGui` works without the xcb helpers (libxcb-icccm4, libxcb-cursor0, ...), and then
# QApplication aborts with "could not load the Qt platform plugin xcb" (exit 134). So ask the dynamic
# loader what the xcb and offscreen plugins really miss (ldd resolves their whole dependency closure),
# map each missing library to its Debian package, install those with apt-get when root, else print the
# one apt command to run.
qt_missing_packages() {
    local site plugins lib pkg
    site="$("$VENV/bin/python" -c 'import PySide6, os; print(os.path.dirname(PySide6.__file__))' 2>/dev/null)" || return 0
    plugins="$site/Qt/plugins/platforms"
    [ -d "$plugins" ] || return 0
    for lib in $( { ldd "$plugins/libqxcb.so" 2>/dev/null || true; ldd "$plugins/libqoffscreen.so" 2>/dev/null || true; } \
                  | awk '/not found/ {print $1}' | sort -u); do
        pkg="$("$VENV/bin/python" -c 'import sys; from workbench.gui.launch import DEBIAN_PACKAGES as d; print(d.get(sys.argv[1], ""))' "$lib" 2>/dev/null)"
        echo "${pkg:-?$lib}"
    done | sort -u
}

ensure_system_libs() {
    local missing known unknown
    missing="$(qt_missing_packages | tr '\n' ' ')"
    if [ -z "${missing// /}" ] && "$VENV/bin/python" -c "import PySide6.QtGui" >/dev/null 2>&1; then
        return 0
    fi
    # shellcheck disable=SC2086
    known="$(printf '%s\n' $missing | { grep -v '^?' || true; } | tr '\n' ' ')"
    # shellcheck disable=SC2086
    unknown="$(printf '%s\n' $missing | { grep '^?' || true; } | sed 's/^?//' | tr '\n' ' ')"
    # the base set PySide6.QtGui itself needs, in case the import (not a plugin) is what fails
    known="$known libgl1 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0"
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        echo "workbench: installing Qt system libraries with apt-get: $known"
        apt-get update -qq >/dev/null 2>&1 || true
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $known >/dev/null || \
            echo "workbench: apt-get could not install: $known" >&2
    else
        echo "workbench: Qt's platform plugins miss system libraries; run: sudo apt-get install $known" >&2
    fi
    if [ -n "${unknown// /}" ]; then
        echo "workbench: also missing (no known package): $unknown" >&2
    fi
}
