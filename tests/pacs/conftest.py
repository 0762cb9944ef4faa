"""The PACS tests' real DICOM server: Orthanc (Debian packages ``orthanc`` and ``orthanc-dicomweb``) on free loopback
ports in a temporary folder, loaded with the shared real CT series (as study "ct") and a copy of a few of its slices
labelled MR (study "mr", a non-CT modality). Skipped, with the reason, where Orthanc or its DICOMweb plugin is not
installed; every other test still runs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from orthanc_server import (  # this folder's helper, found through the path above
    AET,
    OrthancServer,
    dicomweb_plugin,
    free_port,
    orthanc_binary,
)

REPO = Path(__file__).resolve().parents[2]


def real_series_files() -> list[Path]:
    """The 20-slice axial CT series: from ``../shared/data/real`` when it is there, else the copy in resources."""
    candidates = [REPO.parent / "shared" / "data" / "real" / "ct_dicom_series",
                  Path("/work/shared/data/real/ct_dicom_series"), REPO / "resources" / "sample" / "ct_dicom_series"]
    folder = next(c for c in candidates if c.is_dir())
    return sorted(p for p in folder.iterdir() if p.name.startswith("CT."))


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    binary, plugin = orthanc_binary(), dicomweb_plugin()
    if binary is None:
        pytest.skip("Orthanc is not installed (Debian package 'orthanc'; .ci/run installs it where it can)")
    if plugin is None:
        pytest.skip("Orthanc's DICOMweb plugin is not installed (Debian package 'orthanc-dicomweb')")
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"), free_port(), free_port())
    server.start(binary, plugin)
    try:
        files = real_series_files()
        server.load_series(files, "ct")
        server.load_series(files[:3], "mr", modality="MR", patient_id="VR-TEST-0002", accession="ACC-MR")
        yield server
    finally:
        server.stop()


@pytest.fixture
def orthanc_aet() -> str:
    return AET
