"""Whose LabelMe annotations an import brings: the quick look before it, and the reader they are imported under."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from PIL import Image

from core.progress import run
from core.review.opening import import_as_study, labelme_in_source
from core.review.preferences import AppDirs
from core.study.layout import Study


def _labelme(reader: str | None, image_data: str | None = None) -> dict:
    payload = {
        "version": "5.0.1", "flags": {},
        "shapes": [{"label": "OVCF", "points": [[10, 10], [60, 40]], "shape_type": "rectangle", "group_id": None,
                    "flags": {}}],
        "imagePath": "x.png", "imageData": image_data, "imageHeight": 120, "imageWidth": 160,
    }
    if reader is not None:
        payload["reader"] = reader
    return payload


def _png(path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160)).astype(np.uint8)).save(path)


def _dirs(tmp_path: Path) -> AppDirs:
    return AppDirs(config=tmp_path / "config", state=tmp_path / "state", data=tmp_path / "data")


def test_the_quick_look_finds_labelme_files_and_the_readers_they_name(tmp_path):
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    for name in ("a", "b"):
        _png(source / f"{name}.png")
        (source / f"{name}.json").write_text(json.dumps(_labelme("bob")))
    _png(source / "c.png")
    (source / "c.json").write_text(json.dumps(_labelme(None)))
    # ``reader`` after a large embedded image: found at the file's end all the same
    (source / "sub" / "d.JSON").write_text(json.dumps(_labelme("carol", base64.b64encode(bytes(300_000)).decode())))
    (source / "settings.json").write_text(json.dumps({"window": "bone"}))  # JSON, but not LabelMe
    found = labelme_in_source(source, dirs=_dirs(tmp_path))
    assert found is not None
    assert found.files == 4 and found.named == {"bob": 2, "carol": 1} and found.unnamed == 1
    assert list(found.named) == ["bob", "carol"] and not found.more
    assert found.blinding  # a new study blinds its readers


def test_the_quick_look_says_none_without_labelme_and_for_a_study(tmp_path):
    source = tmp_path / "images"
    source.mkdir()
    _png(source / "a.png")
    (source / "broken.json").write_text("{not json")
    assert labelme_in_source(source, dirs=_dirs(tmp_path)) is None
    study = Study.create(tmp_path / "study")
    assert labelme_in_source(study.root) is None
    assert labelme_in_source(tmp_path / "missing") is None


def test_the_quick_look_reads_the_target_studys_blinding(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.json").write_text(json.dumps(_labelme("bob")))
    study = Study.create(tmp_path / "study")
    study.update_settings(lambda s: setattr(s, "blinding", False))
    found = labelme_in_source(source, study.root)
    assert found is not None and found.study == study.root and not found.blinding


def test_the_annotations_go_to_the_reader_chosen_or_else_to_the_one_each_file_names(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    _png(source / "a.png")
    (source / "a.json").write_text(json.dumps(_labelme("bob")))
    root, report = run(import_as_study(source, tmp_path / "mine", reader="r1"))
    study = Study.open(root)
    assert report.cases[0].annotations == 1
    assert study.reader_path("r1", "case-0001", "s001").is_file()
    assert not (root / "readers" / "bob").exists()
    root, _ = run(import_as_study(source, tmp_path / "theirs"))
    assert Study.open(root).reader_path("bob", "case-0001", "s001").is_file()
