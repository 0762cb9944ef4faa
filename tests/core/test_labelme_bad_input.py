"""Bad LabelMe JSON is refused with an AnnotationFileError that names the file and the problem, and nothing else."""

from __future__ import annotations

import base64
import copy
import json
import re
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core.annotations.labelme_io as labelme_io
from core.annotations.labelme_io import parse_labelme, read_labelme, write_labelme
from core.annotations.model import Box, SliceAnnotation
from core.errors import AnnotationFileError
from core.imaging.png_io import png_bytes


def labelme(shapes: list, *, width: int = 100, height: int = 80, **top) -> dict:
    obj = {
        "version": "5.0.1",
        "flags": {},
        "shapes": shapes,
        "imagePath": "s01.png",
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }
    obj.update(top)
    return obj


def rect(label: str = "OVCF", x1: Any = 10, y1: Any = 10, x2: Any = 50, y2: Any = 40, **keys) -> dict:
    shape = {"label": label, "points": [[x1, y1], [x2, y2]], "group_id": None, "shape_type": "rectangle", "flags": {}}
    shape.update(keys)
    return shape


def png_base64(width: int, height: int) -> str:
    return base64.b64encode(png_bytes(np.zeros((height, width), dtype=np.uint8))).decode("ascii")


def refused(path: Path, problem: str, **kwargs) -> AnnotationFileError:
    """Read ``path``; it must fail with AnnotationFileError saying ``path: …problem…``."""
    with pytest.raises(AnnotationFileError) as info:
        read_labelme(path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert re.search(problem, message, flags=re.IGNORECASE), message
    assert info.value.path == str(path)
    assert len(message) < len(str(path)) + 300, "the message names the problem, not the whole content"
    return info.value


def write(tmp_path: Path, content: bytes | dict | list, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode("utf-8"))
    return path


# ---------------------------------------------------------------------------------------------------------------
# Not JSON, or not a JSON object


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"   \n\t ", "empty"),
        (b'{"imageWidth": 100, "imageHeight": 80}\n{"again": 1}', "not valid JSON"),
        (b'{"text": "\xff\xfe caf\xe9"}', "not UTF-8"),
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        (b"[]", "top level must be a JSON object, not a list"),
        (b'[{"imageWidth": 100}]', "top level must be a JSON object"),
        (b'"a string"', "top level must be a JSON object, not a string"),
        (b"42", "top level must be a JSON object, not a number"),
        (b"null", "top level must be a JSON object, not null"),
        (b"true", "top level must be a JSON object, not a boolean"),
    ],
)
def test_not_a_json_object(tmp_path, content, problem):
    refused(write(tmp_path, content), problem)


def test_truncated_file(tmp_path):
    good = json.dumps(labelme([rect(), rect("KD", 10, 45, 50, 75)]), indent=2).encode()
    for cut in (1, len(good) // 3, len(good) // 2, len(good) - 2):
        refused(write(tmp_path, good[:cut]), "not valid JSON")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["point", "score", "unknown key"])
def test_nan_and_infinity_literals(tmp_path, literal, where):
    text = json.dumps(labelme([rect(x1=11.0, score=0.5)], unknown=0.25))
    target = {"point": "11.0", "score": "0.5", "unknown": "0.25"}[where.split()[0]]
    assert text.count(target) == 1
    refused(write(tmp_path, text.replace(target, literal).encode()), f"not valid JSON: {literal} is not allowed")


def test_number_too_large_for_a_float_is_not_a_finite_coordinate(tmp_path):
    refused(write(tmp_path, json.dumps(labelme([rect(x2=50)])).replace("50", "1e400").encode()), "non-finite")


def test_integer_too_large_for_a_float(tmp_path):
    huge = "1" + "0" * 400
    path = write(tmp_path, json.dumps(labelme([rect(x2=50)])).replace("50", huge).encode())
    refused(path, r"not \[x, y\]")
    path = write(tmp_path, json.dumps(labelme([rect(score=0.5)])).replace("0.5", huge).encode())
    refused(path, "score")


def test_integer_over_python_digit_limit(tmp_path):
    refused(write(tmp_path, b'{"imageWidth": 1' + b"0" * 5000 + b"}"), "not valid JSON")


def test_deeply_nested_json(tmp_path):
    depth = 100_000
    content = b'{"imageWidth": 10, "imageHeight": 10, "deep": ' + b"[" * depth + b"]" * depth + b"}"
    refused(write(tmp_path, content), "nested too deeply")
    content = b'{"deep": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
    refused(write(tmp_path, content), "nested too deeply")


def test_missing_file_and_folder(tmp_path):
    refused(tmp_path / "missing.json", "not found")
    folder = tmp_path / "folder.json"
    folder.mkdir()
    refused(folder, "folder")


# ---------------------------------------------------------------------------------------------------------------
# Coordinates


def test_non_finite_coordinates_from_python_objects():
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(AnnotationFileError, match="non-finite"):
            parse_labelme(labelme([rect(y2=bad)]))


@pytest.mark.parametrize(
    ("points", "problem"),
    [
        ([[-5, 10], [50, 40]], r"point at \(-5, 10\), outside the 100x80 image"),
        ([[10, -1.01], [50, 40]], "outside the 100x80 image"),
        ([[10, 10], [101.5, 40]], r"point at \(101.5, 40\), outside"),
        ([[10, 10], [50, 81.01]], "outside"),
        ([[10, 10], [5000, 9000]], "outside"),
    ],
)
def test_coordinates_outside_the_image(tmp_path, points, problem):
    refused(write(tmp_path, labelme([rect(points=points)])), problem)


@pytest.mark.parametrize(
    ("points", "box"),
    [
        ([[-1.0, -0.5], [50, 40]], Box(0, 0, 50, 40)),
        ([[10, 10], [101.0, 80.999]], Box(10, 10, 100, 80)),
        ([[-0.25, 10], [100.75, 81]], Box(0, 10, 100, 80)),
    ],
)
def test_points_within_one_pixel_outside_are_clamped(tmp_path, points, box):
    (vertebra,) = read_labelme(write(tmp_path, labelme([rect(points=points)]))).vertebrae
    assert vertebra.box == box


@pytest.mark.parametrize(
    "points",
    [
        [[10, 10], [10, 40]],
        [[10, 10], [50, 10]],
        [[20, 20], [20, 20]],
        [[-1, 10], [-0.5, 40]],  # clamped onto the edge: no width left
    ],
)
def test_zero_area_box(tmp_path, points):
    refused(write(tmp_path, labelme([rect(points=points)])), "has no area")


def test_zero_area_polygon(tmp_path):
    polygon = {"label": "KD", "points": [[1, 5], [20, 5], [40, 5]], "shape_type": "polygon"}
    refused(write(tmp_path, labelme([polygon])), "has no area")


@pytest.mark.parametrize(
    "point",
    [[1, 2, 3], [1], [], "12", 12, None, [1, "2"], [True, 2], [None, 2], {"x": 1, "y": 2}, [[1, 2]]],
)
def test_point_that_is_not_x_y(tmp_path, point):
    refused(write(tmp_path, labelme([rect(points=[[10, 10], point])])), r"shape 1 \('OVCF'\) has a point that is not")


@pytest.mark.parametrize("points", [None, [], "10,10,50,40", {"a": 1}])
def test_shape_without_points(tmp_path, points):
    refused(write(tmp_path, labelme([rect(points=points)])), "has no points")


def test_rectangle_with_one_point(tmp_path):
    refused(write(tmp_path, labelme([rect(points=[[10, 10]])])), "rectangle with 1 point")


def test_non_box_shape_outside_the_image_is_refused(tmp_path):
    point = {"label": "tip", "points": [[500, 5]], "shape_type": "point"}
    refused(write(tmp_path, labelme([point])), "outside")


# ---------------------------------------------------------------------------------------------------------------
# Labels


@pytest.mark.parametrize(
    ("label", "term"),
    [("banana", "banana"), ("OVCF+banana", "banana"), ("L9: OVCF", "l9"), ("", "empty label"), ("  ", "empty")],
)
def test_unknown_label(tmp_path, label, term):
    error = refused(write(tmp_path, labelme([rect(label)])), "shape 1")
    assert term in str(error)


def test_unknown_label_in_second_shape_is_numbered(tmp_path):
    refused(write(tmp_path, labelme([rect(), rect("spondylolisthesis", 10, 45, 50, 75)])), "shape 2.*spondylolisthesis")


def test_very_long_label_is_cut_short_in_the_message(tmp_path):
    refused(write(tmp_path, labelme([rect("x" * 100_000)])), "unknown label")


@pytest.mark.parametrize("label", [None, 5, ["OVCF"], {"code": "OVCF"}, True])
def test_label_not_text(tmp_path, label):
    refused(write(tmp_path, labelme([rect(label)])), "shape 1 has no text label")


# ---------------------------------------------------------------------------------------------------------------
# The image size


def test_image_height_that_does_not_match_the_image(tmp_path):
    path = write(tmp_path, labelme([rect()], width=100, height=80))
    refused(path, "'imageHeight' is 80 but the image is 90 pixels high", image_size=(100, 90))
    refused(path, "'imageWidth' is 100 but the image is 99 pixels wide", image_size=(99, 80))
    assert read_labelme(path, image_size=(100, 80)).image_height == 80


def test_embedded_image_of_another_size(tmp_path):
    path = write(tmp_path, labelme([rect()], width=100, height=80, imageData=png_base64(64, 80)))
    refused(path, "'imageWidth' is 100 but the image is 64 pixels wide")
    path = write(tmp_path, labelme([rect()], width=100, height=80, imageData=png_base64(100, 81)))
    refused(path, "'imageHeight' is 80 but the image is 81 pixels high")


def test_embedded_image_and_image_file_disagree(tmp_path):
    path = write(tmp_path, labelme([], width=100, height=80, imageData=png_base64(100, 80)))
    refused(path, "embedded image is 100x80 but the image file is 200x80", image_size=(200, 80))


@pytest.mark.parametrize(
    ("image_data", "problem"),
    [
        ("not base64 at all!", "not valid base64"),
        ("ü", "not valid base64"),
        (base64.b64encode(b"plain text, no image").decode(), "does not hold a PNG or JPEG image"),
        (base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20).decode(), "does not hold a PNG or JPEG image"),
        (42, "'imageData' must be base64 text or null"),
        (["abc"], "'imageData' must be base64 text or null"),
    ],
)
def test_bad_image_data(tmp_path, image_data, problem):
    refused(write(tmp_path, labelme([], imageData=image_data)), problem)


def png_header(width: int, height: int) -> bytes:
    """A PNG that only declares its size: enough for a decompression bomb check."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def test_embedded_decompression_bomb(tmp_path):
    data = base64.b64encode(png_header(60000, 60000)).decode()
    refused(write(tmp_path, labelme([], width=60000, height=60000, imageData=data)), "too large")


def test_missing_size_and_no_image(tmp_path):
    obj = labelme([rect()])
    del obj["imageHeight"]
    refused(write(tmp_path, obj), "'imageWidth' and 'imageHeight' are missing")


# ---------------------------------------------------------------------------------------------------------------
# Sizes: refused early and fast


@pytest.mark.slow
def test_100000_shapes_are_refused_before_any_shape_is_read(tmp_path, monkeypatch):
    """The count is checked first, so a hostile file costs one JSON parse, not 100,000 shape validations."""
    def no_shape_parsing(*args, **kwargs):
        raise AssertionError("a shape was parsed")

    monkeypatch.setattr(labelme_io, "_parse_shape", no_shape_parsing)
    shapes = [rect(points=[[1 + i % 50, 1], [2 + i % 50, 2]]) for i in range(100_000)]
    path = write(tmp_path, labelme(shapes))
    refused(path, "100000 shapes; at most 5000")


def test_50_mb_image_data_is_refused_without_decoding(tmp_path, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("imageData was decoded")

    monkeypatch.setattr(base64, "b64decode", no_decoding)
    monkeypatch.setattr("PIL.Image.open", no_decoding)
    path = write(tmp_path, labelme([], imageData="A" * (50 * 1024 * 1024)))
    refused(path, r"'imageData' is 52\.4 MB, over the 24 MB limit")


def test_file_over_64_mb_is_refused_without_reading(tmp_path, monkeypatch):
    path = tmp_path / "sparse.json"
    with open(path, "wb") as handle:
        handle.truncate(65 * 1024 * 1024)  # sparse: no disk used, nothing to parse

    def no_reading(self):
        raise AssertionError("the file was read")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    refused(path, "over 64 MB is refused")


def test_file_size_limit_applies_to_real_content(tmp_path, monkeypatch):
    path = write(tmp_path, labelme([rect()]))
    monkeypatch.setattr(labelme_io, "MAX_FILE_BYTES", path.stat().st_size - 1)
    refused(path, "is refused")
    monkeypatch.setattr(labelme_io, "MAX_FILE_BYTES", path.stat().st_size)
    assert len(read_labelme(path).vertebrae) == 1


# ---------------------------------------------------------------------------------------------------------------
# Wrong types for every key


def set_top(key: str, value: Any):
    def change(obj: dict) -> None:
        obj[key] = value

    return change


def set_shape(key: str, value: Any):
    def change(obj: dict) -> None:
        obj["shapes"][0][key] = value

    return change


WRONG_TYPES = [
    ("imageWidth as string", set_top("imageWidth", "100"), "'imageWidth' must be a whole number from 1 to 65535"),
    ("imageWidth as bool", set_top("imageWidth", True), "'imageWidth' must be a whole number"),
    ("imageWidth as float", set_top("imageWidth", 100.5), "'imageWidth' must be a whole number"),
    ("imageWidth zero", set_top("imageWidth", 0), "'imageWidth' must be a whole number"),
    ("imageWidth negative", set_top("imageWidth", -100), "'imageWidth' must be a whole number"),
    ("imageWidth huge", set_top("imageWidth", 70000), "'imageWidth' must be a whole number"),
    ("imageHeight as list", set_top("imageHeight", [80]), "'imageHeight' must be a whole number"),
    ("imageHeight as bool", set_top("imageHeight", False), "'imageHeight' must be a whole number"),
    ("shapes as dict", set_top("shapes", {"0": {}}), "'shapes' must be a list, not an object"),
    ("shapes as string", set_top("shapes", "[]"), "'shapes' must be a list, not a string"),
    ("shape as list", set_top("shapes", [["OVCF", [[1, 1], [5, 5]]]]), "shape 1 must be an object, not a list"),
    ("shape as null", set_top("shapes", [None]), "shape 1 must be an object, not null"),
    ("flags with non-bool values", set_top("flags", {"motion": 1}), "image flags must map names to true or false"),
    ("flags with string values", set_top("flags", {"motion": "true"}), "image flags must map"),
    ("flags as list", set_top("flags", ["motion"]), "image flags must map"),
    ("shape flags non-bool", set_shape("flags", {"OVCF": "yes"}), r"shape 1 \('OVCF'\) flags must map"),
    ("shape flags as list", set_shape("flags", ["OVCF"]), "flags must map"),
    ("group_id as string", set_shape("group_id", "1"), "group_id that is not a whole number"),
    ("group_id as float", set_shape("group_id", 1.5), "group_id that is not a whole number"),
    ("group_id as bool", set_shape("group_id", True), "group_id that is not a whole number"),
    ("score above 1", set_shape("score", 1.5), "score that is not a number from 0 to 1: 1.5"),
    ("score below 0", set_shape("score", -0.01), "score that is not a number from 0 to 1"),
    ("score as string", set_shape("score", "0.9"), "score that is not a number from 0 to 1"),
    ("score as bool", set_shape("score", True), "score that is not a number from 0 to 1"),
    ("probabilities as list", set_shape("probabilities", [0.1, 0.9]), "probabilities that are not"),
    ("probabilities as number", set_shape("probabilities", 0.9), "probabilities that are not"),
    ("probabilities above 1", set_shape("probabilities", {"OVCF": 2}), "probabilities that are not"),
    ("probabilities as text", set_shape("probabilities", {"OVCF": "high"}), "probabilities that are not"),
    ("probabilities as bool", set_shape("probabilities", {"OVCF": True}), "probabilities that are not"),
    ("thresholds as list", set_top("thresholds", [0.5]), "the file has thresholds that are not class → number"),
    ("thresholds above 1", set_top("thresholds", {"OVCF": 1.5}), "the file has thresholds that are not"),
    ("thresholds as text", set_top("thresholds", {"OVCF": "low"}), "the file has thresholds that are not"),
    ("thresholds NaN-free but bool", set_top("thresholds", {"OVCF": False}), "the file has thresholds that are not"),
    ("reviewed as string", set_top("reviewed", "yes"), "'reviewed' must be true or false, not 'yes'"),
    ("reviewed as number", set_top("reviewed", 1), "'reviewed' must be true or false, not 1"),
    ("level unknown", set_shape("level", "L9"), r"unknown level 'L9'"),
    ("level empty", set_shape("level", ""), "unknown level"),
    ("level as number", set_shape("level", 3), "unknown level 3"),
    ("genant above 3", set_shape("genant", 4), r"shape 1 \('OVCF'\) has a Genant grade that is not 0, 1, 2 or 3: 4"),
    ("genant below 0", set_shape("genant", -1), "Genant grade that is not 0, 1, 2 or 3: -1"),
    ("genant as float", set_shape("genant", 2.0), "Genant grade that is not 0, 1, 2 or 3: 2.0"),
    ("genant as fraction", set_shape("genant", 1.5), "Genant grade that is not 0, 1, 2 or 3: 1.5"),
    ("genant as string", set_shape("genant", "2"), "Genant grade that is not 0, 1, 2 or 3: '2'"),
    ("genant as bool", set_shape("genant", True), "Genant grade that is not 0, 1, 2 or 3: True"),
    ("genant as list", set_shape("genant", [2]), "Genant grade that is not 0, 1, 2 or 3"),
    ("reader as number", set_top("reader", 7), "'reader' must be a string or null, not a number"),
    ("model as list", set_top("model", ["a"]), "'model' must be a string or null, not a list"),
    ("imagePath as number", set_top("imagePath", 1), "'imagePath' must be a string, not a number"),
    ("description as number", set_shape("description", 5), "description that is not text"),
    ("source as number", set_shape("source", 5), "source that is not text"),
    ("shape_type as number", set_shape("shape_type", 5), "shape_type that is not text"),
]


@pytest.mark.parametrize(("change", "problem"), [c[1:] for c in WRONG_TYPES], ids=[c[0] for c in WRONG_TYPES])
def test_wrong_types(tmp_path, change, problem):
    obj = labelme([rect(source="dr_a", level="L1", score=0.5, probabilities={"OVCF": 0.7}, group_id=1)])
    assert read_labelme(write(tmp_path, obj, "good.json")).vertebrae
    change(obj)
    refused(write(tmp_path, obj), problem)


def test_error_message_of_huge_bad_value_is_short(tmp_path):
    refused(write(tmp_path, labelme([], reviewed="y" * 1_000_000)), "'reviewed' must be true or false")


# ---------------------------------------------------------------------------------------------------------------
# Property: nothing but AnnotationFileError, and whatever is accepted round-trips


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
labels = st.sampled_from(["OVCF", "of+kd", "vertebra", "normal", "L3: SN", "Kümmell", "Schmorl's node", "PS, OF"])


@st.composite
def valid_shapes(draw) -> dict:
    x1, x2 = sorted(draw(st.lists(st.floats(0, 100), min_size=2, max_size=2, unique=True)))
    y1, y2 = sorted(draw(st.lists(st.integers(0, 80), min_size=2, max_size=2, unique=True)))
    kind = draw(st.sampled_from(["rectangle", "polygon", "point"]))
    points = {"rectangle": [[x1, y1], [x2, y2]], "polygon": [[x1, y1], [x2, y1], [x2, y2]], "point": [[x1, y1]]}
    shape = {"label": draw(labels), "points": points[kind], "shape_type": kind}
    optional = {
        "group_id": st.none() | st.integers(-3, 3),
        "flags": st.dictionaries(st.sampled_from(["OVCF", "kd", "other"]), st.booleans()),
        "description": st.text(max_size=8),
        "score": st.floats(0, 1),
        "probabilities": st.dictionaries(st.sampled_from(["OVCF", "sn", "NORMAL"]), st.floats(0, 1)),
        "level": st.sampled_from(["L1", "t4", "S1", None]),
        "genant": st.none() | st.integers(0, 3),
        "source": st.sampled_from(["model", "dr_a", None]),
        "other_data": json_values,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            shape[key] = draw(strategy)
    return shape


@st.composite
def labelme_objects(draw) -> dict:
    """A valid LabelMe object, then a few mutations: keys dropped, values of other types, random coordinates."""
    obj = labelme(
        draw(st.lists(valid_shapes(), max_size=5)),
        imageData=draw(st.sampled_from([None, SMALL_PNG])),
        imagePath=draw(st.sampled_from(["a\\b.png", "x.png"])),
        reviewed=draw(st.booleans()),
        reader=draw(st.sampled_from(["dr_a", None])),
        custom=draw(json_values),
    )
    for _ in range(draw(st.integers(0, 3))):
        shape_list = obj.get("shapes")
        target = obj
        if isinstance(shape_list, list) and shape_list and draw(st.booleans()):
            target = draw(st.sampled_from(shape_list))
        if not isinstance(target, dict) or not target:
            continue
        key = draw(st.sampled_from(sorted(target)))
        action = draw(st.sampled_from(["drop", "retype", "coordinate"]))
        if action == "drop":
            del target[key]
        elif action == "retype" or not isinstance(target.get("points"), list) or not target["points"]:
            target[key] = draw(json_values)
        else:
            point = draw(st.sampled_from(target["points"]))
            if isinstance(point, list) and point:
                point[draw(st.integers(0, len(point) - 1))] = draw(st.floats(-3, 105) | scalars)
    return obj


SMALL_PNG = png_base64(100, 80)


def accepted_round_trips(annotation: SliceAnnotation) -> None:
    """What was accepted writes as strict JSON and reads back equal."""
    assert isinstance(annotation, SliceAnnotation)
    with tempfile.TemporaryDirectory() as folder:
        path = write_labelme(annotation, Path(folder) / "again.json")
        assert read_labelme(path) == annotation


def parse_or_refuse(obj: Any) -> None:
    try:
        annotation = parse_labelme(copy.deepcopy(obj))
    except AnnotationFileError as error:
        assert error.message
        return
    accepted_round_trips(annotation)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_any_json_value_is_parsed_or_refused(value):
    parse_or_refuse(value)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labelme_objects())
def test_mutated_labelme_objects_are_parsed_or_refused(obj):
    parse_or_refuse(obj)


VALID = labelme(
    [
        rect("OVCF", 10, 10, 50, 40, score=0.9, level="L1"),
        rect("vertebra", 10, 10, 50, 40.5),
        {"label": "tip", "points": [[5, 5]], "shape_type": "point"},
    ],
    reader="dr_a",
)


@st.composite
def mutated_files(draw) -> bytes:
    data = bytearray(json.dumps(VALID).encode())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, len(data) - 1)) if data else 0
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif data:
            del data[at : at + draw(st.integers(1, 8))]
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | mutated_files() | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_are_read_or_refused(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.json"
        path.write_bytes(content)
        try:
            annotation = read_labelme(path)
        except AnnotationFileError as error:
            assert str(error).startswith(f"{path}: ")
            return
    accepted_round_trips(annotation)
