"""The per-user list of DICOM servers: a name, and either a DICOMweb base URL or a DIMSE address (host, port, the
server's AE title and ours). A user name may be kept here; a password never is (see :mod:`core.pacs.credentials`).

The list is ``pacs_servers.json`` in the user's configuration folder (platformdirs, or ``$VERTEBRA_REVIEW_CONFIG_DIR``),
written atomically. It is per user, never in a study, so that sharing a study shares no server or account.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.fileio import atomic_write_json
from core.pacs.errors import PacsError
from core.paths import check_name
from core.review.preferences import AppDirs, app_dirs

SERVERS_FILE = "pacs_servers.json"
SERVERS_FORMAT = "vertebra-review-pacs-servers"
SERVERS_VERSION = 1
DICOMWEB, DIMSE = "dicomweb", "dimse"
#: Our AE title when the server entry names none.
DEFAULT_CALLING_AE = "VERTEBRAREVIEW"
#: Seconds any one network step (connect, association, a response) may take before it is given up.
DEFAULT_TIMEOUT_S = 30.0
_MAX_BYTES = 1024 * 1024
_FORBIDDEN_KEYS = ("password", "passwd", "secret", "token")


def check_ae_title(value: str, what: str) -> str:
    """An AE title: 1-16 characters of printable ASCII, no backslash, not only spaces."""
    if not value or not value.strip() or len(value) > 16 or "\\" in value or not value.isascii() \
            or not value.isprintable():
        raise PacsError(f"{what} {value!r} is not an AE title (1-16 printable ASCII characters, no backslash)")
    return value


#: A CA file this large is not one (a system's whole store of about 150 certificates is some 200 kB).
MAX_CA_BUNDLE_BYTES = 16 * 2**20


def check_ca_bundle(path: Path, url: str | None) -> Path:
    """The CA file ``pacs add --ca-bundle`` names, checked when it is added rather than at the first connection: a
    readable PEM file holding at least one certificate, for an https:// server. Returns its absolute path."""
    path = Path(path).absolute()
    if url is None or urlsplit(url).scheme != "https":
        raise PacsError("a CA file is for an https:// DICOMweb server; this server is not one", path)
    if not path.is_file():
        raise PacsError("no such CA file" if not path.exists() else "is not a file of CA certificates (PEM)", path)
    try:
        size = path.stat().st_size
        if size > MAX_CA_BUNDLE_BYTES:
            raise PacsError(f"is {size / 2**20:.0f} MB, too large for a file of CA certificates (PEM)", path)
        context = ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        raise PacsError(f"holds no certificate in PEM form (-----BEGIN CERTIFICATE-----): {exc.reason or exc}",
                        path) from exc
    except (OSError, ValueError) as exc:
        raise PacsError(f"cannot read the CA file: {getattr(exc, 'strerror', None) or exc}", path) from exc
    if not context.cert_store_stats().get("x509"):
        raise PacsError("holds no certificate in PEM form (-----BEGIN CERTIFICATE-----)", path)
    return path


@dataclass(frozen=True)
class PacsServer:
    """One DICOM server. ``url`` (DICOMweb: QIDO-RS, WADO-RS, STOW-RS under one base URL) or ``host`` and ``port``
    (DIMSE: C-ECHO, C-FIND, C-GET, C-STORE) is given, not both. ``ca_bundle`` is a CA file for an https server that
    the system's store does not trust; ``verify_tls`` false turns the check off (a test server only)."""

    name: str
    url: str | None = None
    host: str | None = None
    port: int | None = None
    called_ae: str | None = None
    calling_ae: str = DEFAULT_CALLING_AE
    user: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        check_name(self.name, "server name", PacsError)
        if (self.url is None) == (self.host is None):
            raise PacsError(f"server {self.name}: give a DICOMweb URL or a DIMSE host and port, not both or neither")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise PacsError(f"server {self.name}: {self.url!r} is not an http:// or https:// URL")
            if parts.password is not None or parts.username is not None:
                raise PacsError(f"server {self.name}: put the user in --user and the password in the keyring or the "
                                f"environment, not in the URL")
        else:
            if not isinstance(self.port, int) or isinstance(self.port, bool) or not 0 < self.port < 65536:
                raise PacsError(f"server {self.name}: the DIMSE port must be a number from 1 to 65535, "
                                f"not {self.port!r}")
            check_ae_title(self.called_ae or "", f"server {self.name}: the server's AE title")
        check_ae_title(self.calling_ae, f"server {self.name}: our AE title")
        if not (isinstance(self.timeout_s, int | float) and 0 < self.timeout_s <= 3600):
            raise PacsError(f"server {self.name}: the timeout must be 0-3600 s, not {self.timeout_s!r}")

    @property
    def kind(self) -> str:
        return DICOMWEB if self.url is not None else DIMSE

    @property
    def address(self) -> str:
        """Where it is, for messages: the URL, or ``AE@host:port``."""
        return self.url if self.url is not None else f"{self.called_ae}@{self.host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, data: Any, where: Path) -> PacsServer:
        if not isinstance(data, dict):
            raise PacsError("each server entry must be an object", where)
        secret = [key for key in data if key.lower() in _FORBIDDEN_KEYS]
        if secret:
            raise PacsError(f"server entry {data.get('name')!r} holds a {secret[0]!r}: passwords are never kept in "
                            f"this file; remove it and use the keyring or the environment", where)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PacsError(f"server entry {data.get('name')!r} has unknown keys {', '.join(unknown)}", where)
        try:
            return cls(**data)
        except TypeError as exc:
            raise PacsError(f"server entry {data.get('name')!r} is malformed: {exc}", where) from exc


class ServerList:
    """The user's servers, by name, in the order they were added."""

    def __init__(self, servers: list[PacsServer] | None = None, path: Path | None = None) -> None:
        self.servers = list(servers or [])
        self.path = path

    @staticmethod
    def default_path(dirs: AppDirs | None = None) -> Path:
        return (dirs or app_dirs()).config / SERVERS_FILE

    @classmethod
    def load(cls, path: Path | None = None) -> ServerList:
        """The stored list (empty when there is no file yet); a malformed file is an error naming it."""
        path = path or cls.default_path()
        if not path.is_file():
            return cls([], path)
        if path.stat().st_size > _MAX_BYTES:
            raise PacsError("the server list is larger than 1 MB; it is not ours", path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PacsError(f"the server list cannot be read ({exc})", path) from exc
        if not isinstance(data, dict) or data.get("format") != SERVERS_FORMAT:
            raise PacsError(f'not a server list (no "format": "{SERVERS_FORMAT}")', path)
        if not isinstance(data.get("version"), int) or data["version"] > SERVERS_VERSION:
            raise PacsError(f"server list version {data.get('version')!r} is newer than this app", path)
        entries = data.get("servers", [])
        if not isinstance(entries, list):
            raise PacsError("'servers' must be a list", path)
        servers = [PacsServer.from_json(entry, path) for entry in entries]
        names = [s.name for s in servers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise PacsError(f"server {twice[0]} is listed twice", path)
        return cls(servers, path)

    def save(self) -> Path:
        path = self.path or self.default_path()
        data = {"format": SERVERS_FORMAT, "version": SERVERS_VERSION,
                "servers": [server.to_json() for server in self.servers]}
        return atomic_write_json(path, data)

    def names(self) -> list[str]:
        return [server.name for server in self.servers]

    def get(self, name: str) -> PacsServer:
        for server in self.servers:
            if server.name == name:
                return server
        known = ", ".join(self.names()) or "none yet; add one with `vertebra-review pacs add`"
        raise PacsError(f"no server named {name!r} (servers: {known})", self.path)

    def add(self, server: PacsServer, *, replace_existing: bool = False) -> None:
        for number, existing in enumerate(self.servers):
            if existing.name == server.name:
                if not replace_existing:
                    raise PacsError(f"a server named {server.name!r} is already listed ({existing.address}); "
                                    f"give --replace to change it", self.path)
                self.servers[number] = server
                return
        self.servers.append(server)

    def remove(self, name: str) -> PacsServer:
        server = self.get(name)
        self.servers.remove(server)
        return server


def with_timeout(server: PacsServer, timeout_s: float | None) -> PacsServer:
    """The server with another timeout (a command's ``--timeout``), or as it is."""
    return server if timeout_s is None else replace(server, timeout_s=timeout_s)
