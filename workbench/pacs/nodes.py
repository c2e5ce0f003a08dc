"""PACS node configuration: DIMSE nodes (``AET@HOST:PORT``) and DICOMweb nodes (a URL).

Where nodes come from, later ones winning by name:

1. the site file of clinic IT: ``$WORKBENCH_PACS_SITE_FILE`` or ``<site config dir>/workbench/pacs.yaml``
   (``nodes: [...]`` plus optional ``ae_title``, ``storage_port``, ``cache_mb``), read-only for the app;
2. the user's settings (``pacs_nodes`` in settings.json), edited by ``workbench pacs nodes`` and the GUI.

A NODE argument is a configured name, ``AET@HOST:PORT`` (our AE title from the settings) or an
``http(s)://`` DICOMweb base URL. Credentials are never stored: a node names the environment variable
(``secret_env``) or relies on the OS keyring (see :mod:`.secrets`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from .errors import PacsError

DEFAULT_AE_TITLE = "WORKBENCH"
DEFAULT_STORAGE_PORT = 11113
DEFAULT_CACHE_MB = 4096
_AET = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # 16 chars of the default repertoire, no backslash
_SPEC = re.compile(r"^(?P<aet>[^@]{1,16})@(?P<host>[^:@]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})$")
_PLAIN_SECRETS = ("password", "token", "secret", "bearer")


class Node(BaseModel):
    """One PACS: a DICOM (DIMSE) peer or a DICOMweb service.

    ``timeout`` (seconds) bounds connecting, negotiating and every wait for a reply; ``retries`` more
    attempts are made after a refused connection or a timeout, with exponential backoff from ``backoff``.
    """

    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=64)
    kind: Literal["dimse", "dicomweb"] = "dimse"
    ae_title: str | None = None
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    our_ae_title: str | None = None
    url: str | None = None
    auth: Literal["none", "basic", "bearer"] = "none"
    username: str | None = None
    secret_env: str | None = Field(None, description="environment variable holding the password/token")
    timeout: float = Field(30.0, gt=0, le=3600)
    retries: int = Field(2, ge=0, le=10)
    backoff: float = Field(0.5, ge=0, le=60)
    source: Literal["user", "site", "command line"] = Field("user", exclude=True)

    @field_validator("ae_title", "our_ae_title")
    @classmethod
    def _check_aet(cls, value: str | None) -> str | None:
        if value is not None and not _AET.match(value.strip() or "\\"):
            raise ValueError(f"invalid AE title {value!r} (1-16 characters, no backslash)")
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _complete(self) -> "Node":
        if self.kind == "dimse":
            missing = [k for k in ("ae_title", "host", "port") if getattr(self, k) in (None, "")]
            if missing:
                raise ValueError(f"DIMSE node needs {', '.join(missing)}")
        else:
            if not self.url or not re.match(r"^https?://", self.url):
                raise ValueError(f"DICOMweb node needs an http(s) url, got {self.url!r}")
            if self.auth == "basic" and not self.username:
                raise ValueError("basic auth needs a username")
        return self

    @property
    def address(self) -> str:
        """``AET@host:port`` or the URL: how messages name the node."""
        return f"{self.ae_title}@{self.host}:{self.port}" if self.kind == "dimse" else str(self.url)

    @property
    def label(self) -> str:
        return self.address if self.name == self.address else f"{self.name} ({self.address})"

    def calling_ae_title(self, default: str = DEFAULT_AE_TITLE) -> str:
        return self.our_ae_title or default

    def to_config(self) -> dict[str, Any]:
        """The dict stored in settings.json (no defaults, no credentials: there are none to store)."""
        return self.model_dump(exclude_defaults=True, exclude={"source"}) | {"name": self.name}


class PacsConfig(BaseModel):
    """What the site file and the settings give together."""

    nodes: list[Node] = Field(default_factory=list)
    ae_title: str = DEFAULT_AE_TITLE
    storage_port: int = Field(DEFAULT_STORAGE_PORT, ge=0, le=65535)
    cache_mb: int = Field(DEFAULT_CACHE_MB, ge=1)
    #: the address our C-MOVE storage SCP listens on (site file only; all interfaces by default)
    storage_bind: str = "0.0.0.0"

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)


def site_file() -> Path:
    override = os.environ.get("WORKBENCH_PACS_SITE_FILE")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.site_config_dir("workbench", appauthor=False)) / "pacs.yaml"


def _node(raw: Any, *, source: str, where: str) -> Node:
    if not isinstance(raw, dict):
        raise PacsError(f"{where}: a node must be a mapping, got {raw!r}")
    plain = [k for k in raw if k.lower() in _PLAIN_SECRETS]
    if plain:
        raise PacsError(f"{where}: node {raw.get('name')!r} has a plain-text {plain[0]!r}; credentials are "
                        "never stored in files: name an environment variable (secret_env) or use the keyring")
    try:
        return Node.model_validate({**raw, "source": source})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise PacsError(f"{where}: node {raw.get('name')!r}: {loc + ': ' if loc else ''}{err['msg']}") from exc


def _read_site() -> dict[str, Any]:
    path = site_file()
    if not path.is_file():
        return {}
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PacsError(f"cannot read the PACS site file ({' '.join(str(exc).split())})", path=path) from exc
    if not isinstance(raw, dict):
        raise PacsError("PACS site file must be a mapping with a 'nodes' list", path=path)
    raw["_path"] = path
    return raw


def load_config(settings: Any = None) -> PacsConfig:
    """Site file + user settings (``settings``: a :class:`~workbench.core.settings.Settings`, or loaded)."""
    from ..core.settings import load_settings

    settings = settings if settings is not None else load_settings()
    site = _read_site()
    where = str(site.get("_path", "site file"))
    nodes: dict[str, Node] = {}
    for raw in site.get("nodes") or []:
        node = _node(raw, source="site", where=where)
        nodes[node.name] = node
    for raw in settings.pacs_nodes:
        node = _node(raw, source="user", where="settings")
        nodes[node.name] = node
    try:
        return PacsConfig(nodes=list(nodes.values()),
                          ae_title=settings.pacs_ae_title or site.get("ae_title") or DEFAULT_AE_TITLE,
                          storage_port=(settings.pacs_storage_port if settings.pacs_storage_port is not None
                                        else site.get("storage_port", DEFAULT_STORAGE_PORT)),
                          cache_mb=settings.pacs_cache_mb or site.get("cache_mb") or DEFAULT_CACHE_MB,
                          storage_bind=site.get("storage_bind", "0.0.0.0"))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise PacsError(f"PACS configuration: {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc


def load_nodes(settings: Any = None) -> list[Node]:
    """Every configured node (site first, then the user's)."""
    return load_config(settings).nodes


def parse_spec(spec: str, *, our_ae_title: str | None = None) -> Node | None:
    """A node from ``AET@HOST:PORT`` or an http(s) URL; ``None`` when ``spec`` is neither."""
    spec = spec.strip()
    if re.match(r"^https?://", spec):
        return Node(name=spec, kind="dicomweb", url=spec.rstrip("/"), source="command line")
    match = _SPEC.match(spec)
    if not match:
        return None
    try:
        return Node(name=spec, ae_title=match["aet"], host=match["host"].strip("[]"), port=int(match["port"]),
                    our_ae_title=our_ae_title, source="command line")
    except ValidationError as exc:
        raise PacsError(f"invalid node {spec!r} ({exc.errors()[0]['msg']})") from exc


def resolve_node(spec: str, config: PacsConfig | None = None) -> Node:
    """The node a NODE argument means: a configured name first, then ``AET@HOST:PORT`` or a URL.

    Raises
    ------
    PacsError
        ``spec`` is none of these.
    """
    config = config or load_config()
    node = config.node(spec) or parse_spec(spec)
    if node is None:
        names = ", ".join(n.name for n in config.nodes) or "none"
        raise PacsError(f"unknown PACS node {spec!r} (configured: {names}; or give AET@HOST:PORT or a "
                        "DICOMweb URL)")
    return node


def save_user_node(node: Node, *, replace: bool = False) -> None:
    """Add (or with ``replace`` overwrite) a node in the user's settings."""
    from ..core.settings import load_settings
    from ..io.settings_file import save_settings

    settings = load_settings()
    exists = any(raw.get("name") == node.name for raw in settings.pacs_nodes)
    if exists and not replace:
        raise PacsError(f"PACS node {node.name!r} already exists (remove it first)")
    settings.pacs_nodes = [raw for raw in settings.pacs_nodes if raw.get("name") != node.name] + [node.to_config()]
    save_settings(settings)


def remove_user_node(name: str) -> None:
    """Remove a node from the user's settings (site nodes cannot be removed here)."""
    from ..core.settings import load_settings
    from ..io.settings_file import save_settings

    settings = load_settings()
    kept = [raw for raw in settings.pacs_nodes if raw.get("name") != name]
    if len(kept) == len(settings.pacs_nodes):
        site = load_config(settings).node(name)
        if site is not None and site.source == "site":
            raise PacsError(f"PACS node {name!r} comes from the site file {site_file()}; ask your IT to change it")
        raise PacsError(f"no PACS node {name!r} in the settings")
    settings.pacs_nodes = kept
    save_settings(settings)
