#!/usr/bin/env bash
# Issue 11, item 1, in CI: ./scripts/run on a Debian/Ubuntu desktop that lacks Qt's xcb helper libraries.
#
#   1. install Xvfb (idempotent) and REMOVE the xcb helper libraries (the state of a fresh desktop);
#   2. run ./scripts/run exactly as a user would, under a real X server (Xvfb), with --screenshot: its
#      set-up must find what the xcb plugin misses (ldd) and install it, then the app must start on xcb
#      (not offscreen) and write the PNG;
#   3. check the PNG (a real window grab: not empty, not one colour).
# Needs root and apt-get (CI); otherwise it says so and exits 0 without testing. About 30-90 s.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
XCB_HELPERS="libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0 libxcb-cursor0"

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ci_fresh_desktop: needs root and apt-get; skipped"
    exit 0
fi
if ! command -v Xvfb >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb >/dev/null
fi
echo "ci_fresh_desktop: removing $XCB_HELPERS"
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq $XCB_HELPERS >/dev/null 2>&1 || true
for pkg in $XCB_HELPERS; do
    if dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        echo "ci_fresh_desktop: FAIL: could not remove $pkg" >&2
        exit 1
    fi
done

display=":$(( 90 + RANDOM % 400 ))"
Xvfb "$display" -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill "$xvfb_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    [ -e "/tmp/.X11-unix/X${display#:}" ] && break
    sleep 0.1
done

shot="$(mktemp -d)/fresh_desktop.png"
log="$(mktemp)"
# QT_QPA_PLATFORM=xcb: a fall-back to offscreen would hide exactly the failure this checks
if ! env -u WAYLAND_DISPLAY DISPLAY="$display" QT_QPA_PLATFORM=xcb timeout 600 \
        "$ROOT/scripts/run" "$ROOT/assets/samples/mri_t1_noisy.png" --screenshot "$shot" >"$log" 2>&1; then
    cat "$log" >&2
    echo "ci_fresh_desktop: FAIL: ./scripts/run did not start the app on xcb" >&2
    exit 1
fi
"$ROOT/.venv/bin/python" - "$shot" <<'PY'
import sys
import numpy as np
from workbench.io import read_image

img = read_image(sys.argv[1]).data
assert img.shape[1] >= 400 and img.shape[2] >= 400, img.shape
assert float(np.asarray(img, float).std()) > 5, "the screenshot is one flat colour"
print(f"ci_fresh_desktop: OK: window grabbed on xcb, {img.shape[2]}x{img.shape[1]}")
PY
