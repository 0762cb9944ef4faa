"""Passwords for DICOM servers: from an environment variable, or from the system keyring; never from a file of ours.

The variable is ``VERTEBRA_REVIEW_PACS_PASSWORD_<NAME>`` (the server's name in capitals, other characters as ``_``),
which suits CI and containers. The keyring entry is service ``vertebra-review-pacs:<name>``, account = the user.
``keyring`` is optional: where it is missing or has no backend, the message says so and names the variable.
"""

from __future__ import annotations

import os
import re

from core.pacs.errors import PacsError
from core.pacs.servers import PacsServer

ENV_PREFIX = "VERTEBRA_REVIEW_PACS_PASSWORD_"
KEYRING_SERVICE = "vertebra-review-pacs"


def password_variable(server_name: str) -> str:
    """The environment variable that may hold the password of ``server_name``."""
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", server_name.upper())


def keyring_service(server_name: str) -> str:
    return f"{KEYRING_SERVICE}:{server_name}"


def password_for(server: PacsServer) -> str | None:
    """The password of the server's user (None when the server has no user). The environment variable wins over the
    keyring. Raises :class:`PacsError` saying where to put it when neither has one."""
    if server.user is None:
        return None
    variable = password_variable(server.name)
    if os.environ.get(variable):
        return os.environ[variable]
    try:
        import keyring
        import keyring.errors
    except ImportError:
        raise PacsError(f"server {server.name}: no password for user {server.user}: set {variable} (the keyring "
                        f"module is not installed)") from None
    try:
        password = keyring.get_password(keyring_service(server.name), server.user)
    except keyring.errors.KeyringError as exc:
        raise PacsError(f"server {server.name}: the system keyring is not available ({exc}); set {variable} "
                        f"instead") from exc
    if not password:
        raise PacsError(f"server {server.name}: no password for user {server.user} in the system keyring; store one "
                        f"with `vertebra-review pacs add {server.name} ... --user {server.user} --password-prompt` "
                        f"or set {variable}")
    return password


def store_password(server: PacsServer, password: str) -> None:
    """Keep ``password`` for the server's user in the system keyring."""
    if server.user is None:
        raise PacsError(f"server {server.name}: a password needs a user (--user)")
    variable = password_variable(server.name)
    try:
        import keyring
        import keyring.errors
    except ImportError:
        raise PacsError(f"the keyring module is not installed: set {variable} instead") from None
    try:
        keyring.set_password(keyring_service(server.name), server.user, password)
    except keyring.errors.KeyringError as exc:
        raise PacsError(f"the system keyring is not available ({exc}); set {variable} instead") from exc


def forget_password(server: PacsServer) -> None:
    """Remove the keyring entry of the server's user, when there is one and a keyring to hold it."""
    if server.user is None:
        return
    try:
        import keyring
        import keyring.errors
    except ImportError:
        return
    try:
        keyring.delete_password(keyring_service(server.name), server.user)
    except keyring.errors.KeyringError:
        pass  # nothing stored, or no keyring: nothing to forget
