"""The encoder-embedding cache: a least-recently-used store bounded by bytes, keyed by the model, the image
content (a hash of the plane's bytes) and the slice, so that a second click on the same slice, or a return
to it, costs only the decoder."""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

DEFAULT_MAX_BYTES = 512 * 1024 * 1024


def content_key(plane: np.ndarray) -> str:
    """A digest of a plane's values, shape and dtype (BLAKE2b, 128 bits)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{plane.shape}|{plane.dtype.str}".encode())
    h.update(np.ascontiguousarray(plane).data)
    return h.hexdigest()


class EmbeddingCache:
    """``get``/``put`` of dicts of arrays by key; evicts the least recently used beyond ``max_bytes``.

    An entry larger than the whole bound is not kept. Thread-safe: the GUI pre-computes the next slices'
    embeddings in a worker while the decoder runs for the current one.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    @staticmethod
    def _size(value: dict[str, np.ndarray]) -> int:
        return sum(int(v.nbytes) for v in value.values())

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key) -> dict[str, np.ndarray] | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key, value: dict[str, np.ndarray]) -> None:
        size = self._size(value)
        with self._lock:
            if key in self._items:
                self._bytes -= self._size(self._items.pop(key))
            if size > self.max_bytes:
                return
            self._items[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= self._size(old)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
