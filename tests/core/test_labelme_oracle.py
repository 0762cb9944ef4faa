"""labelme itself as the oracle for our LabelMe JSON: files we write open in labelme 5.0.1 and 6.x, and files labelme
writes are read by us and survive our writer.

labelme (PyQt5) runs in its own virtual environment under ``tests/.oracle/``, in a subprocess that stays up for the
session (``tests/oracle/labelme_probe.py serve``); see ``tests/oracle/labelme_env.py``. Building the venvs needs the
package index the first time; a failed build fails these tests, it never skips them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.annotations.labelme_io import read_labelme, write_labelme
from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.imaging.png_io import png_bytes, write_png
from core.progress import run
from core.study.exporter import export_study
from core.study.importer import ImportOptions, import_source
from core.study.layout import Study
from tests.oracle.labelme_env import VERSIONS, LabelmeOracle, LabelmeProbe, OracleProbeError, ensure_oracle

pytestmark = [pytest.mark.oracle, pytest.mark.slow]  # builds (once) and runs labelme in its own venv

WIDTH, HEIGHT = 96, 64  # not square, so a swapped width and height shows
CODES = [d.value for d in Disease]


class Labelme:
    """One labelme version for a test: its probe, or a test failure that says why the oracle is missing."""

    def __init__(self, version: str, probes: dict[str, LabelmeProbe | str], oracles: dict[str, LabelmeOracle]):
        self.version = version
        self._probes = probes
        self._oracles = oracles

    def _probe(self) -> LabelmeProbe:
        probe = self._probes.get(self.version)
        if isinstance(probe, str):
            pytest.fail(f"the labelme {self.version} oracle could not be built:\n{probe}", pytrace=False)
        if probe is None:
            probe = self._probes[self.version] = self._oracles[self.version].probe()
        return probe

    def _call(self, method: str, args: Any) -> list[dict[str, Any]]:
        probe = self._probe()
        try:
            return getattr(probe, method)(args)
        except OracleProbeError:
            probe.close()  # the next test starts a fresh probe
            del self._probes[self.version]
            raise

    def load(self, paths: Iterable[Path]) -> list[dict[str, Any]]:
        return self._call("load", list(paths))

    def save(self, pairs: Iterable[tuple[Path, Path]]) -> list[dict[str, Any]]:
        return self._call("save", list(pairs))


@pytest.fixture(scope="session")
def labelme_probes() -> Iterator[tuple[dict[str, LabelmeProbe | str], dict[str, LabelmeOracle]]]:
    probes: dict[str, LabelmeProbe | str] = {}
    oracles: dict[str, LabelmeOracle] = {}
    for version in VERSIONS:
        try:
            oracles[version] = ensure_oracle(version)
        except Exception as exc:  # any failure to build must fail the tests, with the reason
            probes[version] = f"{type(exc).__name__}: {exc}"
    yield probes, oracles
    for probe in probes.values():
        if isinstance(probe, LabelmeProbe):
            probe.close()


@pytest.fixture(params=VERSIONS, ids=lambda version: f"labelme-{version}")
def labelme(request: pytest.FixtureRequest, labelme_probes) -> Labelme:
    return Labelme(request.param, *labelme_probes)


# -- what to expect ---------------------------------------------------------------------------------------------------


def grey_pixels(width: int = WIDTH, height: int = HEIGHT, dtype: str = "uint8") -> np.ndarray:
    scale = 255 if dtype == "uint8" else 4000
    ramp = np.linspace(0, scale, width * height).reshape(height, width)
    return ramp.astype(dtype)


def probabilities(top: str, p: float) -> dict[str, float]:
    rest = (1.0 - p) / 5
    return {code: (p if code == top else rest) for code in [*CODES, "NORMAL"]}


def sample_annotation(image_path: str = "slice-007.png") -> SliceAnnotation:
    """Several vertebrae: NORMAL, one disease, two diseases, with levels, probabilities, scores, provenance and a
    Genant grade."""
    vertebrae = (
        Vertebra(Box(10, 2, 40, 14.5), level="T12", source="r1"),
        Vertebra(
            Box(11.25, 16, 41, 28),
            {Disease.OVCF},
            probabilities=probabilities("OVCF", 0.9),
            score=0.93,
            level="L1",
            source="model",
            group_id=1,
            description="acute, 30 % height loss",
            genant=2,
        ),
        Vertebra(
            Box(12, 30, 42.5, 41),
            {Disease.KD, Disease.OVCF},
            probabilities=probabilities("KD", 0.6),
            score=0.71,
            level="L2",
            source="r1",
            group_id=2,
            description="Kümmell: intravertebral cleft",
        ),
        Vertebra(Box(13, 43, 43, 54), {Disease.PS, Disease.OF}, level="L3", source="r2", group_id=2),
        Vertebra(Box(50, 43, 96, 64), {Disease.SN}, source="r1", other_flags={"uncertain": True}),
    )
    return SliceAnnotation(
        WIDTH,
        HEIGHT,
        vertebrae,
        image_path=image_path,
        reader="r1",
        model="detector-v3",
        reviewed=True,
        flags={"motion_artifact": False, "needs_second_read": True},
        thresholds={"OVCF": 0.2573, "OF": 0.4098, "SN": 0.4806, "KD": 0.3923, "PS": 0.7905},
    )


def description_of(shape: Mapping[str, Any]) -> Any:
    """labelme 6 loads ``description`` as a field; 5.0.1 does not know it and keeps it in ``other_data``."""
    return shape["description"] if "description" in shape else shape["other_data"].get("description")


def assert_opened(result: Mapping[str, Any], version: str, size: tuple[int, int]) -> None:
    """labelme loaded the file, decoded an image of ``size``, built its shapes and logged no complaint."""
    assert result["ok"], f"labelme {version} refused {result['file']}: {result.get('error')}"
    assert result["image_size"] == list(size), f"{result['file']}: labelme decoded a {result['image_size']} image"
    assert result["qt_image_size"] == list(size), f"{result['file']}: the labelme window cannot show the image"
    assert "app_shapes_error" not in result, result.get("app_shapes_error")
    assert result["app_shapes"] == len(result["shapes"])
    assert result["log"] == [], f"labelme {version} complained about {result['file']}: {result['log']}"


def assert_same_vertebra(shape: Mapping[str, Any], vertebra: Vertebra) -> None:
    box = vertebra.box
    assert shape["label"] == vertebra.label
    assert shape["shape_type"] == "rectangle"
    assert shape["points"] == [[box.x1, box.y1], [box.x2, box.y2]]
    assert all(isinstance(value, bool) for value in shape["flags"].values())
    assert {k: v for k, v in shape["flags"].items() if k in CODES} == {d.value: d in vertebra.diseases for d in Disease}
    assert {k: v for k, v in shape["flags"].items() if k not in CODES} == dict(vertebra.other_flags)
    assert shape["group_id"] == vertebra.group_id
    assert description_of(shape) == vertebra.description
    other = shape["other_data"]
    expected_probabilities = None if vertebra.probabilities is None else dict(vertebra.probabilities)
    assert (other["score"], other["probabilities"]) == (vertebra.score, expected_probabilities)
    assert (other["level"], other["source"]) == (vertebra.level, vertebra.source)
    assert other.get("genant") == vertebra.genant  # written only when set
    for key, value in vertebra.extra.items():
        assert other[key] == value


def assert_same_annotation(result: Mapping[str, Any], annotation: SliceAnnotation) -> None:
    shapes = result["shapes"]
    assert len(shapes) == len(annotation.vertebrae) + len(annotation.other_shapes)
    for shape, vertebra in zip(shapes, annotation.vertebrae, strict=False):
        assert_same_vertebra(shape, vertebra)
    assert result["flags"] == dict(annotation.flags)
    other = result["otherData"]
    assert (other["reader"], other["model"], other["reviewed"]) == (
        annotation.reader,
        annotation.model,
        annotation.reviewed,
    )
    expected_thresholds = None if annotation.thresholds is None else dict(annotation.thresholds)
    assert other.get("thresholds") == expected_thresholds


# -- 1. files we write open in labelme --------------------------------------------------------------------------------


def test_our_files_open_unchanged_in_labelme(labelme: Labelme, tmp_path: Path) -> None:
    annotation = sample_annotation()
    write_png(tmp_path / "slice-007.png", grey_pixels())
    beside = write_labelme(annotation, tmp_path / "slice-007.json")
    png = png_bytes(grey_pixels())
    embedded_annotation = annotation.with_changes(
        image_path="not-on-disk.png", image_data=base64.b64encode(png).decode("ascii")
    )
    embedded = write_labelme(embedded_annotation, tmp_path / "embedded" / "slice-008.json")

    results = labelme.load([beside, embedded])

    for result in results:
        assert_opened(result, labelme.version, (WIDTH, HEIGHT))
        assert_same_annotation(result, annotation)
        assert [s["label"] for s in result["shapes"]] == ["NORMAL", "OVCF", "OVCF+KD", "OF+PS", "SN"]
        assert all(len(s["points"]) == 2 for s in result["shapes"])
    assert results[0]["imagePath"] == "slice-007.png"
    assert results[1]["imagePath"] == "not-on-disk.png"
    assert read_labelme(embedded).image_data == embedded_annotation.image_data


def test_unknown_keys_we_read_are_written_back_and_labelme_sees_them(labelme: Labelme, tmp_path: Path) -> None:
    write_png(tmp_path / "images" / "slice-001.png", grey_pixels())
    original = {
        "version": "4.5.13",
        "flags": {"motion_artifact": True},
        "shapes": [
            {
                "label": "L2: compression fracture",
                "points": [[10, 20], [40, 35]],
                "group_id": 3,
                "shape_type": "rectangle",
                "flags": {"uncertain": True},
                "attributes": {"confidence": "high", "seen_by": ["a", "b"]},
                "track_id": 7,
            },
            {"label": "Kummell", "points": [[50, 10], [80, 12], [82, 40], [52, 38]], "shape_type": "polygon"},
            {"label": "landmark", "points": [[5, 6]], "shape_type": "point", "flags": {}, "note": "S1 tip"},
        ],
        "imagePath": "images\\slice-001.png",
        "imageData": None,
        "imageHeight": HEIGHT,
        "imageWidth": WIDTH,
        "studyUID": "1.2.826.0.1.3680043.8.498.1",
        "custom_meta": {"scanner": "phantom", "nested": [1, 2, {"a": None}]},
    }
    source = tmp_path / "from-another-tool.json"
    source.write_text(json.dumps(original), encoding="utf-8")
    rewritten = write_labelme(read_labelme(source), tmp_path / "rewritten.json")

    (result,) = labelme.load([rewritten])

    assert_opened(result, labelme.version, (WIDTH, HEIGHT))
    assert result["imagePath"] == "images/slice-001.png"
    assert result["flags"] == {"motion_artifact": True}
    assert result["otherData"]["studyUID"] == original["studyUID"]
    assert result["otherData"]["custom_meta"] == original["custom_meta"]
    shapes = {shape["label"]: shape for shape in result["shapes"]}
    assert sorted(shapes) == ["KD", "OVCF", "landmark"]
    fracture = shapes["OVCF"]
    assert fracture["points"] == [[10.0, 20.0], [40.0, 35.0]]
    assert fracture["flags"] == {"OVCF": True, "OF": False, "SN": False, "KD": False, "PS": False, "uncertain": True}
    assert fracture["group_id"] == 3
    assert fracture["other_data"]["level"] == "L2"
    assert fracture["other_data"]["attributes"] == {"confidence": "high", "seen_by": ["a", "b"]}
    assert fracture["other_data"]["track_id"] == 7
    assert shapes["KD"]["points"] == [[50.0, 10.0], [82.0, 40.0]]
    assert shapes["KD"]["shape_type"] == "rectangle"
    landmark = shapes["landmark"]
    assert (landmark["shape_type"], landmark["points"]) == ("point", [[5, 6]])
    assert landmark["other_data"]["note"] == "S1 tip"


# -- 2. files labelme writes are read by us ---------------------------------------------------------------------------

ALL_FALSE = dict.fromkeys(CODES, False)


def labelme_shape(label: str, points: list[list[float]], shape_type: str = "rectangle", **fields: Any) -> dict:
    return {"label": label, "points": points, "shape_type": shape_type, "flags": {}, "group_id": None, **fields}


OUR_STYLE_SHAPES = [
    labelme_shape("OVCF+KD", [[10.5, 3.25], [40, 15]], flags={**ALL_FALSE, "OVCF": True, "KD": True}, group_id=1),
    labelme_shape("NORMAL", [[11, 17], [41, 28.75]], flags=ALL_FALSE, description="clean endplates"),
    labelme_shape("PS", [[12, 30], [42, 41]], flags={**ALL_FALSE, "PS": True}, other_data={"level": "L3", "genant": 1}),
]
PAPER_STYLE_SHAPES = [
    labelme_shape("vertebra", [[10, 20], [40, 32]]),
    labelme_shape("compression fracture", [[10.4, 20.2], [40, 32]]),
    labelme_shape("Kummell", [[10, 20], [40.3, 32]]),
    labelme_shape("vertebra", [[12, 2], [42, 14]]),
    labelme_shape("Schmorl's node", [[13, 34], [43, 46]]),
    labelme_shape("old fracture", [[50, 10], [80, 12], [82, 24], [52, 22]], "polygon"),
    labelme_shape("L4: vertebroplasty", [[50, 40], [85, 55]]),
]
#: What the paper-style file means: (label, box) of each vertebra after merging the boxes of one vertebra.
PAPER_STYLE_MEANING = [
    ("OVCF+KD", [10, 20, 40, 32]),
    ("vertebra", [12, 2, 42, 14]),  # a detection box with no disease box: not diagnosed (NORMAL for training)
    ("SN", [13, 34, 43, 46]),
    ("OF", [50, 10, 82, 24]),
    ("PS", [50, 40, 85, 55]),
]


def save_spec(path: Path, shapes: list[dict], *, embed_image: bool) -> Path:
    spec = {
        "image_path": "slice.png",
        "embed_image": embed_image,
        "flags": {"motion_artifact": False},
        "other_data": {},
        "shapes": shapes,
    }
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def view(result: Mapping[str, Any]) -> list[tuple[str, list, dict, Any, Any]]:
    return [(s["label"], s["points"], s["flags"], s["group_id"], description_of(s) or "") for s in result["shapes"]]


def test_files_labelme_writes_are_read_and_survive_our_writer(labelme: Labelme, tmp_path: Path) -> None:
    write_png(tmp_path / "slice.png", grey_pixels())
    ours, paper = tmp_path / "our-style.json", tmp_path / "paper-style.json"
    saved = labelme.save(
        [
            (ours, save_spec(tmp_path / "ours.spec", OUR_STYLE_SHAPES, embed_image=False)),
            (paper, save_spec(tmp_path / "paper.spec", PAPER_STYLE_SHAPES, embed_image=True)),
        ]
    )
    for result in saved:
        assert result["ok"], f"labelme {labelme.version} could not save: {result.get('error')}"
    assert json.loads(ours.read_text(encoding="utf-8"))["version"] == labelme.version

    read_ours, read_paper = read_labelme(ours), read_labelme(paper)

    assert (read_ours.image_width, read_ours.image_height) == (WIDTH, HEIGHT)
    assert [(v.label, v.box.as_list(), v.group_id) for v in read_ours.vertebrae] == [
        ("OVCF+KD", [10.5, 3.25, 40, 15], 1),
        ("NORMAL", [11, 17, 41, 28.75], None),
        ("PS", [12, 30, 42, 41], None),
    ]
    assert read_ours.vertebrae[1].description == "clean endplates"
    assert (read_ours.vertebrae[2].level, read_ours.vertebrae[2].genant) == ("L3", 1)
    assert read_paper.image_data is not None
    assert [(v.label, v.box.as_list()) for v in read_paper.vertebrae] == PAPER_STYLE_MEANING
    assert read_paper.vertebrae[-1].level == "L4"

    rewritten_ours = write_labelme(read_ours, tmp_path / "our-style.rewritten.json")
    rewritten_paper = write_labelme(read_paper, tmp_path / "paper-style.rewritten.json")
    loaded = labelme.load([ours, rewritten_ours, rewritten_paper])

    for result in loaded:
        assert_opened(result, labelme.version, (WIDTH, HEIGHT))
    assert view(loaded[1]) == view(loaded[0])
    assert_same_annotation(loaded[2], read_paper)
    assert [(s["label"], s["points"]) for s in loaded[2]["shapes"]] == [
        (label, [box[:2], box[2:]]) for label, box in PAPER_STYLE_MEANING
    ]


# -- 3. an exported study opens in labelme ----------------------------------------------------------------------------


def make_study(root: Path, dtype: str = "uint8") -> dict[tuple[str, str], SliceAnnotation]:
    """Three slices of two cases; reader r1 annotated two of them."""
    study = Study.create(root)
    sizes = {("case-0001", "s001"): (WIDTH, HEIGHT), ("case-0001", "s002"): (WIDTH, HEIGHT)}
    sizes[("case-0002", "s001")] = (80, 120)
    for (case, slice_id), (width, height) in sizes.items():
        write_png(root / "images" / case / f"{slice_id}.png", grey_pixels(width, height, dtype))
    annotated = {
        ("case-0001", "s001"): sample_annotation(),
        ("case-0002", "s001"): SliceAnnotation(
            80, 120, (Vertebra(Box(20, 30, 60, 52.5), {Disease.OF}, level="L1", source="r1"),)
        ),
    }
    for (case, slice_id), annotation in annotated.items():
        study.save_annotation(annotation, case, slice_id, reader="r1")
    return annotated


def check_export_opens(labelme: Labelme, tmp_path: Path, dtype: str) -> None:
    annotated = make_study(tmp_path / "study", dtype)
    exports = [tmp_path / "export", tmp_path / "export-embedded"]
    for out, embed in zip(exports, (False, True), strict=True):
        report = run(export_study(tmp_path / "study", out, reader="r1", embed_images=embed))
        assert (report.images, report.annotations, report.errors) == (3, 2, [])
    files = sorted(f for out in exports for f in out.rglob("*.json"))
    files += sorted((tmp_path / "study" / "readers").rglob("*.json"))
    assert len(files) == 6

    results = labelme.load(files)

    for path, result in zip(files, results, strict=True):
        written = json.loads(path.read_text(encoding="utf-8"))
        assert_opened(result, labelme.version, (written["imageWidth"], written["imageHeight"]))
        annotation = annotated[(path.parent.name, path.stem)]
        assert (written["imageWidth"], written["imageHeight"]) == (annotation.image_width, annotation.image_height)
        assert [s["label"] for s in result["shapes"]] == [v.label for v in annotation.vertebrae]
        for shape, vertebra in zip(result["shapes"], annotation.vertebrae, strict=True):
            assert_same_vertebra(shape, vertebra)


def test_exported_study_opens_in_labelme(labelme: Labelme, tmp_path: Path) -> None:
    check_export_opens(labelme, tmp_path, "uint8")


def test_export_of_a_study_holding_16_bit_pngs_opens_in_labelme(labelme: Labelme, tmp_path: Path) -> None:
    """labelme 6 refuses 16-bit images, so the export renders such a study's PNGs to 8 bits instead of copying."""
    annotated = make_study(tmp_path / "study", "uint16")
    report = run(export_study(tmp_path / "study", tmp_path / "export", reader="r1"))
    assert (report.images, report.annotations, report.errors) == (3, 2, [])
    files = sorted((tmp_path / "export").rglob("*.json"))
    for path, result in zip(files, labelme.load(files), strict=True):
        written = json.loads(path.read_text(encoding="utf-8"))
        assert_opened(result, labelme.version, (written["imageWidth"], written["imageHeight"]))
        annotation = annotated[(path.parent.name, path.stem)]
        assert [s["label"] for s in result["shapes"]] == [v.label for v in annotation.vertebrae]


def test_study_imported_from_16_bit_pngs_opens_in_labelme(labelme: Labelme, tmp_path: Path) -> None:
    """Importing 16-bit PNGs stores 8-bit PNGs (and says so), so the study's own reader files open in labelme."""
    source = tmp_path / "source" / "patient"
    source.mkdir(parents=True)
    write_png(source / "a.png", grey_pixels(WIDTH, HEIGHT, "uint16"))
    write_labelme(sample_annotation("a.png"), source / "a.json")
    report = run(import_source(tmp_path / "source", tmp_path / "study", ImportOptions(reader="r1")))
    assert report.slice_count == 1 and len(report.notes) == 1 and "8-bit" in report.notes[0]
    files = sorted((tmp_path / "study" / "readers").rglob("*.json"))
    assert len(files) == 1
    [result] = labelme.load(files)
    assert_opened(result, labelme.version, (WIDTH, HEIGHT))
    assert [s["label"] for s in result["shapes"]] == [v.label for v in sample_annotation().vertebrae]
