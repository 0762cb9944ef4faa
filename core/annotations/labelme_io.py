"""LabelMe JSON: reading every variant readers produce, and writing files that labelme 5.0.1 and 6.x open.

What we write: one ``rectangle`` per vertebra with two points, ``label`` = disease codes joined by ``+`` or
``NORMAL``, one boolean flag per disease, ``group_id``, ``description``, and the extra shape keys ``score``,
``probabilities``, ``level`` and ``source``, and ``genant`` (the Genant fracture grade 0-3, only when the vertebra has
one); extra top-level keys ``reader``, ``model`` and ``reviewed``, and ``thresholds`` (disease code → the probability
from which the model called it) in a model's result.

What we also read: the paper's style (a ``vertebra`` box plus disease-named boxes repeating the same vertebra, merged
when IoU ≥ 0.9), polygons (their bounding box), labels in any case with synonyms, embedded or null ``imageData``,
Windows paths, and unknown keys (kept and written back). Anything else is refused with an
:class:`~core.errors.AnnotationFileError` that names the file and the problem.

This module is the file layer (the bytes, the top-level object, the image size). A shape is read in two stages, as
labelme reads one: :mod:`core.annotations.labelme_shape` checks the JSON object and keeps its unknown keys, and
:mod:`core.annotations.labelme_vertebra` turns that into a vertebra (and a vertebra back into a shape).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path, PureWindowsPath
from typing import Any

from core.annotations.labelme_checks import brief, checked_flags, is_int, type_name
from core.annotations.labelme_shape import EDGE_TOLERANCE_PX, read_shape
from core.annotations.labelme_vertebra import (
    MERGE_IOU,
    class_numbers,
    merge_duplicates,
    shape_dict,
    vertebra_from_shape,
)
from core.annotations.model import SliceAnnotation, Vertebra
from core.errors import AnnotationFileError, ImageReadError, ImageTooLargeError
from core.fileio import atomic_write_json, read_failure
from core.imaging import limits
from core.imaging.raster import raster_size

__all__ = [
    "EDGE_TOLERANCE_PX",
    "LABELME_VERSION",
    "MAX_FILE_BYTES",
    "MAX_IMAGE_DATA_CHARS",
    "MAX_IMAGE_SIDE",
    "MAX_SHAPES",
    "MERGE_IOU",
    "check_labelme_size",
    "parse_labelme",
    "read_labelme",
    "shape_dict",
    "to_labelme",
    "write_labelme",
]

LABELME_VERSION = "5.0.1"
#: Files larger than this are refused before they are read (the limit lives in :mod:`core.imaging.limits`).
MAX_FILE_BYTES = limits.MAX_ANNOTATION_BYTES
MAX_IMAGE_DATA_CHARS = 24 * 1024 * 1024
MAX_SHAPES = 5000
MAX_IMAGE_SIDE = 65535

_TOP_KEYS = {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
_OUR_TOP_KEYS = {"reader", "model", "reviewed", "thresholds"}


def read_labelme(path: str | Path, *, image_size: tuple[int, int] | None = None) -> SliceAnnotation:
    """Read a LabelMe JSON file. ``image_size`` (width, height) of the real image is checked when given."""
    path = Path(path)
    check_labelme_size(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise read_failure(AnnotationFileError, exc, path, "JSON file") from exc
    return parse_labelme(_decode_json(raw, path), path=path, image_size=image_size)


def check_labelme_size(path: Path) -> None:
    """Refuse a file over MAX_FILE_BYTES from its size alone, before anything reads it. Raises AnnotationFileError."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise read_failure(AnnotationFileError, exc, path, "JSON file") from exc
    if size > MAX_FILE_BYTES:
        raise AnnotationFileError(
            f"file is {size / 1e6:.1f} MB; LabelMe JSON over {MAX_FILE_BYTES // 2**20} MB is refused", path
        )


def _decode_json(raw: bytes, path: Path | None) -> Any:
    if not raw.strip():
        raise AnnotationFileError("file is empty", path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationFileError(f"not UTF-8 text (byte {exc.start})", path) from exc

    def reject_constant(name: str) -> float:
        raise ValueError(f"{name} is not allowed in JSON")

    try:
        return json.loads(text, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        raise AnnotationFileError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", path) from exc
    except ValueError as exc:
        raise AnnotationFileError(f"not valid JSON: {exc}", path) from exc
    except RecursionError as exc:
        raise AnnotationFileError("not valid JSON: nested too deeply", path) from exc


def parse_labelme(obj: Any, *, path: Path | None = None, image_size: tuple[int, int] | None = None) -> SliceAnnotation:
    """Build a :class:`SliceAnnotation` from a decoded LabelMe JSON object."""
    if not isinstance(obj, dict):
        raise AnnotationFileError(f"top level must be a JSON object, not {type_name(obj)}", path)
    image_data = _image_data(obj.get("imageData"), path)
    width, height = _image_size(obj, image_data, image_size, path)
    parsed: list[tuple[Vertebra, bool]] = []
    other_shapes: list[Mapping[str, Any]] = []
    for index, shape in enumerate(_shape_list(obj.get("shapes"), path)):
        item = _parse_shape(shape, index, width, height, path)
        if isinstance(item, tuple):
            parsed.append(item)
        else:
            other_shapes.append(item)
    reviewed = obj.get("reviewed", False)
    if reviewed is not None and not isinstance(reviewed, bool):
        raise AnnotationFileError(f"'reviewed' must be true or false, not {brief(reviewed)}", path)
    reader = _optional_str(obj, "reader", path)
    vertebrae = merge_duplicates(parsed)
    if reader:  # shapes without a source were drawn by the file's reader
        vertebrae = tuple(v if v.source else v.with_changes(source=reader) for v in vertebrae)
    return SliceAnnotation(
        image_width=width,
        image_height=height,
        vertebrae=vertebrae,
        image_path=_posix_image_path(obj.get("imagePath"), path),
        reader=reader,
        model=_optional_str(obj, "model", path),
        reviewed=bool(reviewed),
        flags=checked_flags(obj.get("flags"), "image flags", path),
        image_data=image_data,
        other_shapes=tuple(other_shapes),
        extra={k: v for k, v in obj.items() if k not in _TOP_KEYS | _OUR_TOP_KEYS},
        thresholds=class_numbers(obj.get("thresholds"), "the file", path, "thresholds"),
    )


def _shape_list(shapes: Any, path: Path | None) -> list[Any]:
    """The ``shapes`` list (null is none), its length checked before any shape is read."""
    if shapes is None:
        return []
    if not isinstance(shapes, list):
        raise AnnotationFileError(f"'shapes' must be a list, not {type_name(shapes)}", path)
    if len(shapes) > MAX_SHAPES:
        raise AnnotationFileError(f"{len(shapes)} shapes; at most {MAX_SHAPES} are accepted per slice", path)
    return shapes


def _parse_shape(
    shape: Any, index: int, width: int, height: int, path: Path | None
) -> tuple[Vertebra, bool] | Mapping[str, Any]:
    """A vertebra (with whether it was a bare ``vertebra`` box), or the shape itself when it is not a box.

    Two stages, as labelme reads a shape: the JSON object becomes a checked LabelMe shape
    (:mod:`core.annotations.labelme_shape`), which becomes a vertebra (:mod:`core.annotations.labelme_vertebra`).
    """
    record = read_shape(shape, index, width, height, path)
    if record is None:
        return dict(shape)
    return vertebra_from_shape(record, path)


def _optional_str(obj: Mapping[str, Any], key: str, path: Path | None) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise AnnotationFileError(f"'{key}' must be a string or null, not {type_name(value)}", path)
    return value


def _posix_image_path(value: Any, path: Path | None) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AnnotationFileError(f"'imagePath' must be a string, not {type_name(value)}", path)
    return PureWindowsPath(value).as_posix() if "\\" in value else value


def _image_data(value: Any, path: Path | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise AnnotationFileError(f"'imageData' must be base64 text or null, not {type_name(value)}", path)
    if len(value) > MAX_IMAGE_DATA_CHARS:
        raise AnnotationFileError(
            f"'imageData' is {len(value) / 1e6:.1f} MB, over the {MAX_IMAGE_DATA_CHARS // 2**20} MB limit; "
            "save the annotation with imageData null and the image beside it",
            path,
        )
    return value


def _embedded_image_size(image_data: str, path: Path | None) -> tuple[int, int]:
    try:
        data = base64.b64decode(image_data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AnnotationFileError("'imageData' is not valid base64", path) from exc
    try:
        return raster_size(data)  # from the header alone, refused over the raster limit (a decompression bomb)
    except ImageTooLargeError as exc:
        raise AnnotationFileError(f"'imageData' holds an image too large to open: {exc.message}", path) from exc
    except ImageReadError as exc:
        raise AnnotationFileError(f"'imageData' does not hold a PNG or JPEG image ({exc.message})", path) from exc


def _image_size(
    obj: Mapping[str, Any], image_data: str | None, image_size: tuple[int, int] | None, path: Path | None
) -> tuple[int, int]:
    declared = []
    for key in ("imageWidth", "imageHeight"):
        value = obj.get(key)
        if value is not None and (not is_int(value) or not 0 < value <= MAX_IMAGE_SIDE):
            raise AnnotationFileError(
                f"'{key}' must be a whole number from 1 to {MAX_IMAGE_SIDE}, not {brief(value)}", path
            )
        declared.append(value)
    actual = image_size
    if image_data is not None:
        embedded = _embedded_image_size(image_data, path)
        if actual is not None and embedded != tuple(actual):
            raise AnnotationFileError(
                f"embedded image is {embedded[0]}x{embedded[1]} but the image file is {actual[0]}x{actual[1]}", path
            )
        actual = embedded
    if actual is not None:
        for key, value, real in (("imageWidth", declared[0], actual[0]), ("imageHeight", declared[1], actual[1])):
            if value is not None and value != real:
                noun = "wide" if key == "imageWidth" else "high"
                raise AnnotationFileError(f"'{key}' is {value} but the image is {real} pixels {noun}", path)
        return int(actual[0]), int(actual[1])
    if declared[0] is None or declared[1] is None:
        raise AnnotationFileError("'imageWidth' and 'imageHeight' are missing and there is no image to measure", path)
    return declared[0], declared[1]


def to_labelme(annotation: SliceAnnotation) -> dict[str, Any]:
    """The LabelMe JSON object for ``annotation`` (unknown keys first, so ours always win)."""
    payload: dict[str, Any] = {k: v for k, v in annotation.extra.items() if k not in _TOP_KEYS | _OUR_TOP_KEYS}
    payload.update(
        {
            "version": LABELME_VERSION,
            "flags": dict(annotation.flags),
            "shapes": [shape_dict(v) for v in annotation.vertebrae] + [dict(s) for s in annotation.other_shapes],
            "imagePath": annotation.image_path,
            "imageData": annotation.image_data,
            "imageHeight": annotation.image_height,
            "imageWidth": annotation.image_width,
            "reader": annotation.reader,
            "model": annotation.model,
            "reviewed": annotation.reviewed,
        }
    )
    if annotation.thresholds is not None:  # a model's result only: a reader's file stays as labelme users know it
        payload["thresholds"] = dict(annotation.thresholds)
    return payload


def write_labelme(annotation: SliceAnnotation, path: str | Path) -> Path:
    """Write ``annotation`` atomically. Raises :class:`~core.errors.FileWriteError` on failure."""
    return atomic_write_json(path, to_labelme(annotation))
