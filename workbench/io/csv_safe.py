"""CSV cells that a spreadsheet cannot execute (formula / CSV injection).

Excel, LibreOffice and Google Sheets evaluate a cell starting with ``=``, ``+``, ``-``, ``@`` (and a tab or
carriage return before them) as a formula: a file name such as ``=HYPERLINK("http://...")`` in
``summary.csv`` would run when a colleague opens the table. The OWASP remedy: prefix such text cells with a
single quote, which spreadsheets show as text and do not display. Numbers (also as text: ``-3.5``) are
written as they are.
"""
from __future__ import annotations

from typing import Any

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def escape_cell(value: Any) -> Any:
    """``value`` made safe for a CSV cell: text starting with a formula trigger gets a leading ``'``;
    numbers, None and other text are returned unchanged."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(_TRIGGERS) and not _is_number(value) or \
            value.startswith("'") and value[1:].startswith(_TRIGGERS + ("'",)):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text


def unescape_cell(value: str) -> str:
    """Undo :func:`escape_cell` (reading back a CSV we wrote)."""
    if value.startswith("'") and value[1:].startswith(_TRIGGERS + ("'",)) and not _is_number(value[1:]):
        return value[1:]
    return value


def escape_row(row: dict[str, Any]) -> dict[str, Any]:
    """Every cell of a ``csv.DictWriter`` row through :func:`escape_cell`."""
    return {key: escape_cell(value) for key, value in row.items()}
