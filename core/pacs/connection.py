"""One interface over both kinds of server (:class:`PacsClient`), and :func:`connect` to make the right one.

Every method raises :class:`~core.pacs.errors.PacsConnectionError` (server down, association refused, wrong AE
title, 401/403, timeout) or :class:`~core.pacs.errors.PacsError` (anything else the server said no to), with the
server's name and address in the message."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from pydicom.dataset import Dataset

from core.pacs.query import SeriesMatch, StudyMatch, StudyQuery
from core.pacs.servers import DICOMWEB, PacsServer

#: Called with each retrieved instance; it writes the instance where it belongs.
InstanceSink = Callable[[Dataset], None]


class PacsClient(Protocol):
    server: PacsServer

    def echo(self) -> str:
        """Check that the server answers and accepts us; returns what was checked, for people."""

    def find_studies(self, query: StudyQuery) -> list[StudyMatch]: ...

    def find_series(self, study_uid: str) -> list[SeriesMatch]: ...

    def instance_uids(self, study_uid: str, series_uid: str) -> list[str]:
        """The SOP instance UIDs of one series, as the server lists them."""

    def fetch(self, study_uid: str, series_uid: str, sop_uids: Sequence[str], sink: InstanceSink) -> Iterator[str]:
        """Retrieve these instances; hands each to ``sink`` and then yields its SOP instance UID."""

    def store(self, datasets: Sequence[Dataset]) -> None: ...

    def close(self) -> None: ...


def connect(server: PacsServer) -> PacsClient:
    """A client for ``server`` (nothing is sent until a method is called; the password is looked up now)."""
    if server.kind == DICOMWEB:
        from core.pacs.dicomweb import DicomwebClient

        return DicomwebClient(server)
    from core.pacs.dimse import DimseClient

    return DimseClient(server)
