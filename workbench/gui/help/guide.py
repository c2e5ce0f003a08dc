"""The offline user guide: docs/USER_GUIDE.md shipped as package data, and the copy kept in step with it.

The guide is written in ``docs/USER_GUIDE.md`` (with its pictures in ``docs/images/``). The app cannot
rely on the repository being there (a wheel, the frozen clinic build), so a copy of the page and of the
pictures it shows lives in this package (``data/``, package data of ``workbench.gui.help``).
:func:`sync_guide` writes the copy; ``tests/gui/test_help.py`` fails while it differs from the source, and
``scripts/update_user_guide.py`` refreshes both the shortcuts table and the copy.
"""
from __future__ import annotations

import re
from pathlib import Path

from ...io.atomic import atomic_write_bytes

GUIDE_DIR = Path(__file__).resolve().parent / "data"
GUIDE_FILE = GUIDE_DIR / "USER_GUIDE.md"
_IMAGE = re.compile(r"!\[[^\]]*\]\((images/[^)\s]+)\)")


def guide_path() -> Path:
    """The bundled user guide (Markdown)."""
    return GUIDE_FILE


def referenced_images(markdown: str) -> list[str]:
    """The ``images/...`` pictures a guide shows, in order, each once."""
    found: list[str] = []
    for rel in _IMAGE.findall(markdown):
        if rel not in found:
            found.append(rel)
    return found


def stale_files(docs_dir: Path, target: Path = GUIDE_DIR) -> list[str]:
    """The files of the bundled copy that differ from (or are missing beside) ``docs_dir``'s guide."""
    source = docs_dir / "USER_GUIDE.md"
    text = source.read_text(encoding="utf-8")
    wanted = ["USER_GUIDE.md", *referenced_images(text)]
    stale = [rel for rel in wanted
             if not (target / rel).is_file() or (target / rel).read_bytes() != (docs_dir / rel).read_bytes()]
    images = target / "images"
    extra = [f"images/{p.name}" for p in (images.iterdir() if images.is_dir() else [])
             if f"images/{p.name}" not in wanted]
    return stale + extra


def sync_guide(docs_dir: Path, target: Path = GUIDE_DIR) -> list[str]:
    """Copy ``docs_dir/USER_GUIDE.md`` and the pictures it shows into ``target``; drop pictures it no longer
    shows. Returns the files written or removed."""
    changed = stale_files(docs_dir, target)
    (target / "images").mkdir(parents=True, exist_ok=True)
    for rel in changed:
        src, dst = docs_dir / rel, target / rel
        if src.is_file():
            atomic_write_bytes(dst, src.read_bytes())
        elif dst.is_file():
            dst.unlink()
    return changed




def shortcuts_section(window) -> str:
    """The generated shortcuts table of ``window`` (the text between the guide's markers)."""
    from .shortcuts import collect, markdown_table

    return markdown_table(collect(window))


def update_user_guide(window, docs_dir: Path) -> list[str]:
    """Rewrite the shortcuts table of ``docs_dir/USER_GUIDE.md`` from ``window``, then refresh the bundled
    copy. Returns what changed (file names)."""
    from .shortcuts import replace_section

    source = docs_dir / "USER_GUIDE.md"
    text = source.read_text(encoding="utf-8")
    new = replace_section(text, shortcuts_section(window))
    changed = []
    if new != text:
        atomic_write_bytes(source, new.encode("utf-8"))
        changed.append(str(source))
    return changed + sync_guide(docs_dir)


__all__ = ["GUIDE_DIR", "guide_path", "referenced_images", "shortcuts_section", "stale_files", "sync_guide",
           "update_user_guide"]
