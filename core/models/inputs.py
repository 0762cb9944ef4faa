"""What ``detect`` and ``diagnose`` run over: image files, DICOM files and series folders, NIfTI volumes, or a whole
study, each turned into slices with the model's 8-bit input, the LabelMe JSON to write and the image it points to.

Slices are grouped by examination (a study's case, a series, a volume, or the folder of loose images), because
levels are made consistent across the slices of one examination.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import VertebraReviewError
from core.imaging.image import SliceImage
from core.imaging.raster import is_raster, read_raster
from core.imaging.reformat import SagittalReformat
from core.imaging.stacks import SagittalStack, open_stack
from core.imaging.windowing import apply_window
from core.study.images import png_window
from core.study.layout import Study
from core.training.datasets import load_input


def model_input(image: SliceImage, window: str) -> np.ndarray:
    """A slice as the model's 8-bit input: an 8-bit raster as it is, anything else through ``window``."""
    if not image.hu and image.bits == 8 and window == "min-max":
        return np.clip(np.rint(image.pixels), 0, 255).astype(np.uint8)
    return apply_window(image.pixels, png_window(image, window))


@dataclass
class SliceInput:
    """One slice to run a model on: how to get its input, and where its JSON (and, when needed, its PNG) go."""

    name: str
    group: str  # the examination it belongs to
    load: Callable[[], np.ndarray]
    json_path: Path
    image_path: Path  # the PNG or JPEG the JSON points to
    write_png: bool = False


def study_inputs(study: Study, out: Path, window: str,
                 slices: Sequence[tuple[str, str]] | None = None) -> Iterator[SliceInput]:
    for case, slice_id in slices if slices is not None else study.all_slices():
        yield SliceInput(f"{case}/{slice_id}", case, lambda c=case, s=slice_id: load_input(study, c, s, window),
                         out / case / f"{slice_id}.json", study.labelme_image_path(case, slice_id))


def path_inputs(path: Path, out: Path, window: str) -> Iterator[SliceInput]:
    if is_raster(path):
        yield SliceInput(path.name, str(path.parent), lambda: model_input(read_raster(path), window),
                         out / f"{path.stem}.json", path)
        return
    if path.is_dir() and not any(p.is_dir() for p in path.iterdir()) and all(
            is_raster(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() != ".json"):
        for file in sorted(p for p in path.iterdir() if is_raster(p)):  # a folder of exported slices
            yield SliceInput(file.name, str(path), lambda f=file: model_input(read_raster(f), window),
                             out / path.name / f"{file.stem}.json", file)
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
        yield SliceInput(f"{path.name} {stack.label(index)}", str(path),
                         lambda i=index: model_input(stack.image(i), window),
                         folder / f"{name}.json", folder / f"{name}.png", write_png=True)


def collect_inputs(inputs: Sequence[str | Path], out: Path, window: str) -> tuple[list[SliceInput], list]:
    """Every slice of ``inputs``, and (input, reason) for each input that could not be opened."""
    items: list[SliceInput] = []
    errors: list[tuple[str, str]] = []
    for source in map(Path, inputs):
        try:
            if Study.is_study(source):
                items.extend(study_inputs(Study.open(source), out, window))
            elif not source.exists():
                errors.append((str(source), "no such file or folder"))
            else:
                items.extend(path_inputs(source, out, window))
        except VertebraReviewError as exc:
            errors.append((str(source), str(exc)))
    return items, errors
