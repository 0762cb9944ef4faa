"""What the workspace opens: a study as it is; DICOM folders, NIfTI files and image folders become a study first.

An imported source goes to the study the user chose, or by default to a study of its own in the per-user data
folder, named after the source (the same source opened again finds its study, and the importer skips what is
already there). The demo is the bundled demo study (``resources/demo``, with its demo models) when the app has one,
reviewed in a copy in the per-user data folder so that the bundle is never written; without it, the bundled CT
sample is imported once the same way.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import StudyError, VertebraReviewError
from core.progress import Progress, ProgressGenerator
from core.resources import resources_dir, sample_nifti
from core.review.journal import RecoveryJournal
from core.review.models import ModelLink, peek_active_model
from core.review.preferences import AppDirs, app_dirs
from core.review.session import ReviewSession
from core.review.summary import SliceKey, SliceSummary, quick_status
from core.study.importer import ImportOptions, ImportReport, import_source
from core.study.layout import Study

DEMO_STUDY = "demo-study"
DEMO_SAMPLE_STUDY = "demo-sample-study"
BUNDLED_DEMO = "demo"


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


def demo_source(dirs: AppDirs | None = None) -> tuple[Path, Path]:
    """What ``--demo`` opens, and where: the bundled demo study, worked on in a copy; else the bundled CT sample,
    imported into a study of its own."""
    data = (dirs or app_dirs()).data
    bundled = resources_dir() / BUNDLED_DEMO
    if Study.is_study(bundled):
        return bundled, data / DEMO_STUDY
    return sample_nifti(), data / DEMO_SAMPLE_STUDY


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)  # model weights are never written in place, so sharing them is safe
    except OSError:
        shutil.copy2(source, target)
    return target


def working_copy(study_root: str | Path, target: str | Path) -> ProgressGenerator[Path]:
    """A copy of the study at ``target`` (made once; an existing copy is reused). Written beside ``target`` and
    renamed, so that a half-made copy is never taken for a study."""
    target = Path(target)
    if Study.is_study(target):
        return target
    yield Progress("copy", 0, 1, f"copying {Path(study_root).name} to {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(study_root, staging / "study", copy_function=_link_or_copy,
                        ignore=shutil.ignore_patterns(".locks", ".*.tmp"))
        os.replace(staging / "study", target)
    except OSError as exc:
        raise StudyError(f"cannot make a working copy here: {exc.strerror or exc}", target) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    yield Progress("copy", 1, 1, "copied")
    return target


@dataclass
class OpenedReview:
    """A study ready to review: the session, the model it shows, first statuses (from file existence; the full
    summaries come from :func:`core.review.summary.scan_study` in the background), and the import report."""

    session: ReviewSession
    model: ModelLink
    summaries: dict[SliceKey, SliceSummary]
    imported: ImportReport | None = None


def open_review(
    path: str | Path, reader: str, *, import_into: str | Path | None = None, dirs: AppDirs | None = None
) -> ProgressGenerator[OpenedReview]:
    """Open the study at ``path`` for ``reader``, importing ``path`` first when it is not a study (into
    ``import_into`` when given). A study with ``import_into`` is opened in a working copy there. The first slice's
    image is read too, so that the view can show it at once."""
    imported = None
    root = Path(path)
    if Study.is_study(root) and import_into is not None:
        root = yield from working_copy(root, import_into)
    elif not Study.is_study(root):
        yield Progress("import", 0, 1, f"importing {root.name} into a study")
        root, imported = yield from import_as_study(root, import_into, dirs)
    study = Study.open(root)
    session = ReviewSession(study, reader, journal=RecoveryJournal.for_study(root, reader, dirs))
    model = peek_active_model(study)
    session.set_model(model.model_id)
    summaries = {key: SliceSummary(quick_status(study, key, reader, model.model_id)) for key in session.keys}
    if session.keys:
        try:
            session.image(session.keys[0])
        except VertebraReviewError:
            pass  # the view marks that slice when it shows it
    yield Progress("open", 1, 1, f"opened {study.settings.name}")
    return OpenedReview(session, model, summaries, imported)
