#!/usr/bin/env bash
# Smoke test of the FROZEN Workbench with the network unavailable: re-runs itself in a new network namespace
# (`unshare -n` as root, `unshare -rn` through an unprivileged user namespace), then runs smoke_test.py,
# which drives only the packaged executable. Arguments go to smoke_test.py:
#
#   packaging/smoke_test.sh [APP_DIR] [--dicom-dir DIR] [--keep] [--no-xcb]
#
# Exit status 0 when every check passed, 1 with a one-line reason otherwise. Where no namespace can be made
# (a container without the privilege), the test still runs, says "network: NOT isolated" and does not fail
# on it; set WORKBENCH_SMOKE_REQUIRE_OFFLINE=1 to make that a failure.
set -euo pipefail
PKG="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"

if [ "${WORKBENCH_SMOKE_NETNS:-}" != "1" ] && command -v unshare >/dev/null 2>&1; then
    for flags in -n -rn; do
        if unshare "$flags" true 2>/dev/null; then
            exec unshare "$flags" env WORKBENCH_SMOKE_NETNS=1 bash "$0" "$@"
        fi
    done
fi

offline=()
if [ "${WORKBENCH_SMOKE_NETNS:-}" = "1" ]; then
    # the namespace's own loopback (down in a new namespace): the PACS checks talk to local servers on it;
    # nothing outside the namespace is reachable through it
    if command -v ip >/dev/null 2>&1; then ip link set lo up 2>/dev/null || true; fi
fi
if [ "${WORKBENCH_SMOKE_NETNS:-}" = "1" ] || [ "${WORKBENCH_SMOKE_REQUIRE_OFFLINE:-}" = "1" ]; then
    offline=(--require-offline)
else
    echo "smoke_test: cannot make a network namespace here (unshare -n not permitted): testing with the network up" >&2
fi
exec "$PY" "$PKG/smoke_test.py" "${offline[@]}" "$@"
