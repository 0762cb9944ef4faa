"""A study's slices as a stack for viewing, with the annotation to show on each."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from core.annotations.model import SliceAnnotation
from core.imaging.image import SliceImage
from core.imaging.stacks import SliceStack, open_stack
from core.study.layout import Study


class StudySliceStack(SliceStack):
    """Every slice of every case, in order. Shows ``reader``'s annotation, else the consensus, else none."""

    def __init__(self, study: Study, reader: str | None = None) -> None:
        self.study = study
        self.reader = reader
        self.name = study.settings.name
        self.refs = study.all_slices()
        self._image = lru_cache(maxsize=16)(lambda ref: study.read_image(*ref))

    def __len__(self) -> int:
        return len(self.refs)

    def label(self, index: int) -> str:
        case, slice_id = self.refs[index]
        return f"{case} / {slice_id}"

    def image(self, index: int) -> SliceImage:
        return self._image(self.refs[index])

    def annotation(self, index: int) -> SliceAnnotation | None:
        case, slice_id = self.refs[index]
        image = self.image(index)
        size = (image.width, image.height)
        if self.reader is not None:
            found = self.study.load_annotation(case, slice_id, reader=self.reader, image_size=size)
            if found is not None:
                return found
        return self.study.load_annotation(case, slice_id, image_size=size)


def open_any(path: str | Path, reader: str | None = None) -> SliceStack:
    """A study, or any image, DICOM or NIfTI path (see :func:`core.imaging.stacks.open_stack`)."""
    if Study.is_study(path):
        return StudySliceStack(Study.open(path), reader=reader)
    return open_stack(path)
