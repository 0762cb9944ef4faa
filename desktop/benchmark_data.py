"""Studies for ``vertebra-review bench gui``: phantom CT slices padded to 1024 x 1024 with 20 boxes each from a
reader and from a model, and a 300-slice study made of hard links to one phantom slice (opening reads file names
and one image, so the content of the others does not matter)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from core.annotations.model import CLASS_CODES, DISEASES, Box, SliceAnnotation, Vertebra
from core.benchmarks.phantom import phantom_hu
from core.imaging.dicom_write import SliceTags, derived_uid
from core.imaging.image import SliceImage
from core.imaging.windowing import BONE
from core.study.images import write_slice_images
from core.study.layout import Study

SIDE = 1024
BOXES = 20
BENCH_MODEL = "bench-model"


def _padded(hu: np.ndarray, shift: int) -> np.ndarray:
    out = np.full((SIDE, SIDE), -1000.0, dtype=np.float32)
    h, w = min(hu.shape[0], SIDE), min(hu.shape[1], SIDE)
    top, left = (SIDE - h) // 2 + shift, (SIDE - w) // 2
    out[top : top + h, left : left + w] = hu[:h, :w]
    return out


def _vertebrae(shift: int, model: bool) -> tuple[Vertebra, ...]:
    rng = np.random.default_rng(shift)
    out = []
    for i in range(BOXES):
        y = 20 + i * 49 + shift
        box = Box(430 + rng.uniform(-4, 4), y, 540 + rng.uniform(-4, 4), y + 40)
        disease = frozenset({DISEASES[i % 5]}) if i % 4 == 0 else frozenset()
        probabilities = dict(zip(CLASS_CODES, rng.dirichlet(np.ones(6)).round(3), strict=True)) if model else None
        out.append(Vertebra(box, disease, probabilities, 0.95 if model else None, None,
                            "model" if model else "bench"))
    return tuple(out)


def _tags(number: int, spacing: float) -> SliceTags:
    return SliceTags(
        patient_id="BENCH", study_uid=derived_uid("bench", "study"), series_uid=derived_uid("bench", "series"),
        sop_uid=derived_uid("bench", str(number)), frame_of_reference_uid=derived_uid("bench", "frame"),
        instance_number=number, spacing_mm=(spacing, spacing), window=BONE,
    )


def large_slice_study(root: Path, slices: int = 12) -> Study:
    """``slices`` 1024 x 1024 CT slices (DICOM + PNG), each with 20 reader boxes and 20 model boxes."""
    study = Study.create(root)
    hu, spacing = phantom_hu()
    for number in range(1, slices + 1):
        shift = (number % 5) * 3
        image = SliceImage(_padded(hu, shift), spacing_mm=(spacing, spacing), hu=True, windows=(BONE,))
        folder = study.root / "images" / "case-0001"
        write_slice_images(folder, f"s{number:03d}", image, "min-max", _tags(number, spacing))
        key = ("case-0001", f"s{number:03d}")
        study.save_annotation(SliceAnnotation(SIDE, SIDE, _vertebrae(shift, False)), *key, reader="bench")
        study.save_annotation(SliceAnnotation(SIDE, SIDE, _vertebrae(shift, True)), *key, model=BENCH_MODEL)
    study.update_settings(lambda settings: setattr(settings, "model", BENCH_MODEL))
    return study


def many_slice_study(root: Path, source: Study, cases: int = 30, per_case: int = 10) -> Study:
    """``cases`` x ``per_case`` slices, all hard links (or copies) of the first slice of ``source``."""
    study = Study.create(root)
    images = sorted((source.root / "images" / "case-0001").glob("s001.*"))
    mine = source.reader_path("bench", "case-0001", "s001")
    for case in range(1, cases + 1):
        folder = study.root / "images" / f"case-{case:04d}"
        readers = study.root / "readers" / "bench" / f"case-{case:04d}"
        folder.mkdir(parents=True)
        readers.mkdir(parents=True)
        for number in range(1, per_case + 1):
            for image in images:
                _link(image, folder / f"s{number:03d}{image.suffix}")
            _link(mine, readers / f"s{number:03d}.json")
    return study


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
