"""Exporting for labelme: windowed PNGs with LabelMe JSON (through the study exporter) and the findings CSV, from one
source of annotations (:class:`ExportSource`): a reader's reading, the consensus, or one model's predictions.

:func:`export_sources` says which sources a study holds and how many slices each would export;
:func:`prepare_export_folder` creates the folder (with its parents) or says in one error why it cannot be used.

A reader's edits that could not be saved in the study (a read-only folder) are passed as ``overrides`` and exported
from memory, so that export elsewhere is the way out of a read-only study.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.annotations.labelme_io import write_labelme
from core.annotations.model import SliceAnnotation
from core.errors import FileWriteError, StudyError, VertebraReviewError
from core.imaging.png_io import write_png
from core.imaging.windowing import Window, apply_window, min_max_window
from core.paths import is_inside
from core.progress import Progress, ProgressGenerator
from core.review.findings import write_findings_csv
from core.study.exporter import ExportReport, export_study
from core.study.layout import Study, check_id
from core.study.slice_key import SliceKey, slice_key

FINDINGS_FILE = "findings.csv"
READER, CONSENSUS, MODEL = "reader", "consensus", "model"


@dataclass(frozen=True)
class ExportSource:
    """Whose annotations an export holds: reader ``name``'s, the consensus, or model ``name``'s predictions."""

    kind: str
    name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in (READER, CONSENSUS, MODEL):
            raise ValueError(f"unknown export source {self.kind!r}")
        if (self.kind == CONSENSUS) != (self.name is None):
            raise ValueError(f"export source {self.kind!r} with name {self.name!r}")
        if self.name is not None:
            check_id(self.name, self.kind)

    @classmethod
    def reader(cls, reader: str) -> ExportSource:
        return cls(READER, reader)

    @classmethod
    def consensus(cls) -> ExportSource:
        return cls(CONSENSUS)

    @classmethod
    def model(cls, model_id: str) -> ExportSource:
        return cls(MODEL, model_id)

    @property
    def where(self) -> dict[str, str]:
        """The ``reader=`` or ``model=`` of :meth:`Study.load_annotation` (none: the consensus)."""
        return {self.kind: self.name} if self.name is not None else {}

    @property
    def who(self) -> str:
        """The findings CSV's reader column: the reader's id, ``consensus`` or ``model:<id>``."""
        return {READER: str(self.name), CONSENSUS: CONSENSUS}.get(self.kind, f"model:{self.name}")

    def describe(self) -> str:
        return {READER: f"reader {self.name}", CONSENSUS: "the consensus"}.get(self.kind, f"model {self.name}")


@dataclass(frozen=True)
class SourceChoice:
    """A source a study holds: ``slices`` is how many slices its export gets a JSON for; ``active`` marks the model
    in use."""

    source: ExportSource
    slices: int
    active: bool = False


def annotated_slices(study: Study, source: ExportSource, unsaved: Collection[SliceKey] = ()) -> int:
    """How many of the study's slices have an annotation file of ``source`` (or, for a reader, an unsaved edit)."""
    extra = set(unsaved) if source.kind == READER else set()
    return sum(key in extra or study.annotation_path(*key, **source.where).is_file() for key in study.all_slices())


def export_sources(study: Study, reader: str, *, active_model: str | None = None,
                   unsaved: Collection[SliceKey] = ()) -> list[SourceChoice]:
    """The reader's own reading, the consensus, the model in use, then every other model with predictions (those
    without any are left out); each with its number of slices, 0 where there is nothing to export."""
    choices = [SourceChoice(ExportSource.reader(reader), annotated_slices(study, ExportSource.reader(reader), unsaved)),
               SourceChoice(ExportSource.consensus(), annotated_slices(study, ExportSource.consensus()))]
    models = study.prediction_models()
    if active_model is not None:
        models = [active_model, *(m for m in models if m != active_model)]
    for model_id in models:
        count = annotated_slices(study, ExportSource.model(model_id))
        if count or model_id == active_model:
            choices.append(SourceChoice(ExportSource.model(model_id), count, active=model_id == active_model))
    return choices


def prepare_export_folder(out: str | Path, study: Study | None = None) -> Path:
    """The export folder, created with its parents when missing and checked to be writable (by writing a scratch
    file and removing it). Raises :class:`FileWriteError` naming the folder and why it cannot be used, or
    :class:`StudyError` for a folder inside the study."""
    out = Path(out).expanduser()
    if not out.is_absolute():
        raise FileWriteError("give the export folder as a full path", out)
    if study is not None and is_inside(study.root, out):
        raise StudyError("export into a folder outside the study", out)
    if out.exists() and not out.is_dir():
        raise FileWriteError("this is a file, not a folder: choose a folder for the export", out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileWriteError(f"cannot create the export folder ({exc.strerror or exc}); choose another folder",
                             out) from exc
    try:
        handle, scratch = tempfile.mkstemp(prefix=".vertebra-review-", suffix=".tmp", dir=out)
        os.close(handle)
        os.unlink(scratch)
    except OSError as exc:
        raise FileWriteError(f"cannot write in the export folder ({exc.strerror or exc}); choose another folder",
                             out) from exc
    return out


def export_review(
    study: Study,
    out: str | Path,
    source: ExportSource,
    *,
    overrides: Mapping[SliceKey, SliceAnnotation] | None = None,
    window: str | None = None,
) -> ProgressGenerator[ExportReport]:
    """``OUT/<case>/<slice>.png`` + ``.json`` for labelme, and ``OUT/findings.csv``, from ``source``'s files. For a
    reader, ``overrides`` (their unsaved edits) take the place of their files; other sources have none."""
    if overrides and source.kind != READER:
        raise ValueError("unsaved edits are a reader's: export them with the reader's source")
    out = prepare_export_folder(Path(out).absolute(), study)
    overrides = dict(overrides or {})
    report = yield from export_study(study.root, out, window=window, **source.where)
    for key, annotation in overrides.items():
        case, slice_id = key
        png = out / case / f"{slice_id}.png"
        if not png.is_file():
            continue  # its image could not be exported; the report says why
        try:
            write_labelme(annotation.with_changes(image_path=png.name, image_data=None), png.with_suffix(".json"))
        except VertebraReviewError as exc:
            report.errors.append((f"{slice_key(key).text}", str(exc)))
            continue
        if not study.annotation_path(*key, **source.where).is_file():
            report.annotations += 1
    yield Progress("export", 1, 1, "writing the findings table")
    items = []
    for key in study.all_slices():
        annotation = overrides.get(key)
        if annotation is None:
            try:
                annotation = study.load_annotation(*key, **source.where)
            except VertebraReviewError:
                continue  # already listed by the exporter
        if annotation is not None:
            items.append((key, annotation))
    write_findings_csv(out / FINDINGS_FILE, items, who=source.who)
    return report


def export_slice(study: Study, key: SliceKey, annotation: SliceAnnotation | None, out: str | Path,
                 window: Window | None = None) -> Path:
    """One slice for labelme: ``OUT/<case>/<slice>.png`` through ``window`` (default: min-max, as the paper) and
    its JSON (``annotation``, or an empty one). Returns the JSON's path."""
    image = study.read_image(*key)
    case, slice_id = key
    png = Path(out) / case / f"{slice_id}.png"
    write_png(png, apply_window(image.pixels, window or min_max_window(image.pixels)))
    annotation = annotation or SliceAnnotation(image.width, image.height)
    return write_labelme(annotation.with_changes(image_path=png.name, image_data=None), png.with_suffix(".json"))
