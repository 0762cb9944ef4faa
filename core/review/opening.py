"""What the workspace opens: a study as it is; DICOM folders, NIfTI files and image folders become a study first.

An imported source goes to the study the user chose, or by default to a study of its own in the per-user data
folder, named after the source (the same source opened again finds its study, and the importer skips what is
already there). The demo is the bundled demo study (``resources/demo``, with its demo models) when the app has one,
reviewed in a copy in the per-user data folder so that the bundle is never written; without it, the bundled CT
sample is imported once the same way.

LabelMe JSON in a source belongs to a reader: :func:`labelme_in_source` takes a quick look first, so that the app
can ask whose annotations they are before importing them under that reader.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import StudyError, VertebraReviewError
from core.paths import is_id
from core.progress import Progress, ProgressGenerator
from core.resources import resources_dir, sample_nifti
from core.review.autosave import Deliver
from core.review.journal import RecoveryJournal
from core.review.models import ModelLink, peek_active_model
from core.review.preferences import AppDirs, app_dirs
from core.review.session import ReviewSession
from core.review.summary import SliceSummary, quick_status
from core.study.layout import STUDY_FILE, Study, StudySettings
from core.study.slice_key import SliceKey

if TYPE_CHECKING:
    from core.study.importer import ImportReport

DEMO_STUDY = "demo-study"
DEMO_SAMPLE_STUDY = "demo-sample-study"
BUNDLED_DEMO = "demo"


def default_study_for(source: str | Path, dirs: AppDirs | None = None) -> Path:
    """``<data>/studies/<source name>-<hash of its full path>``: one study per source, found again next time."""
    source = Path(source).resolve()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", source.name.replace(".nii.gz", "").replace(".nii", ""))[:40] or "source"
    digest = hashlib.sha256(str(source).encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return (dirs or app_dirs()).data / "studies" / f"{name.strip('.-') or 'source'}-{digest}"


#: How much of a JSON file the quick look reads, at its start and at its end (``reader`` comes after ``imageData``).
_LOOK_BYTES = 64 * 1024
#: How many JSON files the quick look reads at most.
_LOOK_FILES = 500
_READER_KEY = re.compile(rb'"reader"\s*:\s*"([^"\\]{1,64})"')


@dataclass
class LabelmeInSource:
    """The LabelMe JSON files of an import source, from a quick look (their start and end, not a parse)."""

    files: int  # LabelMe files looked at
    named: dict[str, int]  # reader ids the files name in their ``reader`` key, with how many files; most first
    unnamed: int  # files that name no reader
    more: bool  # the source has more JSON files than were looked at
    study: Path  # the study it would be imported into
    blinding: bool  # whether that study blinds its readers (a new study does)


def _json_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source] if source.suffix.lower() == ".json" else []
    return sorted(p for p in source.rglob("*") if p.suffix.lower() == ".json" and not p.name.startswith(".")
                  and p.is_file())


def _look(path: Path) -> bytes:
    """The start and the end of the file (all of it when small); empty when it cannot be read."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_LOOK_BYTES)
            if len(head) < _LOOK_BYTES:
                return head
            handle.seek(max(_LOOK_BYTES, path.stat().st_size - _LOOK_BYTES))
            return head + handle.read(_LOOK_BYTES)
    except OSError:
        return b""


def labelme_in_source(
    source: str | Path, target: str | Path | None = None, dirs: AppDirs | None = None
) -> LabelmeInSource | None:
    """The LabelMe JSON that importing ``source`` (into ``target``, by default its own study) would bring in, or
    None when it has none (or is a study, which is opened as it is)."""
    source = Path(source)
    if not source.exists() or Study.is_study(source):
        return None
    candidates = _json_files(source)
    named: Counter[str] = Counter()
    files = unnamed = 0
    for path in candidates[:_LOOK_FILES]:
        text = _look(path)
        if b'"shapes"' not in text:
            continue
        files += 1
        reader = _READER_KEY.search(text)
        name = reader.group(1).decode("utf-8", "replace") if reader else ""
        if is_id(name):
            named[name] += 1
        else:
            unnamed += 1
    if not files:
        return None
    study = Path(target) if target is not None else default_study_for(source, dirs)
    return LabelmeInSource(files, dict(named.most_common()), unnamed, len(candidates) > _LOOK_FILES, study,
                           _blinds(study))


def _blinds(study: Path) -> bool:
    if Study.is_study(study):
        try:
            return bool(Study.open(study).settings.blinding)
        except VertebraReviewError:
            pass
    return StudySettings(name=study.name).blinding


def import_as_study(
    source: str | Path, target: str | Path | None = None, dirs: AppDirs | None = None, *, reader: str | None = None
) -> ProgressGenerator[tuple[Path, ImportReport]]:
    """Import ``source`` into the study ``target`` (created when needed); axial series are reformatted to
    sagittal slabs. LabelMe annotations go to ``reader`` (None: the reader each file names, else ``imported``).
    Returns the study folder and the import report. Raises StudyError when nothing could be imported and the
    study has no slices."""
    source = Path(source)
    if Study.is_study(source):
        raise StudyError("this is a study already: open it directly", source)
    if Study.looks_like_study(source):
        raise StudyError(f"this folder is laid out as a study but its {STUDY_FILE} is missing (or not a file): restore "
                         f"it from a backup or a colleague's copy; its images are not imported as a new study",
                         source)
    study_root = Path(target) if target is not None else default_study_for(source, dirs)
    from core.study.importer import ImportOptions, import_source  # DICOM/NIfTI readers load when a scan is opened

    report = yield from import_source(source, study_root, ImportOptions(reader=reader, sagittal=True))
    if not Study.is_study(study_root) or not Study.open(study_root).all_slices():  # a new study is not kept
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
    """Model weights are shared by a hard link (large, and never written in place); every other file is copied, so
    that nothing written in place on either side (an updated bundle, a hand edit) reaches the other."""
    if source.endswith(".safetensors"):
        try:
            os.link(source, target)
            return target
        except OSError:
            pass
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
                        ignore=shutil.ignore_patterns(".lock", ".locks", ".*.tmp"))
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
    path: str | Path, reader: str, *, import_into: str | Path | None = None, dirs: AppDirs | None = None,
    import_reader: str | None = None, deliver: Deliver | None = None,
) -> ProgressGenerator[OpenedReview]:
    """Open the study at ``path`` for ``reader``, importing ``path`` first when it is not a study (into
    ``import_into`` when given; its LabelMe annotations under ``import_reader``, see :func:`import_as_study`). A
    study with ``import_into`` is opened in a working copy there. The first slice's image is read too, so that the
    view can show it at once. ``deliver`` (the app's) puts the session's saves on a background writer that reports
    back through it (:mod:`core.review.autosave`)."""
    imported = None
    root = Path(path)
    if Study.is_study(root) and import_into is not None:
        root = yield from working_copy(root, import_into)
    elif not Study.is_study(root):
        yield Progress("import", 0, 1, f"importing {root.name} into a study")
        root, imported = yield from import_as_study(root, import_into, dirs, reader=import_reader)
    study = Study.open(root)
    session = ReviewSession(study, reader, journal=RecoveryJournal.for_study(root, reader, dirs), deliver=deliver)
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
