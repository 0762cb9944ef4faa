"""The error family of PACS work: one line that says which server or file and what failed."""

from __future__ import annotations

from core.errors import VertebraReviewError


class PacsError(VertebraReviewError):
    """A DICOM server could not be reached, refused us, or answered with something we cannot use; or the local
    setup for it (server list, password, key file) is missing or wrong."""


class PacsConnectionError(PacsError):
    """The server is down, refused the connection or association, timed out, or refused our credentials."""


class KeyFileError(PacsError):
    """The key file that maps a study's cases back to their original DICOM UIDs is missing or unreadable."""
