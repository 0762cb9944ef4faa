"""A DICOMweb server through ``dicomweb-client``: QIDO-RS to find, WADO-RS to retrieve, STOW-RS to store.

HTTP basic authentication when the server has a user; TLS verified against the system store or the server's CA
bundle; every request bounded by the server's timeout (connect at most 10 s, and read), tried at most twice."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import requests
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset

from core.pacs.connection import InstanceSink
from core.pacs.credentials import password_for
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

_STATUS_MEANING = {
    400: "the server did not understand the request (400)",
    401: "the server refused our credentials (401): check --user and the password",
    403: "the server forbids this to our user (403)",
    404: "the server has no such resource (404): check the URL (it should end at the DICOMweb root) and the UIDs",
    409: "the server refused to store it (409 conflict)",
    500: "the server failed with an internal error (500)",
    503: "the server is unavailable (503)",
}


def _json_getter(item: dict[str, Any]) -> Any:
    from pydicom.datadict import tag_for_keyword

    def get(keyword: str) -> Any:
        tag = tag_for_keyword(keyword)
        element = item.get(f"{tag:08X}") if tag is not None else None
        values = (element or {}).get("Value")
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    return get


class DicomwebClient:
    def __init__(self, server: PacsServer) -> None:
        self.server = server
        session = requests.Session()
        password = password_for(server)
        if server.user is not None:
            session.auth = (server.user, password or "")
        session.verify = server.ca_bundle if server.ca_bundle else server.verify_tls
        timeout = (min(server.timeout_s, 10.0), server.timeout_s)
        self._session = session
        self._client = DICOMwebClient(str(server.url), session=session, timeout=timeout)
        # dicomweb-client retries every failed request (a refused connection too) 5 times with waits doubling from
        # 2 s, 30 s in all: one retry after 1 s keeps a fault's answer within the stated timeout.
        self._client.set_http_retry_params(retry=True, max_attempts=2, wait_exponential_multiplier=500)

    # -- errors ---------------------------------------------------------------------------------------------------
    def _fail(self, exc: Exception, doing: str) -> NoReturn:
        where = f"server {self.server.name} ({self.server.address})"
        if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
            status = exc.response.status_code
            meaning = _STATUS_MEANING.get(status, f"the server answered HTTP {status}")
            error = PacsConnectionError if status in (401, 403) else PacsError
            raise error(f"{where}: {doing}: {meaning}") from exc
        if isinstance(exc, requests.exceptions.SSLError):
            raise PacsConnectionError(f"{where}: {doing}: the TLS certificate is not trusted ({exc}); give the "
                                      f"server's CA file with --ca-bundle") from exc
        if isinstance(exc, requests.exceptions.Timeout):
            raise PacsConnectionError(f"{where}: {doing}: no answer within {self.server.timeout_s:g} s") from exc
        if isinstance(exc, requests.exceptions.ConnectionError):
            raise PacsConnectionError(f"{where}: {doing}: cannot connect (is the server running, and is the URL "
                                      f"right?)") from exc
        raise PacsError(f"{where}: {doing}: {type(exc).__name__}: {exc}") from exc

    def _call(self, doing: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (requests.exceptions.RequestException, ValueError, OSError) as exc:
            self._fail(exc, doing)

    # -- the interface --------------------------------------------------------------------------------------------
    def echo(self) -> str:
        self._call("QIDO-RS query for one study", self._client.search_for_studies, limit=1)
        return f"QIDO-RS query answered by {self.server.url}"

    def find_studies(self, query: StudyQuery) -> list[StudyMatch]:
        found = self._call("QIDO-RS study query", self._client.search_for_studies, limit=query.limit,
                           fields=list(STUDY_FIELDS), search_filters=query.filters())
        return [study_match(_json_getter(item)) for item in found or []]

    def find_series(self, study_uid: str) -> list[SeriesMatch]:
        found = self._call("QIDO-RS series query", self._client.search_for_series, study_instance_uid=study_uid,
                           fields=list(SERIES_FIELDS))
        return [series_match(study_uid, _json_getter(item)) for item in found or []]

    def instance_uids(self, study_uid: str, series_uid: str) -> list[str]:
        found = self._call("QIDO-RS instance query", self._client.search_for_instances,
                           study_instance_uid=study_uid, series_instance_uid=series_uid,
                           fields=["SOPInstanceUID"], get_remaining=True)
        return [str(_json_getter(item)("SOPInstanceUID")) for item in found or []]

    def fetch(self, study_uid: str, series_uid: str, sop_uids: Sequence[str], sink: InstanceSink) -> Iterator[str]:
        for sop in sop_uids:
            dataset = self._call(f"WADO-RS retrieval of instance {sop}", self._client.retrieve_instance,
                                 study_uid, series_uid, sop, media_types=(("application/dicom", "*"),))
            sink(dataset)
            yield sop

    def store(self, datasets: Sequence[Dataset]) -> None:
        answer = self._call("STOW-RS", self._client.store_instances, list(datasets))
        failed = getattr(answer, "FailedSOPSequence", None) if answer is not None else None
        if failed:
            reasons = ", ".join(f"{item.get('ReferencedSOPInstanceUID', '?')} (reason {item.get('FailureReason')})"
                                for item in failed)
            raise PacsError(f"server {self.server.name}: STOW-RS refused {reasons}")

    def close(self) -> None:
        self._session.close()
