"""Reading the slices of one source examination, by kind: PNG/JPEG with LabelMe JSON beside them, LabelMe JSON with
the image inside it, DICOM series (sagittal or single slices as they are, other stacks reformatted on request) and
NIfTI volumes (reformatted). Each slice comes as a :class:`SourceSlice`: its image, its annotation when it has one,
and where it came from (for the key file)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.annotations.labelme_io import read_labelme
from core.annotations.model import SliceAnnotation
from core.errors import AnnotationFileError, ImageReadError
from core.imaging.dicom_series import DicomSeries
from core.imaging.image import SliceImage, Volume
from core.imaging.nifti import read_nifti
from core.imaging.raster import RASTER_SUFFIXES, decode_raster, read_raster
from core.imaging.reformat import SagittalReformat
from core.study.import_options import ImportOptions, ImportReport


class NotForImport(Exception):
    """A readable file that is not an image to import (a segmentation label map)."""


@dataclass
class SourceSlice:
    image: SliceImage
    annotation: SliceAnnotation | None = None
    origin: str = ""


def raster_slices(images: list[Path], report: ImportReport) -> Iterator[SourceSlice]:
    for path in images:
        try:
            image = read_raster(path)
        except ImageReadError as exc:
            report.skipped.append((str(path), exc.message))
            continue
        yield SourceSlice(image, _beside_json(path, image, report), str(path))


def embedded_slices(json_path: Path, report: ImportReport) -> Iterator[SourceSlice]:
    annotation = read_labelme(json_path)
    if annotation.image_data is None:
        report.skipped.append((str(json_path), "LabelMe JSON without its image (no image beside it, imageData null)"))
        return
    image = decode_raster(base64.b64decode(annotation.image_data), json_path, json_path.name)
    yield SourceSlice(image, annotation, str(json_path))


def _json_beside(image_path: Path) -> Path | None:
    """``x.json`` beside ``x.png`` or ``x.dcm``; ``name.json`` beside extension-less DICOM files."""
    candidates = [image_path.parent / f"{image_path.name}.json"]
    if image_path.suffix.lower() in (*RASTER_SUFFIXES, ".dcm"):
        candidates.insert(0, image_path.with_suffix(".json"))
    return next((c for c in candidates if c.is_file()), None)


def _beside_json(image_path: Path, image: SliceImage, report: ImportReport) -> SliceAnnotation | None:
    json_path = _json_beside(image_path)
    if json_path is None:
        return None
    try:
        return read_labelme(json_path, image_size=(image.width, image.height))
    except AnnotationFileError as exc:
        report.skipped.append((str(json_path), f"{exc.message} (the image was imported without it)"))
        return None


def dicom_slices(
    series_list: list[DicomSeries], options: ImportOptions, report: ImportReport
) -> Iterator[SourceSlice]:
    for series in series_list:
        stacked = len(series.frames) > 1
        if series.orientation == "sagittal" or not stacked:
            for image in series.load_slices():
                annotation = _beside_json(image.source, image, report) if image.source else None
                yield SourceSlice(image, annotation, str(image.source))
        elif options.sagittal:
            yield from _volume_slices(series.load_volume(), options, str(series.first.path.parent))
        else:
            report.skipped.append(
                (
                    str(series.first.path.parent),
                    f"{series.orientation} series of {len(series.frames)} slices: add --sagittal to reformat it",
                )
            )


def nifti_slices(path: Path, options: ImportOptions) -> Iterator[SourceSlice]:
    volume = read_nifti(path)
    if volume.is_label_map:
        raise NotForImport("a label map (segmentation), not a CT volume")
    yield from _volume_slices(volume, options, str(path))


def _volume_slices(volume: Volume, options: ImportOptions, origin: str) -> Iterator[SourceSlice]:
    reformat = SagittalReformat(volume)
    for index in reformat.default_indices(options.count, options.step_mm):
        image = reformat.slice(index, options.thickness_mm)
        yield SourceSlice(image, None, f"{origin} ({image.label})")
