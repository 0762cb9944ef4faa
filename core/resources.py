"""Where the bundled resources (icons, default settings, samples, the demo study) are."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    """``$VERTEBRA_REVIEW_RESOURCES``, the packaged app's data folder, or ``resources/`` of the source tree."""
    override = os.environ.get("VERTEBRA_REVIEW_RESOURCES")
    if override:
        return Path(override)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def sample_dicom_series() -> Path:
    return resources_dir() / "sample" / "ct_dicom_series"


def sample_nifti() -> Path:
    return resources_dir() / "sample" / "ct_vertebra_cutout" / "sub-ct_label-22_ct.nii.gz"


def sample_label_maps() -> list[tuple[Path, str]]:
    """The bundled vertebra label maps with their numbering: the DICOM series' T11/T12 (TotalSegmentator) and the
    L3 cut-out's vertebrae (VerSe)."""
    sample = resources_dir() / "sample"
    return [(sample / "ct_dicom_series" / "labels_totalsegmentator.nii.gz", "totalsegmentator"),
            (sample / "ct_vertebra_cutout" / "sub-ct_seg-vert_label-22_msk.nii.gz", "verse")]
