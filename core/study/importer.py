"""Importing DICOM, NIfTI and PNG/JPEG (with LabelMe JSON beside the images) into a study, anonymised.

Each source examination becomes a case named ``case-NNNN``; its slices become ``s001``, ``s002``, … Nothing of the
source's names or patient tags reaches the study: DICOM is rewritten from a whitelist of tags, PNG and JPEG are
re-encoded as PNG (exact pixel values, no metadata). A fingerprint of each source (salted SHA-256) stops the same
examination being imported twice. ``key_file``, when given, receives the mapping back to the sources; it must lie
outside the study (checked on its resolved path, before anything is written), or the sources' names would be in it.

This module holds the entry point, :func:`import_source` (the checks of a request, one examination after another into
the report, the key file). The parts are :mod:`core.study.import_options` (options and report),
:mod:`core.study.import_sources` (finding the examinations), :mod:`core.study.import_slices` (reading their slices)
and :mod:`core.study.import_case` (writing one as a case).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from pathlib import Path

from core.errors import ImageReadError, StudyError, VertebraReviewError
from core.fileio import atomic_write_bytes
from core.imaging.windowing import parse_window
from core.paths import is_inside
from core.progress import Progress, ProgressGenerator
from core.study.import_case import AlreadyImported, import_unit
from core.study.import_options import ImportedCase, ImportOptions, ImportReport
from core.study.import_slices import NotForImport
from core.study.import_sources import ImportUnit, discover_units, segmented_unit
from core.study.layout import STUDY_FILE, STUDY_FOLDERS, Study, check_id
from core.study.lock import LOCK_FILE
from core.study.segmented import SegmentedCT, prepare_segmented

__all__ = ["ImportOptions", "ImportReport", "ImportedCase", "import_source"]

_log = logging.getLogger(__name__)


def import_source(
    source: str | Path, study_root: str | Path, options: ImportOptions | None = None
) -> ProgressGenerator[ImportReport]:
    """Import everything under ``source`` into the study at ``study_root`` (created when missing)."""
    options = options or ImportOptions()
    source = Path(source)
    _check_request(source, Path(study_root), options)
    segmented = prepare_segmented(source, options.labels, options.reader) if options.labels else None
    new_study, new_folder = not Study.is_study(study_root), not Path(study_root).exists()
    study = Study.open_or_create(study_root)
    window_spec = options.window
    if window_spec is not None:
        study.update_settings(lambda settings: setattr(settings, "png_window", window_spec))
    report = ImportReport()
    units = _units_to_import(source, options, segmented, report)
    key_rows: list[list[str]] = []
    for number, unit in enumerate(units, start=1):
        yield Progress("import", number - 1, len(units), f"importing {unit.label}")
        _import_one(study, unit, options, key_rows, report)
    if options.key_file is not None and key_rows:
        _write_key_file(options.key_file, key_rows)
    if new_study and not report.cases and _remove_unused_study(study, new_folder):
        report.notes.append(f"nothing was imported, so the new study {study.root} was not kept")
    yield Progress("import", len(units), len(units), f"imported {report.slice_count} slices")
    return report


def _check_request(source: Path, study_root: Path, options: ImportOptions) -> None:
    """Refuse a missing source, a source inside the study or holding it, a malformed reader id, a key file inside the
    study or a malformed window, before anything is read or written."""
    if not source.exists():
        raise ImageReadError("no such file or folder", source)
    if is_inside(study_root, source):
        raise StudyError(f"is inside the study {study_root}: its slices are in the study already (importing them "
                         f"again would make each one twice)", source)
    if is_inside(source, study_root):
        raise StudyError(f"holds the study {study_root}, whose own slices would be imported again: import a folder "
                         f"that does not hold the study, or put the study elsewhere", source)
    if source.is_dir() and (Study.is_study(source) or Study.looks_like_study(source)):
        raise StudyError("is a study (or laid out as one), not a source of images: open it as it is, or export it "
                         "(vertebra-review export) and import the export, whose slices each have one image", source)
    if options.reader is not None:
        check_id(options.reader, "reader")
    if options.key_file is not None:
        _check_key_file(Path(options.key_file), study_root)
    if options.window is not None:
        try:
            parse_window(options.window)
        except ValueError as exc:
            raise StudyError(str(exc)) from exc


def _remove_unused_study(study: Study, new_folder: bool) -> bool:
    """Take away the empty study this import made, so that a failed first import leaves no skeleton behind; keep
    it when anything has been put in it meanwhile (another import into the same new study). Whether it went."""
    folders = [study.root / name for name in STUDY_FOLDERS]
    try:
        if any(next(folder.iterdir(), None) is not None for folder in folders if folder.is_dir()):
            return False
        for folder in folders:
            if folder.is_dir():
                folder.rmdir()
        for name in (STUDY_FILE, LOCK_FILE):
            (study.root / name).unlink(missing_ok=True)
        if new_folder:
            study.root.rmdir()
    except OSError as exc:  # a read-only folder, a file put there meanwhile: the rest stays
        _log.debug("the unused study %s was not removed: %s", study.root, exc)
    return not Study.is_study(study.root)


def _units_to_import(source: Path, options: ImportOptions, segmented: SegmentedCT | None,
                     report: ImportReport) -> list[ImportUnit]:
    """The examinations under ``source``, or the one segmented CT (whose notes go to the report)."""
    if segmented is None:
        return discover_units(source, options, report)
    units = [segmented_unit(segmented, options)]
    report.notes.extend(segmented.notes)
    return units


def _import_one(study: Study, unit: ImportUnit, options: ImportOptions, key_rows: list[list[str]],
                report: ImportReport) -> None:
    """Import one examination, into the report as a new case or as the reason it is not one."""
    fingerprint = hashlib.sha256((study.settings.salt + unit.identity).encode()).hexdigest()
    try:
        imported = import_unit(study, unit, options, fingerprint, key_rows, report.notes)
    except AlreadyImported as exc:
        report.duplicates.append((unit.label, exc.case))
        return
    except NotForImport as exc:
        report.ignored.append((unit.label, str(exc)))
        return
    except VertebraReviewError as exc:
        report.skipped.append((exc.path or unit.label, exc.message))
        return
    except Exception as exc:  # noqa: BLE001 - the last guard: one examination never stops the others
        _log.debug("importing %s failed", unit.label, exc_info=True)
        report.skipped.append((unit.label, f"cannot be imported ({type(exc).__name__}: {exc})"))
        return
    if imported is not None:
        report.cases.append(imported)


def _check_key_file(path: Path, study_root: Path) -> None:
    """The key file names the sources of the cases: it is kept outside the study, so that sharing the study does not
    share them (a link or ``..`` into the study counts as inside)."""
    if is_inside(study_root, path):
        raise StudyError(f"the key file maps cases back to their sources and must be kept outside the study "
                         f"{study_root}: give a path outside it", path)
    if path.exists() and not path.is_file():
        raise StudyError("the key file is not a regular file", path)
    if path.is_file():
        _existing_key_rows(path)


KEY_HEADER = ["case", "slice", "source"]


def _existing_key_rows(path: Path) -> str:
    """The text of an existing key file, which new rows are added to; a file that is not one (another study's
    ``study.json``, an image, text that is not UTF-8) is refused before anything is imported, and never appended to."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise StudyError("the key file is there already but is not UTF-8 text, so not a key file; give a new "
                         "path or an earlier key file", path) from None
    except OSError as exc:
        raise StudyError(f"the key file cannot be read ({exc.strerror or exc})", path) from exc
    if not text:
        return text
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise StudyError(f"the key file is there already but is not a key CSV ({exc}); give a new path or an "
                         "earlier key file", path) from None
    if not rows or rows[0] != KEY_HEADER or any(len(row) != len(KEY_HEADER) for row in rows[1:] if row) \
            or not text.endswith("\n"):
        raise StudyError(f"the key file is there already but is not a key CSV (one made by an import starts "
                         f"with the header {','.join(KEY_HEADER)}); give a new path or an earlier key file", path)
    return text


def _write_key_file(path: Path, rows: list[list[str]]) -> None:
    existing = _existing_key_rows(path) if path.is_file() else ""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if not existing:
        writer.writerow(KEY_HEADER)
    writer.writerows(rows)
    atomic_write_bytes(path, (existing + buffer.getvalue()).encode("utf-8"))
