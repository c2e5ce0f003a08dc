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

# Qt's offscreen/xcb platforms need a few shared libraries that slim Debian images lack.
ensure_system_libs() {
    if "$VENV/bin/python" -c "import PySide6.QtGui" >/dev/null 2>&1; then
        return 0
    fi
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        echo "workbench: installing Qt system libraries with apt-get"
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            libgl1 libegl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 \
            libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 \
            libxcb-randr0 libxcb-render-util0 libxcb-image0 libglib2.0-0 >/dev/null
    else
        echo "workbench: PySide6 cannot load its libraries; install libgl1 libegl1 libxkbcommon0 libfontconfig1" >&2
    fi
}
