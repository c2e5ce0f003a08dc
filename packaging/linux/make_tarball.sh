#!/usr/bin/env bash
# Pack packaging/dist/Workbench (built by packaging/build.sh) with the Linux installer into
# packaging/dist/workbench-VERSION-linux-ARCH.tar.gz. build.sh --tarball calls this.
set -euo pipefail
PKG="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="$PKG/dist"
APP="$DIST/Workbench"
[ -x "$APP/Workbench" ] || { echo "make_tarball.sh: error: $APP/Workbench missing: run packaging/build.sh first" >&2; exit 1; }

version="$("$APP/Workbench" --version | awk '{print $2}')"
name="workbench-$version-linux-$(uname -m)"
stage="$DIST/$name"
rm -rf "$stage"
mkdir -p "$stage"
# the app folder is hard-linked, not copied: staging costs no disk space
cp -al "$APP" "$stage/Workbench"
cp "$PKG/linux/install.sh" "$PKG/linux/workbench.desktop" "$stage/"
cp "$PKG/../assets/icons/workbench.svg" "$stage/"
cp "$PKG/build/workbench/icons/workbench.png" "$stage/"
cat > "$stage/README.txt" <<TXT
Workbench $version for Linux ($(uname -m)), packaged build: no Python or internet needed.

Install:    ./install.sh                  (root: /usr/local; otherwise ~/.local)
            ./install.sh --prefix DIR     (any writable folder, no root)
Uninstall:  ./install.sh --prefix DIR --uninstall
Run:        workbench [FILES...]          (GUI)   workbench --help   (command line)
Or without installing: ./Workbench/Workbench

Needs: glibc >= $(sed -n 's/^glibc_min //p' "$APP/BUILD-INFO.txt"), an X11 or Wayland desktop with OpenGL/EGL drivers
(libGL.so.1, libEGL.so.1) for the window; the command line needs neither.
See Workbench/BUILD-INFO.txt and BUILD-REQUIREMENTS.txt for what this build contains.
TXT
t0=$(date +%s)
tar -C "$DIST" --owner=0 --group=0 --numeric-owner -czf "$DIST/$name.tar.gz" "$name"
rm -rf "$stage"
echo "tarball: $DIST/$name.tar.gz ($(du -h "$DIST/$name.tar.gz" | cut -f1), $(( $(date +%s) - t0 )) s)"
