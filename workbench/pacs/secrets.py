"""DICOMweb credentials: from an environment variable or the OS keyring, never from a file we write.

A node with ``auth: basic`` or ``bearer`` gets its secret from

1. the environment variable its ``secret_env`` names (scripts, CI, a clinic's session manager), else
2. the OS keyring, service ``workbench-pacs``, user name = the node's name, when the optional ``keyring``
   package is installed (``keyring set workbench-pacs NODE``).
"""
from __future__ import annotations

import os

from .errors import PacsError
from .nodes import Node

KEYRING_SERVICE = "workbench-pacs"


def _from_keyring(name: str) -> str | None:
    try:
        import keyring  # optional: not a dependency
    except ImportError:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, name)
    except Exception:  # noqa: BLE001 - no usable keyring backend: same as no keyring
        return None


def node_secret(node: Node) -> str | None:
    """The password (basic) or token (bearer) of ``node``; ``None`` for ``auth: none``.

    Raises
    ------
    PacsError
        The node needs a secret and neither its environment variable nor the keyring has one.
    """
    if node.auth == "none":
        return None
    if node.secret_env:
        value = os.environ.get(node.secret_env)
        if value:
            return value
    value = _from_keyring(node.name)
    if value:
        return value
    where = f"environment variable {node.secret_env}" if node.secret_env else "secret_env (none configured)"
    raise PacsError(f"{node.label}: no {'password' if node.auth == 'basic' else 'token'} found in the "
                    f"{where} nor in the OS keyring (service {KEYRING_SERVICE!r}, user {node.name!r})")
