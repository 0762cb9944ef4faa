"""The test server itself: Orthanc answers, holds the loaded studies, and checks credentials."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def test_orthanc_holds_the_loaded_series(orthanc):
    ct = orthanc.studies["ct"]
    found = orthanc.get_json("/studies?expand")
    uids = {study["MainDicomTags"]["StudyInstanceUID"] for study in found}
    assert ct.study_uid in uids and orthanc.studies["mr"].study_uid in uids
    assert len(ct.sop_uids) == 20


def test_orthanc_refuses_a_request_without_credentials(orthanc):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(orthanc.base + "/system", timeout=10)
    assert caught.value.code == 401
