"""What the workspace opens: a study as it is; DICOM folders, NIfTI files and image folders become a study first.

An imported source goes to the study the user chose, or by default to a study of its own in the per-user data
folder, named after the source (the same source opened again finds its study, and the importer skips what is
already there). The demo is the bundled CT sample, imported once the same way.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from core.errors import StudyError
from core.progress import ProgressGenerator
from core.resources import sample_nifti
from core.review.preferences import AppDirs, app_dirs
from core.study.importer import ImportOptions, ImportReport, import_source
from core.study.layout import Study

DEMO_STUDY = "demo-study"


def default_study_for(source: str | Path, dirs: AppDirs | None = None) -> Path:
    """``<data>/studies/<source name>-<hash of its full path>``: one study per source, found again next time."""
    source = Path(source).resolve()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", source.name.replace(".nii.gz", "").replace(".nii", ""))[:40] or "source"
    digest = hashlib.sha256(str(source).encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return (dirs or app_dirs()).data / "studies" / f"{name.strip('.-') or 'source'}-{digest}"


def import_as_study(
    source: str | Path, target: str | Path | None = None, dirs: AppDirs | None = None
) -> ProgressGenerator[tuple[Path, ImportReport]]:
    """Import ``source`` into the study ``target`` (created when needed); axial series are reformatted to
    sagittal slabs. Returns the study folder and the import report. Raises StudyError when nothing could be
    imported and the study has no slices."""
    source = Path(source)
    if Study.is_study(source):
        raise StudyError("this is a study already: open it directly", source)
    study_root = Path(target) if target is not None else default_study_for(source, dirs)
    report = yield from import_source(source, study_root, ImportOptions(sagittal=True))
    if not Study.open(study_root).all_slices():
        reasons = "; ".join(f"{what}: {why}" for what, why in (report.skipped + report.ignored)[:3])
        raise StudyError(f"nothing could be imported{': ' + reasons if reasons else ''}", source)
    return study_root, report


def demo_study(dirs: AppDirs | None = None) -> ProgressGenerator[tuple[Path, ImportReport]]:
    """The bundled CT sample as a study (imported on first use)."""
    target = (dirs or app_dirs()).data / DEMO_STUDY
    return (yield from import_as_study(sample_nifti(), target, dirs))
