#!/usr/bin/env bash
# Static checks, in one place: ruff (lint + import order), import-linter (the layers), mypy (the Qt-free core
# packages). Called by scripts/test before pytest (so by CI) and usable alone: ./scripts/lint.sh [--fix].
# Rules and paths live in pyproject.toml ([tool.ruff], [tool.mypy]) and .importlinter.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${VENV:-$ROOT/.venv}/bin"
cd "$ROOT"
if [ "${1:-}" = "--fix" ]; then
    "$BIN/ruff" check --fix .
fi
echo "lint: ruff" >&2
"$BIN/ruff" check --quiet .
echo "lint: import-linter" >&2
"$BIN/lint-imports" --no-cache >/dev/null || "$BIN/lint-imports" --no-cache
echo "lint: mypy" >&2
"$BIN/mypy" --no-error-summary --cache-dir "$ROOT/.venv/.mypy_cache"
