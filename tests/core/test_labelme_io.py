"""LabelMe JSON: reading every variant DESIGN.md lists, and writing files labelme opens, atomically."""

from __future__ import annotations

import base64
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.annotations.geometry import iou
from core.annotations.labelme_io import parse_labelme, read_labelme, to_labelme, write_labelme
from core.annotations.model import DISEASES, LEVELS, Box, Disease, SliceAnnotation, Vertebra
from core.errors import FileWriteError
from core.imaging.png_io import png_bytes

OVCF, OF, SN, KD, PS = Disease.OVCF, Disease.OF, Disease.SN, Disease.KD, Disease.PS


def labelme(shapes: list, *, width: int = 200, height: int = 400, **top) -> dict:
    """A LabelMe 5.0.1 file as labelme itself writes it."""
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


def rect(label: str, x1: float, y1: float, x2: float, y2: float, **keys) -> dict:
    shape = {
        "label": label,
        "points": [[x1, y1], [x2, y2]],
        "group_id": None,
        "shape_type": "rectangle",
        "flags": {},
    }
    shape.update(keys)
    return shape


def dump(path: Path, obj: dict) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def embedded(width: int, height: int, fmt: str = "PNG") -> str:
    if fmt == "PNG":
        data = png_bytes(np.zeros((height, width), dtype=np.uint8))
    else:
        buffer = io.BytesIO()
        Image.new("L", (width, height)).save(buffer, format=fmt)
        data = buffer.getvalue()
    return base64.b64encode(data).decode("ascii")


def rich_annotation() -> SliceAnnotation:
    """Every field set, with floats that only survive an exact round trip."""
    return SliceAnnotation(
        image_width=743,
        image_height=619,
        vertebrae=(
            Vertebra(
                Box(0.1 + 0.2, 1 / 3, 101.12345678901234, 90.5),
                diseases={OVCF, KD},
                probabilities={"OVCF": 0.91, "OF": 0.01, "SN": 1e-9, "KD": 0.6, "PS": 0.0, "NORMAL": 0.02},
                score=0.987654321,
                level="L1",
                source="model",
                group_id=3,
                description="vacuum cleft",
                genant=3,
            ),
            Vertebra(
                Box(10.0, 100.0, 120.75, 180.25),
                level="L2",
                source="dr_a",
                other_flags={"uncertain": True},
                extra={"colour": [255, 0, 0], "note": {"k": [1, 2.5, None]}},
            ),
            Vertebra(Box(12.5, 190.0, 125.0, 260.0), diseases={PS, OF, SN}, source="dr_b", group_id=0),
            Vertebra(Box(742.0, 618.0, 743.0, 619.0), source="dr_a", description="tiny box at the corner"),
        ),
        image_path="../../images/case1/s01.png",
        reader="dr_a",
        model="vd-resnet18-0003",
        reviewed=True,
        flags={"motion": False, "good": True},
        thresholds={"OVCF": 0.2573, "OF": 0.41, "SN": 0.5, "KD": 0.3923, "PS": 0.79},
        other_shapes=({"label": "tip", "points": [[5.0, 5.0]], "group_id": None, "shape_type": "point", "flags": {}},),
        extra={"lineColor": [0, 255, 0, 128], "study": {"case": "c1", "slice": 7}},
    )


# ---------------------------------------------------------------------------------------------------------------
# Our own files


def test_round_trip_gives_equal_annotation(tmp_path):
    original = rich_annotation()
    path = write_labelme(original, tmp_path / "a.json")
    again = read_labelme(path)
    assert again == original
    for before, after in zip(original.vertebrae, again.vertebrae, strict=True):
        assert [float.hex(float(v)) for v in after.box.as_list()] == [float.hex(float(v)) for v in before.box.as_list()]
        assert after.diseases == before.diseases
        assert after.probabilities == before.probabilities
        assert after.score == before.score
        assert after.level == before.level
        assert after.source == before.source
        assert after.group_id == before.group_id
        assert after.description == before.description
        assert after.other_flags == before.other_flags
        assert after.extra == before.extra
        assert after.genant == before.genant
    assert (again.reader, again.model, again.reviewed) == ("dr_a", "vd-resnet18-0003", True)
    assert dict(again.thresholds) == {"OVCF": 0.2573, "OF": 0.41, "SN": 0.5, "KD": 0.3923, "PS": 0.79}
    assert again.other_shapes == original.other_shapes
    assert dict(again.extra) == dict(original.extra)


def test_second_round_trip_writes_identical_bytes(tmp_path):
    first = write_labelme(rich_annotation(), tmp_path / "1.json")
    second = write_labelme(read_labelme(first), tmp_path / "2.json")
    assert first.read_bytes() == second.read_bytes()


def test_empty_slice_round_trips(tmp_path):
    empty = SliceAnnotation(image_width=10, image_height=20)
    assert read_labelme(write_labelme(empty, tmp_path / "e.json")) == empty


def test_parse_of_to_labelme_is_identity():
    original = rich_annotation()
    assert parse_labelme(json.loads(json.dumps(to_labelme(original)))) == original


# ---------------------------------------------------------------------------------------------------------------
# What we write


def test_written_file_has_labelme_rectangles(tmp_path):
    path = write_labelme(rich_annotation(), tmp_path / "a.json")
    text = path.read_text(encoding="utf-8")

    def no_constants(name):
        raise AssertionError(f"{name} written to strict JSON")

    obj = json.loads(text, parse_constant=no_constants)
    assert obj["version"] == "5.0.1"
    assert (obj["imageWidth"], obj["imageHeight"]) == (743, 619)
    assert obj["imagePath"] == "../../images/case1/s01.png"
    assert obj["imageData"] is None
    assert (obj["reader"], obj["model"], obj["reviewed"]) == ("dr_a", "vd-resnet18-0003", True)
    assert obj["flags"] == {"motion": False, "good": True}
    rectangles = [s for s in obj["shapes"] if s["shape_type"] == "rectangle"]
    assert len(rectangles) == 4
    codes = [d.value for d in DISEASES]
    for shape in rectangles:
        assert len(shape["points"]) == 2 and all(len(p) == 2 for p in shape["points"])
        assert shape["group_id"] is None or type(shape["group_id"]) is int
        assert isinstance(shape["description"], str)
        assert {"score", "probabilities", "level", "source"} <= shape.keys()
        assert set(codes) <= shape["flags"].keys()
        assert all(type(shape["flags"][c]) is bool for c in codes)
        named = shape["label"].split("+")
        assert [c for c in codes if shape["flags"][c]] == ([] if named == ["NORMAL"] else named)
    first, second, third, fourth = rectangles
    assert first["label"] == "OVCF+KD"
    assert first["points"] == [[0.1 + 0.2, 1 / 3], [101.12345678901234, 90.5]]
    assert (first["score"], first["level"], first["source"], first["group_id"]) == (0.987654321, "L1", "model", 3)
    assert first["probabilities"]["KD"] == 0.6
    assert first["description"] == "vacuum cleft"
    assert first["genant"] == 3 and all("genant" not in shape for shape in rectangles[1:])  # only when set
    assert second["label"] == "NORMAL" and second["flags"]["uncertain"] is True
    assert second["colour"] == [255, 0, 0]
    assert (second["score"], second["probabilities"]) == (None, None)
    assert third["label"] == "OF+SN+PS" and third["group_id"] == 0
    assert fourth["level"] is None
    assert text.endswith("\n")


@pytest.mark.parametrize(
    ("diseases", "label"),
    [
        (set(), "NORMAL"),
        ({PS, OVCF}, "OVCF+PS"),
        ({KD, OVCF}, "OVCF+KD"),
        ({PS, KD, SN, OF, OVCF}, "OVCF+OF+SN+KD+PS"),
        ({SN, OF}, "OF+SN"),
        ({PS, KD}, "KD+PS"),
    ],
)
def test_label_is_codes_in_fixed_order(diseases, label):
    annotation = SliceAnnotation(50, 50, (Vertebra(Box(1, 1, 9, 9), diseases=diseases),))
    shape = to_labelme(annotation)["shapes"][0]
    assert shape["label"] == label
    assert shape["flags"] == {d.value: d in diseases for d in DISEASES}


def test_bare_vertebra_box_stays_undiagnosed_until_a_disease_is_set(tmp_path):
    path = dump(tmp_path / "p.json", labelme([rect("vertebra", 10, 10, 50, 40), rect("normal", 10, 45, 50, 80)]))
    annotation = read_labelme(path)
    bare, normal = annotation.vertebrae
    assert (bare.diagnosed, bare.label, normal.diagnosed, normal.label) == (False, "vertebra", True, "NORMAL")
    shape = to_labelme(annotation)["shapes"][0]
    assert shape["label"] == "vertebra" and not any(shape["flags"].values())
    assert read_labelme(write_labelme(annotation, tmp_path / "again.json")).vertebrae[0].diagnosed is False
    diagnosed = bare.with_changes(diseases=frozenset({Disease.OF}))
    assert diagnosed.diagnosed and diagnosed.label == "OF"


def test_non_finite_score_is_not_written_and_old_file_stays(tmp_path):
    path = write_labelme(rich_annotation(), tmp_path / "a.json")
    before = path.read_bytes()
    bad = SliceAnnotation(50, 50, (Vertebra(Box(1, 1, 9, 9), score=float("nan")),))
    with pytest.raises(FileWriteError) as info:
        write_labelme(bad, path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.json"]


def test_unserialisable_extra_is_refused_and_old_file_stays(tmp_path):
    path = write_labelme(rich_annotation(), tmp_path / "a.json")
    before = path.read_bytes()
    bad = SliceAnnotation(50, 50, extra={"thing": object()})
    with pytest.raises(FileWriteError):
        write_labelme(bad, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.json"]


def test_failed_replace_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = write_labelme(rich_annotation(), tmp_path / "a.json")
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(FileWriteError) as info:
        write_labelme(SliceAnnotation(50, 50), path)
    assert str(path) in str(info.value)
    assert "previous file is unchanged" in str(info.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.json"]


def test_read_only_folder_raises_file_write_error_naming_the_path(tmp_path, monkeypatch):
    folder = tmp_path / "readonly"
    folder.mkdir()
    path = write_labelme(rich_annotation(), folder / "a.json")
    before = path.read_bytes()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root ignores the mode: make the temporary file fail as it would

            def refused(*args, **kwargs):
                raise PermissionError(13, "Permission denied")

            monkeypatch.setattr(tempfile, "mkstemp", refused)
        with pytest.raises(FileWriteError) as info:
            write_labelme(SliceAnnotation(50, 50), path)
        assert str(path) in str(info.value)
        assert "Permission denied" in str(info.value)
        assert path.read_bytes() == before
        assert os.listdir(folder) == ["a.json"]
    finally:
        folder.chmod(0o755)


# ---------------------------------------------------------------------------------------------------------------
# The paper's style: one box per disease, plus a "vertebra" box


def test_paper_style_boxes_of_one_vertebra_are_merged(tmp_path):
    shapes = [
        rect("OVCF", 100.0, 200.0, 160.0, 240.0),
        rect("KD", 100.5, 199.5, 160.5, 240.5),
        rect("vertebra", 99.0, 199.0, 161.0, 241.0),
        rect("vertebra", 98.0, 250.0, 162.0, 292.0),
        rect("SN", 97.0, 300.0, 160.0, 340.0),
    ]
    boxes = [Box.from_points(s["points"]) for s in shapes]
    assert min(iou(boxes[i], boxes[j]) for i in range(3) for j in range(3)) >= 0.9
    annotation = read_labelme(dump(tmp_path / "paper.json", labelme(shapes)))
    assert len(annotation.vertebrae) == 3
    merged, normal, schmorl = annotation.vertebrae
    assert merged.diseases == {OVCF, KD}
    assert merged.box == Box(99.0, 199.0, 161.0, 241.0)  # the detection box is kept, wherever it comes
    assert normal.is_normal and normal.box == Box(98.0, 250.0, 162.0, 292.0)
    assert schmorl.diseases == {SN} and schmorl.box == Box(97.0, 300.0, 160.0, 340.0)


def test_disease_boxes_without_vertebra_box_merge_into_first(tmp_path):
    shapes = [
        rect("OF", 10, 10, 110, 60),
        rect("PS", 11, 10, 110, 61, description="cement"),
        rect("KD", 10, 100, 60, 150),
    ]
    annotation = read_labelme(dump(tmp_path / "p.json", labelme(shapes)))
    assert [v.diseases for v in annotation.vertebrae] == [{OF, PS}, {KD}]
    assert annotation.vertebrae[0].box == Box(10, 10, 110, 60)
    assert annotation.vertebrae[0].description == "cement"


def test_merge_keeps_level_score_and_unknown_keys_of_the_members(tmp_path):
    shapes = [
        rect("OVCF", 10, 10, 110, 60, score=0.8, flags={"acute": True}),
        rect("L2: vertebra", 10, 10, 110, 60.5, score=0.95, colour="red"),
    ]
    (vertebra,) = read_labelme(dump(tmp_path / "p.json", labelme(shapes))).vertebrae
    assert vertebra.diseases == {OVCF}
    assert vertebra.box == Box(10, 10, 110, 60.5)
    assert (vertebra.level, vertebra.score) == ("L2", 0.95)
    assert dict(vertebra.other_flags) == {"acute": True}
    assert dict(vertebra.extra) == {"colour": "red"}


@pytest.mark.parametrize(("bottom", "count"), [(89.9, 2), (90.0, 1), (95.0, 1), (80.0, 2)])
def test_merge_threshold_is_iou_0_9(tmp_path, bottom, count):
    a, b = Box(0, 0, 100, 100), Box(0, 0, 100, bottom)
    assert (iou(a, b) >= 0.9) == (count == 1)
    shapes = [rect("vertebra", 0, 0, 100, 100), rect("OVCF", 0, 0, 100, bottom)]
    annotation = read_labelme(dump(tmp_path / "t.json", labelme(shapes)))
    assert len(annotation.vertebrae) == count
    assert {OVCF} == set().union(*(v.diseases for v in annotation.vertebrae))
    if count == 2:
        assert [v.box for v in annotation.vertebrae] == [a, b]
        assert annotation.vertebrae[0].is_normal


def test_merge_keeps_the_highest_genant_grade_of_the_members(tmp_path):
    shapes = [
        rect("vertebra", 10, 10, 110, 60, genant=1),
        rect("OVCF", 10, 10, 110, 60.5, genant=2),
        rect("KD", 10, 10, 110, 60),
        rect("vertebra", 10, 100, 110, 150),
        rect("OF", 10, 100, 110, 150.5),
    ]
    graded, ungraded = read_labelme(dump(tmp_path / "p.json", labelme(shapes))).vertebrae
    assert graded.diseases == {OVCF, KD} and graded.genant == 2
    assert ungraded.diseases == {OF} and ungraded.genant is None


def test_paper_style_read_then_written_reads_back_the_same(tmp_path):
    shapes = [rect("OVCF", 100, 200, 160, 240), rect("vertebra", 99, 199, 161, 241), rect("kd", 100, 200, 160, 240)]
    first = read_labelme(dump(tmp_path / "p.json", labelme(shapes)))
    assert read_labelme(write_labelme(first, tmp_path / "ours.json")) == first


# ---------------------------------------------------------------------------------------------------------------
# Polygons, labels, image data, paths, unknown keys, flags, readers


def test_polygon_becomes_its_bounding_box(tmp_path):
    polygon = {
        "label": "OVCF",
        "points": [[30.5, 12.0], [70.0, 15.25], [72.75, 50.0], [28.0, 48.0], [31.0, 30.0]],
        "group_id": None,
        "shape_type": "polygon",
        "flags": {},
    }
    (vertebra,) = read_labelme(dump(tmp_path / "p.json", labelme([polygon]))).vertebrae
    assert vertebra.box == Box(28.0, 12.0, 72.75, 50.0)
    assert vertebra.diseases == {OVCF}


def test_shape_without_shape_type_is_a_polygon(tmp_path):
    old_style = {"label": "vertebra", "points": [[1, 2], [30, 2], [30, 40], [1, 40]]}
    (vertebra,) = read_labelme(dump(tmp_path / "p.json", labelme([old_style]))).vertebrae
    assert vertebra.box == Box(1, 2, 30, 40)


def test_rectangle_corners_in_any_order(tmp_path):
    (vertebra,) = read_labelme(dump(tmp_path / "p.json", labelme([rect("SN", 50, 60, 10, 20)]))).vertebrae
    assert vertebra.box == Box(10, 20, 50, 60)


@pytest.mark.parametrize(
    ("label", "diseases", "level"),
    [
        ("OVCF", {OVCF}, None),
        ("ovcf", {OVCF}, None),
        ("Ovcf+Kd", {OVCF, KD}, None),
        ("OVCF, KD", {OVCF, KD}, None),
        ("of + ps", {OF, PS}, None),
        ("compression fracture", {OVCF}, None),
        ("Compression Fracture", {OVCF}, None),
        ("Kummell", {KD}, None),
        ("Kümmell", {KD}, None),
        ("Schmorl's node", {SN}, None),
        ("kyphoplasty", {PS}, None),
        ("old fracture", {OF}, None),
        ("normal", set(), None),
        ("NORMAL", set(), None),
        ("L3: OVCF", {OVCF}, "L3"),
        ("t12 old fracture, Schmorl's node", {OF, SN}, "T12"),
    ],
)
def test_labels_in_files(tmp_path, label, diseases, level):
    (vertebra,) = read_labelme(dump(tmp_path / "l.json", labelme([rect(label, 10, 10, 50, 40)]))).vertebrae
    assert vertebra.diseases == diseases
    assert vertebra.level == level


def test_level_from_label_survives_an_explicit_null_level(tmp_path):
    shape = rect("L4: OVCF", 10, 10, 50, 40, level=None)
    (vertebra,) = read_labelme(dump(tmp_path / "l.json", labelme([shape]))).vertebrae
    assert vertebra.level == "L4"


def test_level_key_wins_and_any_case_is_accepted(tmp_path):
    shapes = [rect("L4: OVCF", 10, 10, 50, 40, level="l5"), rect("KD", 10, 100, 50, 140, level="S1")]
    levels = [v.level for v in read_labelme(dump(tmp_path / "l.json", labelme(shapes))).vertebrae]
    assert levels == ["L5", "S1"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_embedded_image_data_is_read_and_written_back(tmp_path, fmt):
    data = embedded(64, 48, fmt)
    obj = labelme([rect("OVCF", 1, 1, 20, 20)], width=64, height=48, imageData=data)
    annotation = read_labelme(dump(tmp_path / "e.json", obj), image_size=(64, 48))
    assert annotation.image_data == data
    assert (annotation.image_width, annotation.image_height) == (64, 48)
    written = json.loads(write_labelme(annotation, tmp_path / "w.json").read_text(encoding="utf-8"))
    assert written["imageData"] == data
    assert read_labelme(tmp_path / "w.json") == annotation


def test_embedded_image_gives_the_size_when_it_is_not_declared(tmp_path):
    obj = labelme([], imageData=embedded(33, 17))
    del obj["imageWidth"], obj["imageHeight"]
    annotation = read_labelme(dump(tmp_path / "e.json", obj))
    assert (annotation.image_width, annotation.image_height) == (33, 17)


def test_real_image_size_gives_the_size_when_it_is_not_declared(tmp_path):
    obj = labelme([rect("OVCF", 1, 1, 20, 20)])
    del obj["imageWidth"], obj["imageHeight"]
    annotation = read_labelme(dump(tmp_path / "e.json", obj), image_size=(743, 619))
    assert (annotation.image_width, annotation.image_height) == (743, 619)


def test_null_image_data_stays_null(tmp_path):
    annotation = read_labelme(dump(tmp_path / "n.json", labelme([], imageData=None)))
    assert annotation.image_data is None
    assert json.loads(write_labelme(annotation, tmp_path / "w.json").read_text())["imageData"] is None


@pytest.mark.parametrize(
    ("windows", "posix"),
    [
        ("..\\images\\case1\\s01.png", "../images/case1/s01.png"),
        ("C:\\Users\\reader\\CT\\s01.jpg", "C:/Users/reader/CT/s01.jpg"),
        ("images\\s01.png", "images/s01.png"),
        ("images/s01.png", "images/s01.png"),
        ("s01.png", "s01.png"),
    ],
)
def test_windows_image_paths_become_posix(tmp_path, windows, posix):
    annotation = read_labelme(dump(tmp_path / "w.json", labelme([], imagePath=windows)))
    assert annotation.image_path == posix
    assert json.loads(write_labelme(annotation, tmp_path / "o.json").read_text())["imagePath"] == posix


def test_unknown_keys_are_kept_and_written_back_unchanged(tmp_path):
    shape = rect("OVCF", 10, 10, 50, 40, other_data={"by": "tool", "v": [1, 2.5, None, True]}, lineColor=None)
    obj = labelme(
        [shape],
        lineColor=[0, 255, 0, 128],
        fillColor=[255, 0, 0, 128],
        custom={"nested": {"list": [1, "two", 3.0]}},
    )
    out = to_labelme(read_labelme(dump(tmp_path / "u.json", obj)))
    for key in ("lineColor", "fillColor", "custom"):
        assert out[key] == obj[key]
    assert out["shapes"][0]["other_data"] == shape["other_data"]
    assert "lineColor" in out["shapes"][0] and out["shapes"][0]["lineColor"] is None
    again = json.loads(write_labelme(read_labelme(dump(tmp_path / "u.json", obj)), tmp_path / "o.json").read_text())
    assert again["custom"] == obj["custom"]
    assert again["shapes"][0]["other_data"] == shape["other_data"]


@pytest.mark.parametrize("grade", [0, 1, 2, 3])
def test_genant_grade_is_read_and_written(tmp_path, grade):
    obj = labelme([rect("OVCF", 10, 10, 50, 40, level="L1", genant=grade), rect("NORMAL", 10, 50, 50, 80, genant=None)])
    annotation = read_labelme(dump(tmp_path / "g.json", obj))
    assert [v.genant for v in annotation.vertebrae] == [grade, None]
    assert all("genant" not in v.extra for v in annotation.vertebrae)
    shapes = json.loads(write_labelme(annotation, tmp_path / "o.json").read_text())["shapes"]
    assert shapes[0]["genant"] == grade and "genant" not in shapes[1]


def test_a_file_without_grades_is_written_as_before(tmp_path):
    annotation = SliceAnnotation(60, 60, (Vertebra(Box(1, 1, 9, 9), level="L1", extra={"genant": 9}),))
    (shape,) = to_labelme(annotation)["shapes"]
    assert "genant" not in shape  # an unknown key of that name cannot stand in for the grade


def test_our_keys_are_not_duplicated_from_extra(tmp_path):
    annotation = SliceAnnotation(50, 50, extra={"custom": 1})
    out = to_labelme(annotation)
    assert list(out).count("reader") == 1
    assert out["custom"] == 1


def test_thresholds_are_written_only_with_a_models_result(tmp_path):
    """A reader's file carries no ``thresholds`` key (it stays as labelme users know it); a result's thresholds win
    over an unknown key of that name, and a file without them reads as None."""
    reader_file = to_labelme(SliceAnnotation(50, 50, reader="r1", extra={"thresholds": "theirs"}))
    assert "thresholds" not in reader_file
    result = to_labelme(SliceAnnotation(50, 50, model="m", thresholds={"OVCF": 0.26}, extra={"thresholds": "x"}))
    assert result["thresholds"] == {"OVCF": 0.26}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({k: v for k, v in result.items() if k != "thresholds"}))
    assert read_labelme(path).thresholds is None
    path.write_text(json.dumps(result | {"thresholds": {"ovcf": 0.3}}))
    assert dict(read_labelme(path).thresholds) == {"OVCF": 0.3}  # class codes in any case, like probabilities


def test_non_box_shapes_are_kept_and_written_back(tmp_path):
    others = [
        {"label": "tip", "points": [[5.0, 6.0]], "group_id": None, "shape_type": "point", "flags": {}},
        {"label": "axis", "points": [[5, 6], [50, 300]], "group_id": 2, "shape_type": "line", "flags": {"a": True}},
        {"label": "canal", "points": [[1, 1], [2, 3], [4, 9]], "group_id": None, "shape_type": "linestrip"},
        {"label": "whatever", "points": [[10, 10], [15, 10]], "shape_type": "circle", "description": "x"},
    ]
    obj = labelme([rect("OVCF", 10, 10, 50, 40), *others])
    annotation = read_labelme(dump(tmp_path / "s.json", obj))
    assert len(annotation.vertebrae) == 1
    assert [dict(s) for s in annotation.other_shapes] == others
    written = json.loads(write_labelme(annotation, tmp_path / "o.json").read_text())
    assert [s for s in written["shapes"] if s["shape_type"] != "rectangle"] == others


def test_true_disease_flags_are_added_and_unknown_flags_kept(tmp_path):
    shape = rect("OF", 10, 10, 50, 40, flags={"KD": True, "ps": True, "SN": False, "uncertain": True, "x": False})
    obj = labelme([shape], flags={"motion_artefact": True, "reviewed_twice": False})
    annotation = read_labelme(dump(tmp_path / "f.json", obj))
    (vertebra,) = annotation.vertebrae
    assert vertebra.diseases == {OF, KD, PS}
    assert dict(vertebra.other_flags) == {"uncertain": True, "x": False}
    assert dict(annotation.flags) == {"motion_artefact": True, "reviewed_twice": False}
    written = json.loads(write_labelme(annotation, tmp_path / "o.json").read_text())
    flags = written["shapes"][0]["flags"]
    assert flags == {"OVCF": False, "OF": True, "SN": False, "KD": True, "PS": True, "uncertain": True, "x": False}
    assert written["shapes"][0]["label"] == "OF+KD+PS"
    assert written["flags"] == obj["flags"]


def test_flag_on_a_vertebra_box_makes_it_diseased(tmp_path):
    shapes = [rect("vertebra", 10, 10, 50, 40, flags={"OVCF": True}), rect("OVCF", 10, 10, 50, 40.5)]
    (vertebra,) = read_labelme(dump(tmp_path / "f.json", labelme(shapes))).vertebrae
    assert vertebra.diseases == {OVCF}


def test_reader_fills_in_shapes_without_source(tmp_path):
    shapes = [rect("OVCF", 10, 10, 50, 40, source="model"), rect("KD", 10, 100, 50, 140), rect("SN", 10, 200, 50, 240)]
    shapes[2]["source"] = None
    annotation = read_labelme(dump(tmp_path / "r.json", labelme(shapes, reader="dr_b")))
    assert annotation.reader == "dr_b"
    assert [v.source for v in annotation.vertebrae] == ["model", "dr_b", "dr_b"]
    anonymous = read_labelme(dump(tmp_path / "a.json", labelme(shapes)))
    assert anonymous.reader is None
    assert [v.source for v in anonymous.vertebrae] == ["model", "", ""]


def test_top_level_optionals_may_be_null_or_missing(tmp_path):
    obj = labelme([], reviewed=None, reader=None, model=None, flags=None, imagePath=None)
    annotation = read_labelme(dump(tmp_path / "n.json", obj))
    assert (annotation.reviewed, annotation.reader, annotation.model) == (False, None, None)
    assert dict(annotation.flags) == {} and annotation.image_path == ""
    bare = read_labelme(dump(tmp_path / "b.json", {"imageWidth": 10, "imageHeight": 10}))
    assert bare == SliceAnnotation(10, 10)


def test_labelme_6_file_with_description_and_mask_keys(tmp_path):
    obj = labelme(
        [rect("OVCF", 10, 10, 50, 40, description="acute", mask=None), rect("PS", 10, 100, 50, 140, description="")],
        version="5.5.0",
    )
    annotation = read_labelme(dump(tmp_path / "six.json", obj))
    assert [v.description for v in annotation.vertebrae] == ["acute", ""]
    assert all("mask" not in v.extra for v in annotation.vertebrae)


def test_utf8_bom_and_non_ascii_text_are_read(tmp_path):
    obj = labelme([rect("Kümmell", 10, 10, 50, 40, description="Spalt im Wirbelkörper")], reader="Dr. Øster")
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(obj, ensure_ascii=False).encode("utf-8"))
    annotation = read_labelme(path)
    assert annotation.reader == "Dr. Øster"
    assert annotation.vertebrae[0].description == "Spalt im Wirbelkörper"
    assert "Wirbelkörper".encode() in write_labelme(annotation, tmp_path / "o.json").read_bytes()


def test_all_levels_round_trip(tmp_path):
    vertebrae = tuple(Vertebra(Box(1, 10 * i + 1, 50, 10 * i + 9), level=level) for i, level in enumerate(LEVELS))
    annotation = SliceAnnotation(60, 10 * len(LEVELS) + 10, vertebrae)
    assert read_labelme(write_labelme(annotation, tmp_path / "lv.json")) == annotation


def test_lone_surrogate_in_text_is_written_escaped_and_read_back(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(labelme([rect("OVCF", 10, 10, 50, 40, description="a\ud800b")], note="\udfff")))
    annotation = read_labelme(path)
    assert annotation.vertebrae[0].description == "a\ud800b"
    written = write_labelme(annotation, tmp_path / "o.json")
    assert read_labelme(written) == annotation
