#!/usr/bin/env bash
# Install (or remove) the packaged Workbench from this unpacked tarball. No network, no package manager.
#
#   ./install.sh                      root: into /usr/local; anyone else: into ~/.local (no root needed)
#   ./install.sh --prefix DIR         into DIR (any folder you can write: no root needed)
#   ./install.sh --prefix DIR --uninstall
#   ./install.sh --no-desktop         skip the menu entry and icons (e.g. a server used headless)
#
# Lays out: PREFIX/lib/workbench/ (the app), PREFIX/bin/workbench (symlink), PREFIX/share/applications/
# workbench.desktop and PREFIX/share/icons/hicolor/{scalable,256x256}/apps/workbench.{svg,png}.
# Re-running upgrades in place: the new copy is staged beside the old one and swapped in at the end.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$HERE/Workbench"

die() { echo "install.sh: error: $*" >&2; exit 1; }

if [ "$(id -u)" = "0" ]; then PREFIX=/usr/local; else PREFIX="$HOME/.local"; fi
uninstall=0
desktop=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; PREFIX="$2"; shift 2 ;;
        --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
        --uninstall) uninstall=1; shift ;;
        --no-desktop) desktop=0; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
mkdir -p "$PREFIX" 2>/dev/null || die "$PREFIX: cannot create the prefix (not writable: pick another --prefix or run as root)"
PREFIX="$(cd "$PREFIX" && pwd)"
[ -w "$PREFIX" ] || die "$PREFIX: not writable (pick another --prefix or run as root)"

APP="$PREFIX/lib/workbench"
BIN="$PREFIX/bin/workbench"
DESKTOP_FILE="$PREFIX/share/applications/workbench.desktop"
ICON_SVG="$PREFIX/share/icons/hicolor/scalable/apps/workbench.svg"
ICON_PNG="$PREFIX/share/icons/hicolor/256x256/apps/workbench.png"

refresh_menus() {
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$PREFIX/share/applications" 2>/dev/null || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$PREFIX/share/icons/hicolor" 2>/dev/null || true
}

if [ "$uninstall" = 1 ]; then
    [ -f "$APP/BUILD-INFO.txt" ] || die "$APP: no Workbench installed there (no BUILD-INFO.txt)"
    rm -rf "$APP"
    [ -L "$BIN" ] && rm -f "$BIN"
    rm -f "$DESKTOP_FILE" "$ICON_SVG" "$ICON_PNG"
    refresh_menus
    echo "install.sh: removed Workbench from $PREFIX"
    exit 0
fi

[ -x "$SRC/Workbench" ] || die "$SRC/Workbench: missing (run install.sh from the unpacked tarball)"

# The bundle carries its libraries but not glibc: it runs on glibc >= the newest symbol version it uses.
need="$(sed -n 's/^glibc_min //p' "$SRC/BUILD-INFO.txt" 2>/dev/null || true)"
have="$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}' || true)"
if [ -n "$need" ] && [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
    die "this system has glibc $have; this build needs glibc >= $need (build on an older distribution)"
fi

mkdir -p "$PREFIX/lib" "$PREFIX/bin"
stage="$APP.new.$$"
rm -rf "$stage"
cp -a "$SRC" "$stage"
# check the copy runs before replacing a working install (no display needed for --version)
"$stage/Workbench" --version >/dev/null 2>&1 || { rm -rf "$stage"; die "$stage/Workbench --version failed: the copy does not run on this system"; }
if [ -e "$APP" ]; then
    [ -f "$APP/BUILD-INFO.txt" ] || { rm -rf "$stage"; die "$APP exists and is not a Workbench install: not replacing it"; }
    mv "$APP" "$APP.old.$$"
fi
mv "$stage" "$APP"
rm -rf "$APP.old.$$"
ln -sfn "../lib/workbench/Workbench" "$BIN"

if [ "$desktop" = 1 ]; then
    mkdir -p "$(dirname "$DESKTOP_FILE")" "$(dirname "$ICON_SVG")" "$(dirname "$ICON_PNG")"
    # Exec is the absolute path: the menu entry works whether or not PREFIX/bin is on PATH
    sed "s|@EXEC@|$APP/Workbench|g" "$HERE/workbench.desktop" > "$DESKTOP_FILE"
    cp "$HERE/workbench.svg" "$ICON_SVG"
    cp "$HERE/workbench.png" "$ICON_PNG"
    refresh_menus
fi

echo "install.sh: installed $("$APP/Workbench" --version) into $APP"
case ":$PATH:" in
    *":$PREFIX/bin:"*) echo "install.sh: run it as: workbench" ;;
    *) echo "install.sh: run it as: $BIN   ($PREFIX/bin is not on PATH)" ;;
esac
