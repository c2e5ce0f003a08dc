"""YAML for manifests: PyYAML's safe loader, refusing duplicate keys and deep nesting.

``yaml.safe_load`` lets the last of two equal keys win silently (``threshold: 0.5`` then
``threshold: 0.9`` ten lines below), and a document nested a few thousand levels deep raises
RecursionError from inside the composer. Both are refused here with a :class:`yaml.YAMLError` whose
``problem``/``problem_mark`` say where, like every other YAML syntax error.
"""
from __future__ import annotations

from typing import Any

import yaml

#: deeper than any manifest needs (plugin.yaml nests 4 levels), far below the interpreter's recursion limit
MAX_DEPTH = 32


class _Loader(yaml.SafeLoader):
    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base class reports unhashable keys itself
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"duplicate key {key!r} (first at line {seen[key].line + 1})", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def safe_load(text: str | bytes) -> Any:
    """``yaml.safe_load`` that raises :class:`yaml.YAMLError` on duplicate keys and on nesting deeper than
    :data:`MAX_DEPTH` (also aliases that would expand into a billion-laughs bomb stay shared objects, as
    in PyYAML)."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
