#!/usr/bin/env bash
# Pack packaging/dist/Workbench (built by packaging/build.sh) as a Debian package with dpkg-deb:
# packaging/dist/workbench_VERSION_ARCH.deb. build.sh --deb calls this. No maintainer scripts run at install.
#
# Layout: /usr/lib/workbench/ (the app), /usr/bin/workbench (symlink), the menu entry and hicolor icons,
# /usr/share/doc/workbench/ (copyright pointer, INSTALL.md). Depends only on libc6 (>= the build's
# glibc_min from BUILD-INFO.txt), so apt refuses a system too old to start it; the window's OpenGL/EGL
# libraries are Recommends (the command line runs without them).
set -euo pipefail
PKG="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$PKG/.." && pwd)"
DIST="$PKG/dist"
APP="$DIST/Workbench"
[ -x "$APP/Workbench" ] || { echo "make_deb.sh: error: $APP/Workbench missing: run packaging/build.sh first" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "make_deb.sh: error: dpkg-deb not found (apt-get install dpkg)" >&2; exit 1; }

version="$("$APP/Workbench" --version | awk '{print $2}')"
glibc_min="$(sed -n 's/^glibc_min //p' "$APP/BUILD-INFO.txt")"
arch="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
stage="$DIST/deb-stage"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/lib" "$stage/usr/bin" "$stage/usr/share/applications" \
    "$stage/usr/share/icons/hicolor/scalable/apps" "$stage/usr/share/icons/hicolor/256x256/apps" \
    "$stage/usr/share/doc/workbench"
cp -al "$APP" "$stage/usr/lib/workbench"   # hard links: staging costs no disk space
ln -s ../lib/workbench/Workbench "$stage/usr/bin/workbench"
sed "s|@EXEC@|/usr/bin/workbench|g" "$PKG/linux/workbench.desktop" > "$stage/usr/share/applications/workbench.desktop"
cp "$ROOT/assets/icons/workbench.svg" "$stage/usr/share/icons/hicolor/scalable/apps/workbench.svg"
cp "$PKG/build/workbench/icons/workbench.png" "$stage/usr/share/icons/hicolor/256x256/apps/workbench.png"
cp "$ROOT/docs/INSTALL.md" "$stage/usr/share/doc/workbench/INSTALL.md"
cat > "$stage/usr/share/doc/workbench/copyright" <<TXT
Workbench $version. The licence files of every bundled distribution are in
/usr/lib/workbench/_internal/*.dist-info/; Qt (LGPL) is included as separate shared libraries.
TXT
installed_kib=$(du -sk --apparent-size "$stage/usr" | cut -f1)
cat > "$stage/DEBIAN/control" <<CTL
Package: workbench
Version: $version
Architecture: $arch
Maintainer: Workbench contributors <workbench@localhost>
Installed-Size: $installed_kib
Depends: libc6 (>= $glibc_min)
Recommends: libgl1, libegl1, libfontconfig1, libxkbcommon0
Section: science
Priority: optional
Homepage: https://localhost/workbench
Description: offline medical image analysis workbench (packaged build)
 View DICOM, NIfTI and raster images, segment and measure, and run the bundled
 ONNX model plugins without internet. Self-contained: Python and every library
 are inside /usr/lib/workbench. Site configuration for IT:
 /etc/xdg/workbench/site.toml (see /usr/share/doc/workbench/INSTALL.md).
CTL
t0=$(date +%s)
out="$DIST/workbench_${version}_${arch}.deb"
# gzip (not the default xz): a third of the packing time on this class of machine, ~10 % larger
dpkg-deb --root-owner-group -Zgzip -z6 --build "$stage" "$out" >/dev/null
rm -rf "$stage"
echo "deb: $out ($(du -h "$out" | cut -f1), $(( $(date +%s) - t0 )) s; Depends: libc6 (>= $glibc_min))"
