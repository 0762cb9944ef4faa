"""Exporting a study for labelme: windowed PNG slices with LabelMe JSON beside them.

``OUT/<case>/<slice>.png`` and ``OUT/<case>/<slice>.json``. Names are the study's own anonymous ids; the JSON holds
no patient tags. Every JSON points at its PNG, whose size equals ``imageWidth`` x ``imageHeight``.

A slice's stored PNG is copied as it is only when it is a regular file inside the study (:func:`core.paths.inside`,
through :class:`Study`) and a well-formed 8-bit PNG by its signature and header chunk; otherwise the slice is
rendered anew from its image, or skipped with the reason. So no file from outside the study reaches the export.

A slice that cannot be read or rendered is skipped with the reason; an export folder that cannot be written (a
read-only disk, no permission) ends the export with one :class:`FileWriteError` when nothing has been written yet,
rather than one failure per slice. :attr:`ExportReport.written` tells a partial export from a failed one.
An annotated slice whose image is gone from the study is named among the errors, not left out silently.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

from core.annotations.labelme_io import write_labelme
from core.errors import FileWriteError, StudyError, VertebraReviewError
from core.fileio import atomic_write_bytes
from core.imaging.png_io import png_bytes
from core.imaging.windowing import MIN_MAX, Window, apply_window, min_max_window, parse_window
from core.paths import is_id, is_inside
from core.progress import Progress, ProgressGenerator
from core.study.layout import Study


@dataclass
class ExportReport:
    images: int = 0
    annotations: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def written(self) -> bool:
        """Whether anything at all was exported."""
        return bool(self.images or self.annotations)


def check_export_source(study: Study, reader: str | None, model: str | None) -> None:
    """For ``vertebra-review export``: a mistyped reader or model would export the images without one annotation, so
    it is refused, naming those the study has. (The app exports its own reader, whose edits may be only in memory.)"""
    readers = study.readers()
    if reader is not None and reader not in readers:
        raise StudyError(f"the study has no reader {reader!r}; its readers are: {', '.join(readers) or 'none'}",
                         study.root)
    models = study.prediction_models()
    if model is not None and model not in models:
        raise StudyError(f"the study has no predictions of a model {model!r}; it has those of: "
                         f"{', '.join(models) or 'none'}", study.root)


def export_study(
    study_root: str | Path,
    out: str | Path,
    *,
    reader: str | None = None,
    model: str | None = None,
    window: str | None = None,
    embed_images: bool = False,
) -> ProgressGenerator[ExportReport]:
    """Export every slice, with the reader's (or the model's, or by default the consensus) annotations."""
    study = Study.open(study_root)
    out = Path(out).resolve()
    if is_inside(study.root, out):
        raise StudyError("export into a folder outside the study", out)
    parsed = _parsed_window(window)
    slices = study.all_slices()
    if not slices:
        raise StudyError("the study has no slices to export", study.root)
    _make_export_folder(out)
    report = ExportReport()
    for number, (case, slice_id) in enumerate(slices):
        yield Progress("export", number, len(slices), f"{case}/{slice_id}")
        try:
            _export_slice(study, out, case, slice_id, parsed, report, reader=reader, model=model,
                          embed_images=embed_images)
        except FileWriteError as exc:
            if not report.written:  # the export folder cannot be written: every slice would fail the same way
                raise FileWriteError(f"nothing was exported: {exc.message}", exc.path) from exc
            report.errors.append((f"{case}/{slice_id}", str(exc)))
        except VertebraReviewError as exc:
            report.errors.append((f"{case}/{slice_id}", str(exc)))
    for case, slice_id in _annotated_without_image(study, set(slices), reader=reader, model=model):
        report.errors.append((f"{case}/{slice_id}", "it is annotated, but its image is no longer in the study, so "
                                                    "neither was exported"))
    yield Progress("export", len(slices), len(slices), f"exported {report.images} images")
    return report


def _annotated_without_image(study: Study, slices: set[tuple[str, str]], *, reader: str | None,
                             model: str | None) -> list[tuple[str, str]]:
    """The slices the chosen annotations cover whose image is gone (deleted or moved by hand): they cannot be
    exported, and would otherwise be left out without a word. A case an import is still writing is not one."""
    folder = study.annotation_folder(reader=reader, model=model)
    if not folder.is_dir():
        return []
    cases = set(study.cases())
    found = []
    for case in sorted(p.name for p in folder.iterdir() if p.is_dir() and is_id(p.name)):
        if case not in cases and (study.root / "images" / case).is_dir():
            continue  # being imported: its images are not listed yet
        found += [(case, file.stem) for file in sorted((folder / case).iterdir())
                  if file.suffix == ".json" and is_id(file.stem) and (case, file.stem) not in slices]
    return found


def _parsed_window(window: str | None) -> Window | str | None:
    if window is None:
        return None
    try:
        return parse_window(window)
    except ValueError as exc:
        raise StudyError(str(exc)) from exc


def _make_export_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileWriteError(f"cannot create the export folder ({exc.strerror or exc}); nothing was exported",
                             out) from exc


def _export_slice(study: Study, out: Path, case: str, slice_id: str, window: Window | str | None,
                  report: ExportReport, *, reader: str | None, model: str | None, embed_images: bool) -> None:
    """Write the slice's PNG, then its annotation (when it has one) as LabelMe JSON beside it, counting each."""
    png = _png_for(study, case, slice_id, window)
    target = out / case / f"{slice_id}.png"
    atomic_write_bytes(target, png)
    report.images += 1
    annotation = study.load_annotation(case, slice_id, reader=reader, model=model)
    if annotation is None:
        return
    size = _png_size(png)
    if (annotation.image_width, annotation.image_height) != size:
        raise StudyError(
            f"annotation is for a {annotation.image_width}x{annotation.image_height} image, "
            f"the slice is {size[0]}x{size[1]}",
            study.annotation_path(case, slice_id, reader=reader, model=model),
        )
    data = base64.b64encode(png).decode("ascii") if embed_images else None
    write_labelme(annotation.with_changes(image_path=target.name, image_data=data), target.with_suffix(".json"))
    report.annotations += 1


def _png_for(study: Study, case: str, slice_id: str, window: Window | str | None) -> bytes:
    existing = study.labelme_image_path(case, slice_id)
    if window is None and existing.is_file() and existing.suffix.lower() == ".png":
        data = existing.read_bytes()
        if _is_png(data) and data.endswith(_PNG_END) and _png_bit_depth(data) == 8:  # labelme 6: no 16-bit PNGs
            return data  # otherwise rendered again from the slice, whose reader names a truncated file
    image = study.read_image(case, slice_id)
    if window is None:
        chosen = min_max_window(image.pixels) if image.hu else None
    elif window == MIN_MAX:
        chosen = min_max_window(image.pixels)
    elif isinstance(window, Window):
        chosen = window
    else:  # "dicom"
        chosen = image.windows[0] if image.windows else image.default_window()
    if chosen is None:
        if (image.bits or 8) <= 8:
            return png_bytes(image.pixels.astype("uint8"))
        chosen = min_max_window(image.pixels)
    return png_bytes(apply_window(image.pixels, chosen))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # the last chunk, with its CRC: a file cut short lacks it


def _is_png(data: bytes) -> bool:
    """A PNG by its signature and its first chunk, the 13-byte IHDR, with a non-zero size."""
    return (len(data) > 33 and data[:8] == _PNG_SIGNATURE and data[8:16] == b"\x00\x00\x00\rIHDR"
            and 0 not in _png_size(data))


def _png_bit_depth(png: bytes) -> int:
    return png[24] if len(png) > 24 else 0


def _png_size(png: bytes) -> tuple[int, int]:
    # The PNG IHDR chunk holds width and height as big-endian 32-bit integers at bytes 16-24.
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
