#!/usr/bin/env bash
# Build the Linux bundle inside a Debian 11 (bullseye, glibc 2.31) root, so that it starts on Ubuntu 22.04
# (glibc 2.35), RHEL 9 (2.34) and anything newer; then smoke-test the result inside that root (chroot).
#
#   sudo packaging/linux/build_bullseye.sh [ROOT]      (default ROOT: /var/tmp/workbench-bullseye)
#
# Needs root (debootstrap, chroot, bind mounts) on a Debian/Ubuntu host (apt-get fetches the CPython
# source), debootstrap, the Debian mirror, and PyPI for the wheels.
# Steps, each skipped when already done: (1) debootstrap a minimal bullseye with the compilers and headers
# CPython needs; (2) build CPython 3.11 (Debian bookworm's source package, fetched with `apt-get source`:
# bullseye's own python3 is 3.9, below the app's 3.10) into ROOT/opt/python3.11 with a shared libpython;
# (3) copy this working tree into ROOT/src and run packaging/build.sh --tarball --deb there with that
# Python and PySide6 6.9.3 (the newest with glibc-2.28 wheels; pip's cache is bind-mounted from the host); (4) run packaging/smoke_test.py on the result inside
# the root; (5) copy the bundle, tarball and .deb out to packaging/dist/bullseye/.
set -euo pipefail
PKG="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$(cd "$PKG/.." && pwd)"
ROOT="${1:-/var/tmp/workbench-bullseye}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PYVER=3.11
OUT="$PKG/dist/bullseye"
[ "$(id -u)" = 0 ] || { echo "build_bullseye.sh: error: needs root (debootstrap, chroot)" >&2; exit 1; }
t0=$(date +%s)

if [ ! -x "$ROOT/usr/bin/gcc" ]; then
    echo "bullseye: debootstrap into $ROOT"
    debootstrap --variant=minbase \
        --include=ca-certificates,build-essential,pkg-config,libssl-dev,zlib1g-dev,libffi-dev,libsqlite3-dev,libbz2-dev,liblzma-dev,libreadline-dev,libncurses-dev,uuid-dev,libgdbm-dev,xz-utils,curl,git,binutils,file,dpkg-dev \
        bullseye "$ROOT" "$MIRROR"
fi

mounts=()
cleanup() { for ((i=${#mounts[@]}-1; i>=0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done; }
trap cleanup EXIT
bind() { mkdir -p "$2"; mount --bind "$1" "$2"; mounts+=("$2"); }
bind /proc "$ROOT/proc"
bind /dev "$ROOT/dev"
bind /sys "$ROOT/sys"
mkdir -p /root/.cache/pip
bind /root/.cache/pip "$ROOT/root/.cache/pip"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# the host's CA bundle (a TLS-inspecting proxy's CA, if any, is in it, not in Debian's): pip uses it
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/host-ca-certificates.crt"
CA=/etc/ssl/certs/host-ca-certificates.crt
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/opt/python$PYVER/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    PIP_CERT=$CA SSL_CERT_FILE=$CA REQUESTS_CA_BUNDLE=$CA PIP_DEFAULT_TIMEOUT=180 "$@"; }

if [ ! -x "$ROOT/opt/python$PYVER/bin/python$PYVER" ]; then
    echo "bullseye: fetching CPython $PYVER source (Debian bookworm's python$PYVER source package)"
    srcdir="$ROOT/usr/src/python"
    L="$ROOT/var/tmp/apt"   # a private apt state: the host's sources and lists stay untouched
    mkdir -p "$srcdir" "$L/lists/partial" "$L/cache/archives/partial"
    echo "deb-src $MIRROR bookworm main" > "$L/sources.list"
    A=(-o "Dir::Etc::sourcelist=$L/sources.list" -o Dir::Etc::sourceparts=/nonexistent
       -o "Dir::State::Lists=$L/lists" -o "Dir::Cache=$L/cache")
    apt-get "${A[@]}" update -qq
    (cd "$srcdir" && apt-get "${A[@]}" source --download-only -qq "python$PYVER" 2>/dev/null)
    tarball="$(ls "$srcdir"/python"$PYVER"_*.orig.tar.* | head -1)"
    echo "bullseye: building $(basename "$tarball") (shared libpython, no PGO)"
    in_root bash -c "cd /usr/src/python && rm -rf build && mkdir build && tar xf $(basename "$tarball") -C build --strip-components=1 \
        && cd build && ./configure -q --prefix=/opt/python$PYVER --enable-shared LDFLAGS=-Wl,-rpath,/opt/python$PYVER/lib \
        && make -s -j\$(nproc) && make -s install" > "$ROOT/usr/src/python/build.log" 2>&1 \
        || { tail -20 "$ROOT/usr/src/python/build.log" >&2; exit 1; }
fi
in_root "python$PYVER" -c "import ssl, sqlite3, ctypes, lzma, bz2, readline, uuid; print('bullseye: python', __import__('sys').version.split()[0], ssl.OPENSSL_VERSION)"

echo "bullseye: copying the working tree to $ROOT/src"
mkdir -p "$ROOT/src"
tar -C "$SRC" --exclude=./.venv --exclude=./packaging/.venv-build --exclude=./packaging/.venv-build-gpu \
    --exclude=./packaging/dist --exclude=./packaging/build --exclude='./models/*/runs' --exclude=./.git \
    -cf - . | tar -C "$ROOT/src" -xf -
# PySide6 >= 6.10 ships only manylinux_2_34 wheels (glibc 2.34): on glibc 2.31 the newest is 6.9.3
# (manylinux_2_28), which the app's pyproject allows (>= 6.6); every other pin of constraints.txt has a
# wheel for 2.31
sed -e 's/^PySide6_Essentials==.*/PySide6_Essentials==6.9.3/I' -e 's/^shiboken6==.*/shiboken6==6.9.3/I' \
    "$ROOT/src/packaging/constraints.txt" > "$ROOT/src/packaging/constraints-bullseye.txt"
in_root bash -c "cd /src && PYTHON=python$PYVER CONSTRAINTS=/src/packaging/constraints-bullseye.txt packaging/build.sh --tarball --deb"

pydicom_tests="$(ls -d "$ROOT"/src/packaging/.venv-build/lib/python$PYVER/site-packages/pydicom/data/test_files)"
echo "bullseye: smoke test inside the root (chroot, glibc $(in_root ldd --version | head -1 | awk '{print $NF}'))"
in_root "python$PYVER" /src/packaging/smoke_test.py /src/packaging/dist/Workbench --no-xcb --max-glibc 2.31 \
    --dicom-dir "${pydicom_tests#"$ROOT"}"

rm -rf "$OUT"
mkdir -p "$OUT"
cp -a "$ROOT/src/packaging/dist/Workbench" "$OUT/Workbench"
cp "$ROOT"/src/packaging/dist/*.tar.gz "$ROOT"/src/packaging/dist/*.deb "$OUT/"
echo "bullseye: done in $(( $(date +%s) - t0 )) s: $OUT ($(sed -n 's/^glibc_min //p' "$OUT/Workbench/BUILD-INFO.txt"))"
