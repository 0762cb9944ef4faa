"""A DIMSE server through ``pynetdicom``: C-ECHO to test, C-FIND to find, C-GET to retrieve (the instances come back
on the same association, so no port needs to be opened to the server), C-STORE to send.

Every association is bounded by the server's timeout (TCP connect, association, each response). A refused
association (an AE title the server does not know) is told apart from a server that is not there."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    CTImageStorage,
    EnhancedCTImageStorage,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)

from core.pacs.connection import InstanceSink
from core.pacs.errors import PacsConnectionError, PacsError
from core.pacs.query import (
    SERIES_FIELDS,
    STUDY_FIELDS,
    SeriesMatch,
    StudyMatch,
    StudyQuery,
    series_match,
    study_match,
)
from core.pacs.servers import PacsServer

#: What a C-GET may bring back, in the transfer syntaxes a PACS keeps CT in (all decodable by our DICOM reader).
RETRIEVED_CLASSES = (CTImageStorage, EnhancedCTImageStorage, MRImageStorage, SecondaryCaptureImageStorage)
RETRIEVED_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, JPEG2000Lossless,
                      JPEG2000, JPEGLosslessSV1, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSLossless,
                      JPEGLSNearLossless, RLELossless)
_PENDING = (0xFF00, 0xFF01)


def _status(status: Dataset | None) -> int | None:
    return int(status.Status) if status is not None and "Status" in status else None


class DimseClient:
    def __init__(self, server: PacsServer) -> None:
        self.server = server
        if server.user is not None:
            raise PacsError(f"server {server.name}: DIMSE has no user and password here; remove --user, or use "
                            f"the server's DICOMweb URL")

    def _where(self) -> str:
        return f"server {self.server.name} ({self.server.address})"

    def _ae(self) -> AE:
        ae = AE(ae_title=self.server.calling_ae)
        timeout = self.server.timeout_s
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        ae.connection_timeout = min(timeout, 10.0)
        return ae

    def _reachable(self, doing: str) -> None:
        """A TCP connection first, so that a server that is not there is told apart from one that refuses us."""
        timeout = min(self.server.timeout_s, 10.0)
        try:
            socket.create_connection((str(self.server.host), int(self.server.port or 0)), timeout=timeout).close()
        except TimeoutError as exc:
            raise PacsConnectionError(f"{self._where()}: {doing}: no TCP connection within {timeout:g} s") from exc
        except OSError as exc:
            raise PacsConnectionError(f"{self._where()}: {doing}: cannot connect ({exc.strerror or exc}; is the "
                                      f"server running, and are the host and port right?)") from exc

    @contextmanager
    def _association(self, ae: AE, doing: str, **kwargs: Any) -> Iterator[Association]:
        self._reachable(doing)
        assoc = ae.associate(str(self.server.host), int(self.server.port or 0), ae_title=str(self.server.called_ae),
                             **kwargs)
        if not assoc.is_established:
            if assoc.is_rejected or assoc.is_aborted:
                how = "refused" if assoc.is_rejected else "aborted"
                raise PacsConnectionError(f"{self._where()}: {doing}: the server {how} the association (check its "
                                          f"AE title {self.server.called_ae!r}, and that it accepts ours, "
                                          f"{self.server.calling_ae!r})")
            raise PacsConnectionError(f"{self._where()}: {doing}: cannot connect within "
                                      f"{min(self.server.timeout_s, 10.0):g} s (is the server running, and are the "
                                      f"host and port right?)")
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()
            else:
                assoc.abort()

    def _check_alive(self, assoc: Association, doing: str) -> None:
        if not assoc.is_established:
            raise PacsConnectionError(f"{self._where()}: {doing}: the association ended without an answer within "
                                      f"{self.server.timeout_s:g} s")

    # -- the interface --------------------------------------------------------------------------------------------
    def echo(self) -> str:
        ae = self._ae()
        ae.add_requested_context(Verification)
        with self._association(ae, "C-ECHO") as assoc:
            status = _status(assoc.send_c_echo())
            self._check_alive(assoc, "C-ECHO")
            if status != 0x0000:
                raise PacsError(f"{self._where()}: C-ECHO answered status 0x{status or 0:04X}")
        return f"C-ECHO answered by {self.server.address}"

    def _find(self, identifier: Dataset, doing: str) -> list[Dataset]:
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        found: list[Dataset] = []
        with self._association(ae, doing) as assoc:
            for status, answer in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
                code = _status(status)
                if code in _PENDING and answer is not None:
                    found.append(answer)
                elif code is None:
                    self._check_alive(assoc, doing)
                    raise PacsConnectionError(f"{self._where()}: {doing}: no answer")
                elif code != 0x0000:
                    raise PacsError(f"{self._where()}: {doing}: the server answered status 0x{code:04X}")
        return found

    def find_studies(self, query: StudyQuery) -> list[StudyMatch]:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        for keyword in STUDY_FIELDS:
            setattr(identifier, keyword, "")
        for keyword, value in query.filters().items():
            setattr(identifier, keyword, value)
        found = self._find(identifier, "C-FIND for studies")[: query.limit]
        return [study_match(lambda k, d=answer: d.get(k)) for answer in found]

    def find_series(self, study_uid: str) -> list[SeriesMatch]:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "SERIES"
        identifier.StudyInstanceUID = study_uid
        for keyword in SERIES_FIELDS:
            setattr(identifier, keyword, "")
        found = self._find(identifier, "C-FIND for series")
        return [series_match(study_uid, lambda k, d=answer: d.get(k)) for answer in found]

    def instance_uids(self, study_uid: str, series_uid: str) -> list[str]:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "IMAGE"
        identifier.StudyInstanceUID, identifier.SeriesInstanceUID = study_uid, series_uid
        identifier.SOPInstanceUID = ""
        return [str(answer.SOPInstanceUID) for answer in self._find(identifier, "C-FIND for instances")
                if answer.get("SOPInstanceUID")]

    def fetch(self, study_uid: str, series_uid: str, sop_uids: Sequence[str], sink: InstanceSink) -> Iterator[str]:
        received: list[str] = []

        def on_store(event: Any) -> int:
            dataset = event.dataset
            dataset.file_meta = event.file_meta
            sink(dataset)
            received.append(str(dataset.SOPInstanceUID))
            return 0x0000

        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        for storage in RETRIEVED_CLASSES:  # one context per syntax: the server picks the one it stores, not a transcode
            for syntax in RETRIEVED_SYNTAXES:
                ae.add_requested_context(storage, syntax)
        roles = [build_role(storage, scp_role=True) for storage in RETRIEVED_CLASSES]
        with self._association(ae, "C-GET", ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
            for sop in sop_uids:
                identifier = Dataset()
                identifier.QueryRetrieveLevel = "IMAGE"
                identifier.StudyInstanceUID, identifier.SeriesInstanceUID = study_uid, series_uid
                identifier.SOPInstanceUID = sop
                doing = f"C-GET of instance {sop}"
                for status, _answer in assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet):
                    code = _status(status)
                    if code is None:
                        self._check_alive(assoc, doing)
                        raise PacsConnectionError(f"{self._where()}: {doing}: no answer")
                    if code not in _PENDING and code != 0x0000:
                        raise PacsError(f"{self._where()}: {doing}: the server answered status 0x{code:04X}")
                if sop not in received:
                    raise PacsError(f"{self._where()}: {doing}: the server sent nothing back (is the instance "
                                    f"there, in a transfer syntax we accept?)")
                yield sop

    def store(self, datasets: Sequence[Dataset]) -> None:
        ae = self._ae()
        for sop_class in sorted({str(d.SOPClassUID) for d in datasets}):
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        with self._association(ae, "C-STORE") as assoc:
            for dataset in datasets:
                status = _status(assoc.send_c_store(dataset))
                self._check_alive(assoc, "C-STORE")
                if status is None or (status != 0x0000 and not 0xB000 <= status <= 0xBFFF):
                    raise PacsError(f"{self._where()}: C-STORE of {dataset.SOPInstanceUID} answered status "
                                    f"0x{status or 0:04X}")

    def close(self) -> None:
        """Nothing to close: each operation opens and releases its own association."""
