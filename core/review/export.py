"""Exporting a reader's work: windowed PNGs with LabelMe JSON (through the study exporter) and the findings CSV.

Edits that could not be saved in the study (a read-only folder) are passed as ``overrides`` and exported from
memory, so that export elsewhere is the way out of a read-only study.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from core.annotations.labelme_io import write_labelme
from core.annotations.model import SliceAnnotation
from core.errors import VertebraReviewError
from core.imaging.png_io import write_png
from core.imaging.windowing import Window, apply_window, min_max_window
from core.progress import Progress, ProgressGenerator
from core.review.findings import write_findings_csv
from core.review.summary import SliceKey
from core.study.exporter import ExportReport, export_study
from core.study.layout import Study

FINDINGS_FILE = "findings.csv"


def export_review(
    study: Study,
    out: str | Path,
    *,
    reader: str,
    overrides: Mapping[SliceKey, SliceAnnotation] | None = None,
    window: str | None = None,
) -> ProgressGenerator[ExportReport]:
    """``OUT/<case>/<slice>.png`` + ``.json`` for labelme, and ``OUT/findings.csv``, from the reader's files with
    ``overrides`` (unsaved edits) taking their place."""
    out = Path(out)
    overrides = dict(overrides or {})
    report = yield from export_study(study.root, out, reader=reader, window=window)
    for key, annotation in overrides.items():
        png = out / key[0] / f"{key[1]}.png"
        if not png.is_file():
            continue  # its image could not be exported; the report says why
        try:
            write_labelme(annotation.with_changes(image_path=png.name, image_data=None), png.with_suffix(".json"))
        except VertebraReviewError as exc:
            report.errors.append((f"{key[0]}/{key[1]}", str(exc)))
            continue
        if not (study.reader_path(reader, *key)).is_file():
            report.annotations += 1
    yield Progress("export", 1, 1, "writing the findings table")
    items = []
    for key in study.all_slices():
        annotation = overrides.get(key)
        if annotation is None:
            try:
                annotation = study.load_annotation(*key, reader=reader)
            except VertebraReviewError:
                continue  # already listed by the exporter
        if annotation is not None:
            items.append((key, annotation))
    write_findings_csv(out / FINDINGS_FILE, items)
    return report


def export_slice(study: Study, key: SliceKey, annotation: SliceAnnotation | None, out: str | Path,
                 window: Window | None = None) -> Path:
    """One slice for labelme: ``OUT/<case>/<slice>.png`` through ``window`` (default: min-max, as the paper) and
    its JSON (``annotation``, or an empty one). Returns the JSON's path."""
    image = study.read_image(*key)
    png = Path(out) / key[0] / f"{key[1]}.png"
    write_png(png, apply_window(image.pixels, window or min_max_window(image.pixels)))
    annotation = annotation or SliceAnnotation(image.width, image.height)
    return write_labelme(annotation.with_changes(image_path=png.name, image_data=None), png.with_suffix(".json"))
