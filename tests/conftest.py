"""Fixtures shared by every test folder: the bundled real CT samples and pydicom's test files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample"
DICOM_SERIES = SAMPLE / "ct_dicom_series"
CUTOUT = SAMPLE / "ct_vertebra_cutout"


def pydicom_file(name: str) -> Path:
    """A file from pydicom's own test data or the pydicom-data package (never downloaded)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        raise FileNotFoundError(f"pydicom test file {name} is not installed")
    return Path(path)


@pytest.fixture(scope="session")
def dicom_series_dir() -> Path:
    return DICOM_SERIES


@pytest.fixture(scope="session")
def dicom_series_files() -> list[Path]:
    return sorted(p for p in DICOM_SERIES.iterdir() if p.name.startswith("CT."))


@pytest.fixture(scope="session")
def cutout_ct() -> Path:
    return CUTOUT / "sub-ct_label-22_ct.nii.gz"


@pytest.fixture(scope="session")
def cutout_vert_mask() -> Path:
    return CUTOUT / "sub-ct_seg-vert_label-22_msk.nii.gz"


@pytest.fixture(scope="session")
def cutout_subreg_mask() -> Path:
    return CUTOUT / "sub-ct_seg-subreg_label-22_msk.nii.gz"


@pytest.fixture(scope="session")
def series_labels() -> Path:
    return DICOM_SERIES / "labels_totalsegmentator.nii.gz"


@pytest.fixture(scope="session")
def ct_small() -> Path:
    return pydicom_file("CT_small.dcm")
