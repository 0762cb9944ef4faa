"""LabelMe JSON: reading every variant readers produce, and writing files that labelme 5.0.1 and 6.x open.

What we write: one ``rectangle`` per vertebra with two points, ``label`` = disease codes joined by ``+`` or
``NORMAL``, one boolean flag per disease, ``group_id``, ``description``, and the extra shape keys ``score``,
``probabilities``, ``level`` and ``source``, and ``genant`` (the Genant fracture grade 0-3, only when the vertebra has
one); extra top-level keys ``reader``, ``model`` and ``reviewed``.

What we also read: the paper's style (a ``vertebra`` box plus disease-named boxes repeating the same vertebra, merged
when IoU ≥ 0.9), polygons (their bounding box), labels in any case with synonyms, embedded or null ``imageData``,
Windows paths, and unknown keys (kept and written back). Anything else is refused with an
:class:`~core.errors.AnnotationFileError` that names the file and the problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path, PureWindowsPath
from typing import Any

from core.annotations.geometry import cluster_by_iou
from core.annotations.labels import UnknownLabelError, parse_label
from core.annotations.model import (
    LEVELS,
    Box,
    Disease,
    SliceAnnotation,
    Vertebra,
    highest_genant,
    is_genant_grade,
)
from core.errors import AnnotationFileError, ImageReadError, ImageTooLargeError
from core.fileio import atomic_write_json
from core.imaging import limits
from core.imaging.raster import raster_size

LABELME_VERSION = "5.0.1"
#: Files larger than this are refused before they are read (the limit lives in :mod:`core.imaging.limits`).
MAX_FILE_BYTES = limits.MAX_ANNOTATION_BYTES
MAX_IMAGE_DATA_CHARS = 24 * 1024 * 1024
MAX_SHAPES = 5000
MAX_IMAGE_SIDE = 65535
#: Points this far outside the image (labelme rounding) are clamped; farther out is an error.
EDGE_TOLERANCE_PX = 1.0
#: Disease-named boxes of one vertebra (the paper's style) overlap at least this much.
MERGE_IOU = 0.9

_SHAPE_KEYS = {"label", "points", "group_id", "shape_type", "flags", "description", "mask"}
_OUR_SHAPE_KEYS = {"score", "probabilities", "level", "source", "genant"}
_TOP_KEYS = {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
_OUR_TOP_KEYS = {"reader", "model", "reviewed"}
_BOX_TYPES = {"rectangle", "polygon"}


def read_labelme(path: str | Path, *, image_size: tuple[int, int] | None = None) -> SliceAnnotation:
    """Read a LabelMe JSON file. ``image_size`` (width, height) of the real image is checked when given."""
    path = Path(path)
    check_labelme_size(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise AnnotationFileError("file not found", path) from exc
    except IsADirectoryError as exc:
        raise AnnotationFileError("is a folder, not a JSON file", path) from exc
    except OSError as exc:
        raise AnnotationFileError(f"cannot read: {exc.strerror or exc}", path) from exc
    return parse_labelme(_decode_json(raw, path), path=path, image_size=image_size)


def check_labelme_size(path: Path) -> None:
    """Refuse a file over MAX_FILE_BYTES from its size alone, before anything reads it. Raises AnnotationFileError."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise AnnotationFileError("file not found", path) from exc
    except OSError as exc:
        raise AnnotationFileError(f"cannot read: {exc.strerror or exc}", path) from exc
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
        raise AnnotationFileError(f"top level must be a JSON object, not {_type_name(obj)}", path)
    image_data = _image_data(obj.get("imageData"), path)
    width, height = _image_size(obj, image_data, image_size, path)
    shapes = obj.get("shapes")
    if shapes is None:
        shapes = []
    if not isinstance(shapes, list):
        raise AnnotationFileError(f"'shapes' must be a list, not {_type_name(shapes)}", path)
    if len(shapes) > MAX_SHAPES:
        raise AnnotationFileError(f"{len(shapes)} shapes; at most {MAX_SHAPES} are accepted per slice", path)
    parsed: list[tuple[Vertebra, bool]] = []
    other_shapes: list[Mapping[str, Any]] = []
    for index, shape in enumerate(shapes):
        item = _parse_shape(shape, index, width, height, path)
        if isinstance(item, tuple):
            parsed.append(item)
        else:
            other_shapes.append(item)
    reviewed = obj.get("reviewed", False)
    if reviewed is not None and not isinstance(reviewed, bool):
        raise AnnotationFileError(f"'reviewed' must be true or false, not {_brief(reviewed)}", path)
    reader = _optional_str(obj, "reader", path)
    vertebrae = _merge_duplicates(parsed)
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
        flags=_flags(obj.get("flags"), "image flags", path),
        image_data=image_data,
        other_shapes=tuple(other_shapes),
        extra={k: v for k, v in obj.items() if k not in _TOP_KEYS | _OUR_TOP_KEYS},
    )


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _brief(value: Any) -> str:
    """A value for an error message, cut short: a bad value can be megabytes long."""
    try:
        text = repr(value) if isinstance(value, str) else str(value)
    except ValueError:  # an integer over Python's 4300-digit limit for str()
        text = f"<{_type_name(value)}>"
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A JSON number that fits in a float (not a bool, and not an integer of hundreds of digits)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _optional_str(obj: Mapping[str, Any], key: str, path: Path | None) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise AnnotationFileError(f"'{key}' must be a string or null, not {_type_name(value)}", path)
    return value


def _posix_image_path(value: Any, path: Path | None) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AnnotationFileError(f"'imagePath' must be a string, not {_type_name(value)}", path)
    return PureWindowsPath(value).as_posix() if "\\" in value else value


def _image_data(value: Any, path: Path | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise AnnotationFileError(f"'imageData' must be base64 text or null, not {_type_name(value)}", path)
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
        if value is not None and (not _is_int(value) or not 0 < value <= MAX_IMAGE_SIDE):
            raise AnnotationFileError(
                f"'{key}' must be a whole number from 1 to {MAX_IMAGE_SIDE}, not {_brief(value)}", path
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


def _flags(value: Any, what: str, path: Path | None) -> dict[str, bool]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, bool) for k, v in value.items()):
        raise AnnotationFileError(f"{what} must map names to true or false", path)
    return dict(value)


def _points(shape: Mapping[str, Any], where: str, width: int, height: int, path: Path | None) -> list[list[float]]:
    points = shape.get("points")
    if not isinstance(points, list) or not points:
        raise AnnotationFileError(f"{where} has no points", path)
    checked: list[list[float]] = []
    for point in points:
        if not (isinstance(point, list) and len(point) == 2 and all(_is_number(v) for v in point)):
            raise AnnotationFileError(f"{where} has a point that is not [x, y]: {_brief(point)}", path)
        x, y = float(point[0]), float(point[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise AnnotationFileError(f"{where} has a non-finite coordinate ({x}, {y})", path)
        tol = EDGE_TOLERANCE_PX
        if x < -tol or y < -tol or x > width + tol or y > height + tol:
            raise AnnotationFileError(
                f"{where} has a point at ({x:g}, {y:g}), outside the {width}x{height} image", path
            )
        checked.append([min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))])
    return checked


def _parse_shape(
    shape: Any, index: int, width: int, height: int, path: Path | None
) -> tuple[Vertebra, bool] | Mapping[str, Any]:
    """A vertebra (with whether it was a bare ``vertebra`` box), or the shape itself when it is not a box."""
    if not isinstance(shape, dict):
        raise AnnotationFileError(f"shape {index + 1} must be an object, not {_type_name(shape)}", path)
    label = shape.get("label")
    if not isinstance(label, str):
        raise AnnotationFileError(f"shape {index + 1} has no text label", path)
    where = f"shape {index + 1} ({label[:40]!r})"
    shape_type = shape.get("shape_type") or "polygon"
    if not isinstance(shape_type, str):
        raise AnnotationFileError(f"{where} has a shape_type that is not text", path)
    points = _points(shape, where, width, height, path)
    if shape_type not in _BOX_TYPES:
        return dict(shape)
    if shape_type == "rectangle" and len(points) < 2:
        raise AnnotationFileError(f"{where} is a rectangle with {len(points)} point", path)
    try:
        box = Box.from_points(points)
    except ValueError as exc:
        raise AnnotationFileError(f"{where} has no area", path) from exc
    try:
        meaning = parse_label(label)
    except UnknownLabelError as exc:
        raise AnnotationFileError(f"{where}: {exc}", path) from exc
    flags = _flags(shape.get("flags"), f"{where} flags", path)
    codes = {d.value for d in Disease}
    flagged = {Disease(k.upper()) for k, v in flags.items() if k.upper() in codes and v}
    level = shape.get("level")
    if level is None:  # an explicit null does not hide a level named in the label ("L3: OVCF")
        level = meaning.level
    if level is not None and (not isinstance(level, str) or level.upper() not in LEVELS):
        raise AnnotationFileError(f"{where} has an unknown level {_brief(level)}", path)
    group_id = shape.get("group_id")
    if group_id is not None and not _is_int(group_id):
        raise AnnotationFileError(f"{where} has a group_id that is not a whole number", path)
    description = shape.get("description") or ""
    if not isinstance(description, str):
        raise AnnotationFileError(f"{where} has a description that is not text", path)
    source = shape.get("source", "")
    if source is not None and not isinstance(source, str):
        raise AnnotationFileError(f"{where} has a source that is not text", path)
    vertebra = Vertebra(
        box=box,
        diseases=meaning.diseases | flagged,
        probabilities=_probabilities(shape.get("probabilities"), where, path),
        score=_score(shape.get("score"), where, path),
        level=level.upper() if level else None,
        source=source or "",
        group_id=group_id,
        description=description,
        other_flags={k: v for k, v in flags.items() if k.upper() not in codes},
        extra={k: v for k, v in shape.items() if k not in _SHAPE_KEYS | _OUR_SHAPE_KEYS},
        diagnosed=not (meaning.vertebra_only and not flagged),
        genant=_genant(shape.get("genant"), where, path),
    )
    return vertebra, meaning.vertebra_only and not flagged


def _score(value: Any, where: str, path: Path | None) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
        raise AnnotationFileError(f"{where} has a score that is not a number from 0 to 1: {_brief(value)}", path)
    return float(value)


def _genant(value: Any, where: str, path: Path | None) -> int | None:
    if value is None:
        return None
    if not is_genant_grade(value):
        raise AnnotationFileError(f"{where} has a Genant grade that is not 0, 1, 2 or 3: {_brief(value)}", path)
    return int(value)


def _probabilities(value: Any, where: str, path: Path | None) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and _is_number(v) and 0.0 <= float(v) <= 1.0 for k, v in value.items()
    ):
        raise AnnotationFileError(f"{where} has probabilities that are not class → number from 0 to 1", path)
    return {k.upper(): float(v) for k, v in value.items()}


def _merge_duplicates(parsed: Sequence[tuple[Vertebra, bool]]) -> tuple[Vertebra, ...]:
    """Merge boxes of one vertebra (IoU ≥ MERGE_IOU): the paper's one-box-per-disease style."""
    vertebrae = [v for v, _ in parsed]
    merged: list[Vertebra] = []
    for group in cluster_by_iou([v.box for v in vertebrae], MERGE_IOU):
        if len(group) == 1:
            merged.append(vertebrae[group[0]])
            continue
        members = [vertebrae[i] for i in group]
        bare = [vertebrae[i] for i in group if parsed[i][1]]
        first = members[0]
        diseases = frozenset().union(*(m.diseases for m in members))
        merged.append(
            first.with_changes(
                box=bare[0].box if bare else first.box,
                diseases=diseases,
                level=next((m.level for m in members if m.level), None),
                score=max((m.score for m in members if m.score is not None), default=None),
                probabilities=next((m.probabilities for m in members if m.probabilities), None),
                description="; ".join(dict.fromkeys(m.description for m in members if m.description)),
                other_flags={k: v for m in reversed(members) for k, v in m.other_flags.items()},
                extra={k: v for m in reversed(members) for k, v in m.extra.items()},
                diagnosed=any(m.diagnosed for m in members),
                genant=highest_genant(m.genant for m in members),
            )
        )
    return tuple(merged)


def shape_dict(vertebra: Vertebra) -> dict[str, Any]:
    """One vertebra as a LabelMe rectangle shape."""
    box = vertebra.box
    flags = {d.value: d in vertebra.diseases for d in Disease}
    flags.update({k: v for k, v in vertebra.other_flags.items() if k not in flags})
    shape: dict[str, Any] = {k: v for k, v in vertebra.extra.items() if k not in _SHAPE_KEYS | _OUR_SHAPE_KEYS}
    shape.update(
        {
            "label": vertebra.label,
            "points": [[box.x1, box.y1], [box.x2, box.y2]],
            "group_id": vertebra.group_id,
            "description": vertebra.description,
            "shape_type": "rectangle",
            "flags": flags,
            "score": vertebra.score,
            "probabilities": dict(vertebra.probabilities) if vertebra.probabilities is not None else None,
            "level": vertebra.level,
            "source": vertebra.source,
        }
    )
    if vertebra.genant is not None:  # only when set: files without grades stay as they were
        shape["genant"] = vertebra.genant
    return shape


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
    return payload


def write_labelme(annotation: SliceAnnotation, path: str | Path) -> Path:
    """Write ``annotation`` atomically. Raises :class:`~core.errors.FileWriteError` on failure."""
    return atomic_write_json(path, to_labelme(annotation))
