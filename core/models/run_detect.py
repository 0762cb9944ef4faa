"""``vertebra-review detect``: run a detector package over files, folders, volumes or a whole study and write one
LabelMe JSON of predictions per slice (boxes labelled ``vertebra``, with the detector's score)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.annotations.geometry import DETECTION_THRESHOLD
from core.annotations.labelme_io import write_labelme
from core.annotations.model import MODEL_SOURCE, Box, SliceAnnotation, Vertebra
from core.errors import ImageReadError, VertebraReviewError
from core.imaging.png_io import write_png
from core.imaging.rendering import ModelInput
from core.models.detector import Detections, VertebraDetector
from core.models.inputs import SliceInput, collect_inputs
from core.progress import Progress, ProgressGenerator

log = logging.getLogger(__name__)


@dataclass
class DetectReport:
    slices: int = 0
    vertebrae: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def detect_inputs(
    inputs: Sequence[str | Path],
    package: str | Path,
    out: str | Path,
    *,
    threshold: float = DETECTION_THRESHOLD,
    device: str = "auto",
    precision: str = "auto",
    fast: bool = True,
    views: int | None = None,
) -> ProgressGenerator[DetectReport]:
    """Detect vertebrae on every slice of ``inputs``; one prediction file per slice under ``out``.

    ``fast`` keeps 100 proposals instead of torchvision's 1000 (the evaluation shows the same AP). ``views``: test-time
    views instead of the package's own setting.
    """
    detector = VertebraDetector.from_package(package, device=device, precision=precision, fast=fast, views=views)
    model_id = Path(package).name
    out = Path(out)
    window = detector.config.window
    report = DetectReport()
    items, report.errors = collect_inputs(inputs, out, window)
    for number, item in enumerate(items):
        yield Progress("detect", number, len(items), item.name)
        try:
            pixels = load_input(item).pixels
            [found] = detector.detect([pixels], threshold=threshold)
            _write(item, pixels, found, model_id)
        except VertebraReviewError as exc:
            report.errors.append((item.name, str(exc)))
            continue
        report.slices += 1
        report.vertebrae += len(found)
    yield Progress("detect", len(items), len(items), "done")
    return report


def load_input(item: SliceInput) -> ModelInput:
    """The slice's model input (its uint8 view and pixel spacing). A file that cannot be read is a typed error naming
    it, whatever the library underneath raised (the readers raise typed errors; this is the last guard), so it is
    skipped with its reason and never stops the batch; the library's traceback is logged for ``--debug``."""
    try:
        return item.load()
    except VertebraReviewError:
        raise
    except Exception as exc:
        log.debug("reading %s failed", item.name, exc_info=True)
        raise ImageReadError(f"cannot be read ({type(exc).__name__}: {exc})") from exc


def _write(item: SliceInput, pixels: np.ndarray, found: Detections, model_id: str) -> None:
    if item.write_png:
        write_png(item.image_path, pixels)
    vertebrae = tuple(
        Vertebra(Box(*box), score=round(float(score), 4), source=MODEL_SOURCE, diagnosed=False)
        for box, score in zip(found.boxes, found.scores, strict=True)
    )
    relative = Path(os.path.relpath(item.image_path, item.json_path.parent)).as_posix()
    annotation = SliceAnnotation(pixels.shape[1], pixels.shape[0], vertebrae, image_path=relative, model=model_id)
    write_labelme(annotation, item.json_path)
