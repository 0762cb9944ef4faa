"""``vertebra-review inspect``: what a path holds, as one JSON-ready dict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydicom.uid import UID

from core.annotations.labelme_io import check_labelme_size, read_labelme
from core.annotations.labelme_paths import labelme_image
from core.annotations.model import sort_diseases
from core.errors import AnnotationFileError, ImageReadError
from core.imaging.dicom import read_dicom
from core.imaging.dicom_series import DicomSeries, scan_dicom
from core.imaging.nifti import is_nifti, read_nifti
from core.imaging.raster import is_raster, raster_size, read_raster
from core.imaging.reformat import SagittalSize
from core.study.layout import Study


def inspect_path(path: str | Path) -> dict[str, Any]:
    """Describe an image, DICOM file or folder, NIfTI volume, LabelMe JSON file or study."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError("no such file or folder", path)
    if path.is_dir():
        return _study(path) if Study.is_study(path) else _dicom_folder(path)
    if path.suffix.lower() == ".json":
        return _annotation(path)
    if is_raster(path):
        return _raster(path)
    if is_nifti(path):
        return _nifti(path)
    return _dicom_file(path)


def _floats(values: Any, digits: int = 4) -> list[float] | None:
    return None if values is None else [round(float(v), digits) for v in values]


def _sagittal(size: SagittalSize) -> dict[str, Any]:
    return {
        "width": size.columns,
        "height": size.rows,
        "planes": size.planes,
        "pixel_mm": round(size.pixel_mm, 4),
        "width_mm": round(size.width_mm, 2),
        "height_mm": round(size.height_mm, 2),
        "superior": "top",
        "anterior": "left",
    }


# -- images -----------------------------------------------------------------------------------------------------------
def _raster(path: Path) -> dict[str, Any]:
    image = read_raster(path)
    kind = "png" if path.suffix.lower() == ".png" else "jpeg"
    return {
        "kind": kind,
        "path": str(path),
        "width": image.width,
        "height": image.height,
        "spacing_mm": None,
        "slices": 1,
        "bits": image.bits,
        "hu": False,
    }


def _nifti(path: Path) -> dict[str, Any]:
    volume = read_nifti(path)
    shape = volume.shape
    sagittal = SagittalSize.checked(volume.affine, shape, path)  # a NIfTI is only ever shown reformatted
    return {
        "kind": "nifti",
        "path": str(path),
        "width": shape[0],
        "height": shape[1],
        "slices": shape[2],
        "spacing_mm": _floats(volume.spacing_mm),
        "orientation": volume.axis_codes,
        "hu": volume.hu,
        "label_map": volume.is_label_map,
        "sagittal": _sagittal(sagittal),
    }


def _dicom_file(path: Path) -> dict[str, Any]:
    slices = read_dicom(path)  # decodes the pixels, so a file that cannot be shown fails here
    first = slices[0]
    scan = scan_dicom(path)
    series = scan.series[0]
    header = series.first
    info: dict[str, Any] = {
        "kind": "dicom",
        "path": str(path),
        "width": first.width,
        "height": first.height,
        "spacing_mm": _floats(first.spacing_mm),
        "slices": len(slices),
        "modality": header.modality,
        "transfer_syntax": _syntax_name(header.transfer_syntax),
        "orientation": first.orientation,
        "hu": first.hu,
        "hu_range": [round(float(first.pixels.min()), 1), round(float(first.pixels.max()), 1)],
        "windows": [{"center": w.center, "width": w.width, "name": w.name} for w in first.windows],
    }
    if len(slices) > 1 and series.orientation != "sagittal":
        info["sagittal"] = _series_sagittal(series)
    return info


def _syntax_name(uid: str) -> str:
    return UID(uid).name if uid else "unknown"


def _series_sagittal(series: DicomSeries) -> dict[str, Any] | str:
    header = series.first
    try:
        shape = (len(series.frames), header.rows, header.columns)
        size = SagittalSize.checked(series.affine(), shape, header.path.parent)
    except Exception as exc:  # noqa: BLE001 - geometry problems are reported, not fatal to inspect: slices can be shown
        return f"cannot reformat: {exc}"
    return _sagittal(size)


def _series_info(series: DicomSeries) -> dict[str, Any]:
    header = series.first
    spacing = series.slice_spacing()
    info: dict[str, Any] = {
        "kind": "dicom-series",
        "path": str(header.path.parent),
        "width": header.columns,
        "height": header.rows,
        "spacing_mm": _floats(header.pixel_spacing),
        "slices": len(series.frames),
        "slice_spacing_mm": None if spacing is None else round(abs(spacing), 4),
        "modality": header.modality,
        "orientation": series.orientation,
        "description": series.description,
        "transfer_syntax": _syntax_name(header.transfer_syntax),
    }
    if len(series.frames) > 1 and series.orientation != "sagittal":
        info["sagittal"] = _series_sagittal(series)
    return info


def _dicom_folder(path: Path) -> dict[str, Any]:
    scan = scan_dicom(path)
    skipped = [{"path": str(p), "reason": why} for p, why in scan.skipped]
    if not scan.series:
        rasters = sorted(p for p in path.iterdir() if is_raster(p))
        if rasters:
            return {"kind": "image-folder", "path": str(path), "slices": len(rasters), "skipped": skipped}
        raise ImageReadError("no DICOM, PNG or JPEG images found", path)
    if len(scan.series) == 1:
        info = _series_info(scan.series[0])
        info["path"] = str(path)
        info["skipped"] = skipped
        return info
    return {
        "kind": "dicom-folder",
        "path": str(path),
        "series": [_series_info(s) for s in scan.series],
        "skipped": skipped,
    }


def _study(path: Path) -> dict[str, Any]:
    study = Study.open(path)
    cases = study.cases()
    return {
        "kind": "study",
        "path": str(path),
        "name": study.settings.name,
        "cases": len(cases),
        "slices": sum(len(study.slices(c)) for c in cases),
        "readers": study.readers(),
    }


# -- annotations ------------------------------------------------------------------------------------------------------
def _annotation(path: Path) -> dict[str, Any]:
    check_labelme_size(path)  # before the JSON is parsed to find the image beside it
    skipped: list[dict[str, str]] = []
    image_size = _image_size_beside(path, skipped)
    annotation = read_labelme(path, image_size=image_size)
    vertebrae = []
    for vertebra in annotation.vertebrae:
        item: dict[str, Any] = {
            "box": [round(v, 3) for v in vertebra.box.as_list()],
            "diseases": [d.value for d in sort_diseases(vertebra.diseases)],
            "level": vertebra.level,
            "source": vertebra.source or None,
        }
        if vertebra.score is not None:
            item["score"] = vertebra.score
        if vertebra.probabilities:
            item["probabilities"] = dict(vertebra.probabilities)
        vertebrae.append(item)
    return {
        "kind": "annotation",
        "path": str(path),
        "width": annotation.image_width,
        "height": annotation.image_height,
        "image_path": annotation.image_path,
        "image_checked": image_size is not None,
        "reader": annotation.reader,
        "model": annotation.model,
        "reviewed": annotation.reviewed,
        "vertebrae": vertebrae,
        "other_shapes": len(annotation.other_shapes),
        "skipped": skipped,
    }


def _image_size_beside(json_path: Path, skipped: list[dict[str, str]]) -> tuple[int, int] | None:
    """The size of the PNG or JPEG the JSON points to, when it is there (read from the header only). A name that
    leads outside the JSON's folder is not followed: it is listed in ``skipped`` with the reason."""
    try:
        image_path = json.loads(json_path.read_text(encoding="utf-8-sig")).get("imagePath")
    except Exception:  # noqa: BLE001 - the real reader reports the problem
        return None
    if not isinstance(image_path, str) or not image_path:
        return None
    try:
        candidate = labelme_image(json_path, image_path)
    except AnnotationFileError as exc:
        skipped.append({"path": str(json_path), "reason": f"{exc.message}; the image size was not checked"})
        return None
    if candidate is None or not is_raster(candidate):
        return None
    try:
        return raster_size(candidate, candidate)
    except ImageReadError as exc:
        skipped.append({"path": str(candidate), "reason": f"{exc.message}; the annotation's size was not checked"})
        return None
