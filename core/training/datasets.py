"""Training data from studies: one record per annotated slice, split into training and validation by case.

The validation split is fixed per study and made by case, never by slice, so no patient is on both sides: a case
goes to validation when a hash of the study's salt and the case id falls in the validation fraction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.annotations.model import Disease
from core.errors import TrainingError, VertebraReviewError
from core.imaging.letterbox import InputGeometry
from core.imaging.rendering import DEFAULT_RENDERING
from core.models.detector import to_tensor
from core.study.annotation_source import annotation_from
from core.study.images import study_model_view
from core.study.layout import Study
from core.training.transforms import D4_SIZE, AppearanceJitter, d4_boxes, d4_image, keep_visible

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SliceRecord:
    """One annotated slice: where its image is and its vertebrae (boxes in slice pixels, diseases, levels)."""

    study: Path
    case: str
    slice_id: str
    width: int
    height: int
    boxes: np.ndarray
    diseases: tuple[frozenset[Disease], ...]
    levels: tuple[str | None, ...]

    @property
    def key(self) -> str:
        return f"{self.study.name}/{self.case}/{self.slice_id}"


def study_records(root: str | Path, source: str = "consensus") -> tuple[list[SliceRecord], list[str]]:
    """Every slice of a study with an annotation from ``source``, and a note per file that could not be read."""
    study = Study.open(root)
    records, notes = [], []
    for case, slice_id in study.all_slices():
        try:
            annotation = annotation_from(study, case, slice_id, source)
        except VertebraReviewError as exc:
            notes.append(str(exc))
            continue
        if annotation is None:
            continue
        boxes = np.array([v.box.as_list() for v in annotation.vertebrae], dtype=np.float64).reshape(-1, 4)
        records.append(
            SliceRecord(
                study.root, case, slice_id, annotation.image_width, annotation.image_height, boxes,
                tuple(v.diseases for v in annotation.vertebrae), tuple(v.level for v in annotation.vertebrae),
            )
        )
    return records, notes


def collect_records(studies: Sequence[Path], source: str) -> list[SliceRecord]:
    """The annotated slices of several studies; unreadable annotation files are logged and left out."""
    records = []
    for study in studies:
        found, notes = study_records(study, source)
        for note in notes:
            log.warning("left out of training: %s", note)
        records.extend(found)
    return records


def is_validation_case(salt: str, case: str, fraction: float) -> bool:
    digest = hashlib.sha256(f"{salt}/{case}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_by_case(records: Sequence[SliceRecord], fraction: float) -> tuple[list[SliceRecord], list[SliceRecord]]:
    """(training, validation), by case; at least one case on each side when there are two or more."""
    salts = {r.study: Study.open(r.study).settings.salt for r in records}
    cases = sorted({(r.study, r.case) for r in records})
    validation = {c for c in cases if is_validation_case(salts[c[0]], c[1], fraction)}
    if len(cases) >= 2 and fraction > 0:
        if not validation:
            validation = {min(cases, key=lambda c: hashlib.sha256(f"{salts[c[0]]}/{c[1]}".encode()).digest())}
        if validation == set(cases):
            validation.discard(max(cases))
    train = [r for r in records if (r.study, r.case) not in validation]
    val = [r for r in records if (r.study, r.case) in validation]
    return train, val


AUGMENTATIONS = ("d4-all", "d4-random", "flip", "none")


class DetectionDataset(torch.utils.data.Dataset):
    """(image tensor, target) pairs in the model's input geometry.

    ``augment``: ``d4-all`` repeats every slice under all 8 elements of D4 (the paper's offline augmentation),
    ``d4-random`` draws one element per sample, ``flip`` flips left-right half of the time (anterior on either
    side, as PACS exports differ), ``none`` keeps the slice as it is. ``appearance`` also jitters each sample's grey
    values (:class:`~core.training.transforms.AppearanceJitter`), drawn from torch's generator like the D4 element.
    """

    def __init__(self, records: Sequence[SliceRecord], geometry: InputGeometry, augment: str = "none",
                 window: str = DEFAULT_RENDERING, appearance: AppearanceJitter | None = None) -> None:
        if augment not in AUGMENTATIONS:
            raise TrainingError(f"unknown augmentation {augment!r}: use {', '.join(AUGMENTATIONS)}")
        self.records = list(records)
        self.geometry = geometry
        self.augment = augment
        self.window = window
        self.appearance = appearance
        self._studies: dict[Path, Study] = {}

    def __len__(self) -> int:
        return len(self.records) * (D4_SIZE if self.augment == "d4-all" else 1)

    def _study(self, root: Path) -> Study:
        if root not in self._studies:
            self._studies[root] = Study.open(root)
        return self._studies[root]

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(uint8 input image, boxes in input pixels, D4 element) of sample ``index``."""
        if self.augment == "d4-all":
            record, k = self.records[index // D4_SIZE], index % D4_SIZE
        else:
            record = self.records[index]
            if self.augment == "d4-random":
                k = int(torch.randint(D4_SIZE, (1,)).item())
            elif self.augment == "flip":
                k = 4 * int(torch.randint(2, (1,)).item())  # the identity or the left-right mirror
            else:
                k = 0
        pixels = study_model_view(self._study(record.study), record.case, record.slice_id, self.window)
        if pixels.shape != (record.height, record.width):
            raise TrainingError(
                f"image is {pixels.shape[1]}x{pixels.shape[0]}, its annotation says {record.width}x{record.height}",
                record.study / "images" / record.case / record.slice_id,
            )
        if self.appearance is not None:
            pixels = self.appearance(pixels, np.random.default_rng(int(torch.randint(2**31, (1,)).item())))
        image = self.geometry.image(pixels)
        boxes = self.geometry.to_input(record.boxes, record.width, record.height)
        boxes = boxes[keep_visible(boxes)]
        return d4_image(image, k), d4_boxes(boxes, k, self.geometry.size), k

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image, boxes, _ = self.sample(index)
        target = {
            "boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.ones(len(boxes), dtype=torch.int64),
        }
        return to_tensor(image), target


def collate(batch: list) -> tuple[list, list]:
    return [item[0] for item in batch], [item[1] for item in batch]
