"""DICOM networking: the only part of Workbench that opens sockets (house rule 8).

Nothing here connects on import or on its own: every connection is to a node the user configured (or named
on the command line) and is made only when a function of this package is called.

- :mod:`.nodes`: node configuration (DIMSE ``AET@HOST:PORT`` or a DICOMweb URL), user settings + site file;
- :mod:`.secrets`: DICOMweb credentials from an environment variable or the OS keyring, never from a file;
- :mod:`.query`: the C-FIND / QIDO-RS query keys and the JSON-ready matches;
- :mod:`.dimse`: C-ECHO, C-FIND, C-GET, C-MOVE (to a local pynetdicom storage SCP), C-STORE over :mod:`.upper`;
- :mod:`.upper`: the lean DICOM upper layer (association negotiation, P-DATA framing, command sets);
- :mod:`.web`: the same operations over DICOMweb (QIDO-RS, WADO-RS, STOW-RS; dicomweb-client);
- :mod:`.storage`: atomic, resumable writing of retrieved instances, one folder per series;
- :mod:`.cache`: the local study cache (size cap, LRU eviction);
- :mod:`.client`: one entry point, :func:`connect`, for both transports.

Long operations are generators that yield :class:`Progress` and check a ``cancel()`` callable, like
:mod:`workbench.inference.run`.
"""
from __future__ import annotations

from .errors import PacsError
from .nodes import Node, load_nodes, resolve_node
from .query import Query

__all__ = ["PacsError", "Node", "Query", "load_nodes", "resolve_node"]
