"""``vertebra-review detect``: run a detector package over files, folders, volumes or a whole study and write one
LabelMe JSON of predictions per slice (boxes labelled ``vertebra``, with the detector's score)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.annotations.labelme_io import write_labelme
from core.annotations.model import MODEL_SOURCE, Box, SliceAnnotation, Vertebra
from core.errors import VertebraReviewError
from core.imaging.image import SliceImage
from core.imaging.png_io import write_png
from core.imaging.raster import is_raster, read_raster
from core.imaging.reformat import SagittalReformat
from core.imaging.stacks import SagittalStack, open_stack
from core.imaging.windowing import apply_window
from core.models.detector import DEFAULT_THRESHOLD, Detections, VertebraDetector
from core.progress import Progress, ProgressGenerator
from core.study.images import png_window
from core.study.layout import Study
from core.training.datasets import load_input


def model_input(image: SliceImage, window: str) -> np.ndarray:
    """A slice as the model's 8-bit input: an 8-bit raster as it is, anything else through ``window``."""
    if not image.hu and image.bits == 8 and window == "min-max":
        return np.clip(np.rint(image.pixels), 0, 255).astype(np.uint8)
    return apply_window(image.pixels, png_window(image, window))


@dataclass
class _Item:
    """One slice to detect on: how to get its input, and where its JSON (and, when needed, its PNG) go."""

    name: str
    load: Callable[[], np.ndarray]
    json_path: Path
    image_path: Path  # the PNG or JPEG the JSON points to
    write_png: bool = False


@dataclass
class DetectReport:
    slices: int = 0
    vertebrae: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def _study_items(root: Path, out: Path, window: str) -> Iterator[_Item]:
    study = Study.open(root)
    for case, slice_id in study.all_slices():
        yield _Item(f"{case}/{slice_id}", lambda c=case, s=slice_id: load_input(study, c, s, window),
                    out / case / f"{slice_id}.json", study.labelme_image_path(case, slice_id))


def _path_items(path: Path, out: Path, window: str) -> Iterator[_Item]:
    if is_raster(path):
        yield _Item(path.name, lambda: model_input(read_raster(path), window), out / f"{path.stem}.json", path)
        return
    stack = open_stack(path)
    folder = out / path.name.replace(".nii.gz", "").replace(".nii", "")
    if isinstance(stack, SagittalStack):  # a volume: the default sagittal slabs through the spine
        reformat: SagittalReformat = stack.reformat
        indices = reformat.default_indices()
    else:
        indices = list(range(len(stack)))
    for number, index in enumerate(indices, start=1):
        name = f"s{number:03d}"
        yield _Item(f"{path.name} {stack.label(index)}", lambda i=index: model_input(stack.image(i), window),
                    folder / f"{name}.json", folder / f"{name}.png", write_png=True)


def detect_inputs(
    inputs: Sequence[str | Path],
    package: str | Path,
    out: str | Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    device: str = "auto",
    precision: str = "auto",
    fast: bool = True,
) -> ProgressGenerator[DetectReport]:
    """Detect vertebrae on every slice of ``inputs``; one prediction file per slice under ``out``.

    ``fast`` keeps 100 proposals instead of torchvision's 1000 (the evaluation shows the same AP).
    """
    detector = VertebraDetector.from_package(package, device=device, precision=precision, fast=fast)
    model_id = Path(package).name
    out = Path(out)
    window = detector.config.window
    report = DetectReport()
    items: list[_Item] = []
    for source in map(Path, inputs):
        try:
            found = _study_items(source, out, window) if Study.is_study(source) else _path_items(source, out, window)
            items.extend(found)
        except VertebraReviewError as exc:
            report.errors.append((str(source), str(exc)))
    for number, item in enumerate(items):
        yield Progress("detect", number, len(items), item.name)
        try:
            pixels = item.load()
            [found] = detector.detect([pixels], threshold=threshold)
            _write(item, pixels, found, model_id)
        except VertebraReviewError as exc:
            report.errors.append((item.name, str(exc)))
            continue
        report.slices += 1
        report.vertebrae += len(found)
    yield Progress("detect", len(items), len(items), "done")
    return report


def _write(item: _Item, pixels: np.ndarray, found: Detections, model_id: str) -> None:
    if item.write_png:
        write_png(item.image_path, pixels)
    vertebrae = tuple(
        Vertebra(Box(*box), score=round(float(score), 4), source=MODEL_SOURCE, diagnosed=False)
        for box, score in zip(found.boxes, found.scores, strict=True)
    )
    relative = Path(os.path.relpath(item.image_path, item.json_path.parent)).as_posix()
    annotation = SliceAnnotation(pixels.shape[1], pixels.shape[0], vertebrae, image_path=relative, model=model_id)
    write_labelme(annotation, item.json_path)
