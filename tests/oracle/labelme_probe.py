"""Run labelme's own code on label files. Executed by an oracle venv's python; imports nothing of our project.

    python labelme_probe.py load FILE...                     load each file as labelme does
    python labelme_probe.py save OUT_JSON SPEC_JSON [...]    make labelme write label files, one per pair
    python labelme_probe.py serve                            the same commands, one JSON list per stdin line

Both print one JSON list on stdout, one object per file. ``load`` reports what labelme's loader returns (shapes,
imagePath, flags, other data), the image size decoded from the loaded image data with PIL and with Qt (as the app
shows it), whether the app turns the shapes into its ``Shape`` objects, and what labelme logged at warning level or
above. A file labelme refuses gives ``"ok": false`` and the error; the exit status is then still 0.

A save spec is ``{"image_path", "embed_image", "flags", "other_data", "shapes": [{"label", "points", "shape_type",
"flags", "group_id", "description", "other_data"}]}``, with ``image_path`` relative to the output file. The shapes go
through labelme's ``Shape`` and the app's own shape-to-dict code, and the image size comes from Qt, as when a person
draws boxes in labelme and saves.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import sys
import traceback

os.environ["QT_QPA_PLATFORM"] = "offscreen"

LABELME_6 = importlib.util.find_spec("labelme._label_file") is not None
LOG: list[str] = []


def _capture_logs() -> None:
    if LABELME_6:
        from loguru import logger

        logger.remove()
        logger.add(lambda message: LOG.append(message.record["message"]), level="WARNING")
        logger.add(sys.stderr, level="WARNING")
    else:

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                LOG.append(record.getMessage())

        logging.getLogger("labelme").addHandler(Collect(level=logging.WARNING))


def _label_file_class() -> type:
    if LABELME_6:
        from labelme._label_file import LabelFile
    else:
        from labelme.label_file import LabelFile
    return LabelFile


def _image_size(data: bytes | None) -> list[int] | None:
    import PIL.Image

    if data is None:
        return None
    with PIL.Image.open(io.BytesIO(data)) as image:
        return [image.width, image.height]


def _qt_image_size(data: bytes | None) -> list[int] | None:
    """The size of the image the app would show, or None where the app says it is not a valid image."""
    from PyQt5 import QtGui

    image = QtGui.QImage.fromData(data or b"")
    return None if image.isNull() else [image.width(), image.height()]


def _app_shapes(shape_dicts: list[dict]) -> list:
    """The app's ``Shape`` objects for the loaded shapes, built as the app builds them when it opens a file."""
    from PyQt5 import QtCore

    if LABELME_6:
        from labelme.app import _shapes_from_dicts

        return _shapes_from_dicts(shape_dicts=shape_dicts, label_flags=None)
    from labelme.shape import Shape  # labelme 5.0.1: MainWindow.loadLabels without the window

    shapes = []
    for data in shape_dicts:
        if not data["points"]:
            continue
        shape = Shape(label=data["label"], shape_type=data["shape_type"], group_id=data["group_id"])
        for x, y in data["points"]:
            shape.addPoint(QtCore.QPointF(x, y))
        shape.close()
        shape.flags = dict(data["flags"])
        shape.other_data = data["other_data"]
        shapes.append(shape)
    return shapes


def _shape_report(shape: dict) -> dict:
    report = {
        "label": shape["label"],
        "points": [list(point) for point in shape["points"]],
        "shape_type": shape["shape_type"],
        "flags": shape["flags"],
        "group_id": shape["group_id"],
        "other_data": shape["other_data"],
    }
    if "description" in shape:
        report["description"] = shape["description"]
    if shape.get("mask") is not None:
        report["mask_shape"] = list(shape["mask"].shape)
    return report


def _error(exc: BaseException) -> str:
    """The error and its causes: labelme 6 wraps them, sometimes with an empty message."""
    parts = []
    while exc is not None:
        parts.append(f"{type(exc).__name__}: {exc}".rstrip(": "))
        exc = exc.__cause__
    return ", caused by ".join(parts)


def load_one(path: str) -> dict:
    LabelFile = _label_file_class()
    del LOG[:]
    result: dict = {"file": path, "ok": False}
    try:
        label_file = LabelFile(path)
    except Exception as exc:
        result.update(error=_error(exc), log=list(LOG))
        return result
    if LABELME_6:
        image_path, image_data, other_data = label_file.image_path, label_file.image_data, label_file.other_data
    else:
        image_path, image_data, other_data = label_file.imagePath, label_file.imageData, label_file.otherData
    result.update(
        ok=True,
        imagePath=image_path,
        image_size=_image_size(image_data),
        qt_image_size=_qt_image_size(image_data),
        flags=label_file.flags,
        otherData=other_data,
        otherDataKeys=sorted(other_data),
        shapes=[_shape_report(shape) for shape in label_file.shapes],
    )
    try:
        result["app_shapes"] = len(_app_shapes(label_file.shapes))
    except Exception as exc:
        result["app_shapes_error"] = _error(exc)
    result["log"] = list(LOG)
    return result


def _app_shape_dict(spec: dict) -> dict:
    """One shape as the app saves it: labelme's ``Shape``, then the app's shape-to-dict code."""
    from PyQt5 import QtCore

    if LABELME_6:
        from labelme._shape import Shape
        from labelme.app import _shape_to_dict

        shape = Shape(
            label=spec["label"],
            shape_type=spec["shape_type"],
            group_id=spec.get("group_id"),
            description=spec.get("description"),
        )
        for x, y in spec["points"]:
            shape.add_point(QtCore.QPointF(x, y))
    else:
        from labelme.shape import Shape

        shape = Shape(label=spec["label"], shape_type=spec["shape_type"], group_id=spec.get("group_id"))
        for x, y in spec["points"]:
            shape.addPoint(QtCore.QPointF(x, y))
    shape.close()
    shape.flags = dict(spec.get("flags") or {})
    shape.other_data = dict(spec.get("other_data") or {})
    if not LABELME_6 and spec.get("description"):  # 5.0.1 keeps a description it read as other data
        shape.other_data["description"] = spec["description"]
    if LABELME_6:
        return _shape_to_dict(shape)
    data = shape.other_data.copy()  # labelme 5.0.1: MainWindow.saveLabels.format_shape
    data.update(
        label=shape.label,
        points=[(p.x(), p.y()) for p in shape.points],
        group_id=shape.group_id,
        shape_type=shape.shape_type,
        flags=shape.flags,
    )
    return data


def save_one(out_path: str, spec_path: str) -> dict:
    LabelFile = _label_file_class()
    del LOG[:]
    result: dict = {"file": out_path, "ok": False}
    try:
        with open(spec_path, encoding="utf-8") as handle:
            spec = json.load(handle)
        image_file = os.path.join(os.path.dirname(out_path), spec["image_path"])
        image_data = LabelFile.load_image_file(image_file)
        size = _qt_image_size(image_data)
        if size is None:
            raise ValueError(f"labelme cannot show the image {image_file}")
        shapes = [_app_shape_dict(shape) for shape in spec["shapes"]]
        embedded = image_data if spec.get("embed_image") else None
        other_data = spec.get("other_data") or {}
        flags = spec.get("flags") or {}
        if LABELME_6:
            LabelFile().save(
                filename=out_path,
                shapes=shapes,
                image_path=spec["image_path"],
                image_height=size[1],
                image_width=size[0],
                image_data=embedded,
                other_data=other_data,
                flags=flags,
            )
        else:
            LabelFile().save(out_path, shapes, spec["image_path"], size[1], size[0], embedded, other_data, flags)
    except Exception as exc:
        result.update(error=_error(exc), log=list(LOG))
        return result
    result.update(ok=True, image_size=size, log=list(LOG))
    return result


def run(argv: list[str]) -> list[dict]:
    """One command: ``["load", FILE, ...]`` or ``["save", OUT, SPEC, ...]``."""
    if len(argv) < 2 or argv[0] not in ("load", "save") or (argv[0] == "save" and len(argv) % 2 != 1):
        raise ValueError(f"usage: load FILE... | save OUT_JSON SPEC_JSON [...], not {argv[:3]}")
    if argv[0] == "load":
        return [load_one(path) for path in argv[1:]]
    pairs = argv[1:]
    return [save_one(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]


def serve(stdin: io.TextIOBase, stdout: io.TextIOBase) -> None:
    """Answer one command per line (a JSON list of arguments) with one line ``{"results": [...]}`` or
    ``{"error": ...}``, until stdin closes, so that labelme is imported once for many commands."""
    for line in stdin:
        if not line.strip():
            continue
        try:
            reply: dict = {"results": run(json.loads(line))}
        except Exception:
            reply = {"error": traceback.format_exc()}
        stdout.write(json.dumps(reply, ensure_ascii=False) + "\n")
        stdout.flush()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("load", "save", "serve"):
        sys.stderr.write(__doc__ or "")
        return 2
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # labelme prints; only our JSON goes to stdout
        _capture_logs()
        if argv[0] == "serve":
            serve(sys.stdin, stdout)
            return 0
        try:
            results = run(argv)
        except ValueError as exc:
            sys.stderr.write(f"{exc}\n")
            return 2
    json.dump(results, stdout, ensure_ascii=False)
    stdout.write("\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception:
        traceback.print_exc()
        sys.exit(3)
