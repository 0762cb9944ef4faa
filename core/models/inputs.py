"""What ``detect`` and ``diagnose`` run over: image files, DICOM files and series, NIfTI volumes, folders of any of
these (walked recursively), or whole studies, each turned into slices with the model's 8-bit input, the LabelMe
JSON to write and the image it points to.

Where the output goes:

- a study: ``OUT/<case>/<slice>.json``;
- a file: ``OUT/<name>.json`` (a volume: ``OUT/<name>/sNNN.json``, one per sagittal slab);
- a folder ``F``: ``OUT/F/<path relative to F>``, so the folder's tree is kept: ``F/case-0002/s001.dcm`` gives
  ``OUT/F/case-0002/s001.json``. A volume series gives ``sNNN.json`` in its folder (in ``series-K`` when a folder
  holds several), and a study inside the folder its cases.

A PNG or JPEG with the same name as a DICOM file beside it (a study's ``images/``, where the PNG is the slice's
rendering for labelme) is that slice's picture, not a slice of its own. No two inputs may write one output file:
such a clash is refused before anything runs, naming both. A JSON already at an output path is overwritten only
when a model wrote it: a person's annotation there (``OUT`` beside the images, or a study's ``consensus/``) is kept,
and its slice skipped with the reason. Slices are grouped by examination (a study's case, a
series, a volume, a folder of images), because levels are made consistent across the slices of one examination.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.annotations.labelme_io import read_labelme
from core.errors import FileWriteError, NiftiReadError, VertebraReviewError
from core.imaging.dicom import read_dicom
from core.imaging.dicom_series import DicomSeries, scan_dicom_files
from core.imaging.nifti import is_nifti, read_nifti
from core.imaging.raster import RASTER_SUFFIXES, is_raster, read_raster
from core.imaging.rendering import ModelInput, model_input
from core.imaging.stacks import SagittalStack, open_stack
from core.study.images import study_model_input
from core.study.layout import Study
from core.study.slice_key import SliceKey


@dataclass
class SliceInput:
    """One slice to run a model on: how to get its input, and where its JSON (and, when needed, its PNG) go."""

    name: str
    group: str  # the examination it belongs to
    load: Callable[[], ModelInput]
    json_path: Path
    image_path: Path  # the PNG or JPEG the JSON points to
    write_png: bool = False


@dataclass
class _Found:
    items: list[SliceInput] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def study_inputs(study: Study, out: Path, rendering: str,
                 slices: Sequence[SliceKey] | None = None) -> Iterator[SliceInput]:
    for case, slice_id in slices if slices is not None else study.all_slices():
        yield SliceInput(f"{case}/{slice_id}", f"{study.root}/{case}",
                         lambda c=case, s=slice_id: study_model_input(study, c, s, rendering),
                         out / case / f"{slice_id}.json", study.labelme_image_path(case, slice_id))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".dcm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem if path.suffix.lower() in RASTER_SUFFIXES else name


def _volume_inputs(stack: SagittalStack, label: str, folder: Path, rendering: str) -> Iterator[SliceInput]:
    """The default sagittal slabs through the spine, ``folder/sNNN.json`` with the PNG the model saw beside it."""
    for number, index in enumerate(stack.reformat.default_indices(), start=1):
        name = f"s{number:03d}"
        yield SliceInput(f"{label} {stack.label(index)}", label, lambda i=index: model_input(stack.image(i), rendering),
                         folder / f"{name}.json", folder / f"{name}.png", write_png=True)


def file_inputs(path: Path, out: Path, rendering: str) -> Iterator[SliceInput]:
    """One file: an image (``OUT/<name>.json``) or a volume (``OUT/<name>/sNNN.json``)."""
    if is_raster(path):
        yield SliceInput(path.name, str(path.parent), lambda: model_input(read_raster(path), rendering),
                         out / f"{path.stem}.json", path)
        return
    if is_nifti(path):
        volume = read_nifti(path)
        if volume.is_label_map:
            raise NiftiReadError("a label map (segmentation), not a CT volume: nothing to detect on", path)
        yield from _volume_inputs(SagittalStack(volume, name=path.name), str(path), out / _stem(path), rendering)
        return
    stack = open_stack(path)
    if isinstance(stack, SagittalStack):
        yield from _volume_inputs(stack, str(path), out / _stem(path), rendering)
        return
    many = len(stack) > 1
    for index in range(len(stack)):
        name = f"{_stem(path)}-{index + 1:03d}" if many else _stem(path)
        yield SliceInput(f"{path.name} {stack.label(index)}" if many else path.name, str(path),
                         lambda i=index: model_input(stack.image(i), rendering),
                         out / f"{name}.json", out / f"{name}.png", write_png=True)


def _picture_beside(dicom: Path) -> Path | None:
    """A study-style rendering beside a DICOM slice: ``s001.png`` for ``s001.dcm`` (or ``s001`` without suffix)."""
    for suffix in RASTER_SUFFIXES:
        for candidate in (dicom.parent / f"{_stem(dicom)}{suffix}", dicom.parent / f"{dicom.name}{suffix}"):
            if candidate.is_file():
                return candidate
    return None


def _series_inputs(series: DicomSeries, root: Path, base: Path, rendering: str, siblings: int,
                   number: int) -> Iterator[SliceInput]:
    """A series under folder ``root``: a volume's sagittal slabs, or each sagittal (or single) image as it is."""
    folder = series.first.path.parent
    group = f"{folder}#{series.uid}"
    if series.orientation != "sagittal" and len(series.frames) > 1:  # an axial or coronal volume
        stack = SagittalStack(series.load_volume(), name=series.description or folder.name)
        target = base / folder.relative_to(root)
        yield from _volume_inputs(stack, group, target / f"series-{number}" if siblings > 1 else target, rendering)
        return
    frames_per_file: dict[Path, int] = {}
    for ref in series.frames:
        frames_per_file[ref.header.path] = frames_per_file.get(ref.header.path, 0) + 1
    for ref in series.frames:
        path, frame, many = ref.header.path, ref.frame, frames_per_file[ref.header.path] > 1
        json_path = base / path.parent.relative_to(root) / f"{_stem(path)}{f'-{frame + 1:03d}' if many else ''}.json"
        picture = None if many else _picture_beside(path)
        yield SliceInput(str(path.relative_to(root.parent)), group,
                         lambda p=path, f=frame: model_input(read_dicom(p)[f], rendering), json_path,
                         picture or json_path.with_suffix(".png"), write_png=picture is None)


def _study_in_folder(root: Path, out: Path, rendering: str) -> Iterator[SliceInput]:
    return study_inputs(Study.open(root), out, rendering)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def folder_inputs(root: Path, out: Path, rendering: str) -> _Found:
    """Every slice under folder ``root``, walked recursively, written under ``OUT/<root's name>/``."""
    base, found = out / root.name, _Found()
    studies = sorted({p.parent for p in root.rglob("study.json") if Study.is_study(p.parent)})
    for study in studies:
        _add(found, str(study), _study_in_folder, study, base / study.relative_to(root), rendering)
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and not _hidden(p, root)
             and not any(p.is_relative_to(s) for s in studies)]
    for nifti in (p for p in files if is_nifti(p)):
        _add(found, str(nifti), file_inputs, nifti, base / nifti.parent.relative_to(root), rendering)
    others = [p for p in files if not is_nifti(p) and not is_raster(p)]
    scan = scan_dicom_files(others)
    found.errors.extend((str(p), why) for p, why in scan.skipped)  # plainly not DICOM: in scan.passed_over
    pictures = {_picture_beside(p) for s in scan.series for p in s.files}
    per_folder: dict[Path, list[DicomSeries]] = {}
    for series in scan.series:
        per_folder.setdefault(series.first.path.parent, []).append(series)
    for in_folder in per_folder.values():
        for number, series in enumerate(in_folder, start=1):
            _add(found, str(series.first.path.parent), _series_inputs, series, root, base, rendering, len(in_folder),
                 number)
    for raster in (p for p in files if is_raster(p) and p not in pictures):
        _add(found, str(raster), _raster_in_folder, raster, root, base, rendering)
    return found


def _raster_in_folder(path: Path, root: Path, base: Path, rendering: str) -> Iterator[SliceInput]:
    yield SliceInput(str(path.relative_to(root.parent)), str(path.parent),
                     lambda: model_input(read_raster(path), rendering),
                     (base / path.relative_to(root)).with_suffix(".json"), path)


def _add(found: _Found, source: str, make: Callable[..., Iterator[SliceInput]], *args: Any) -> None:
    """The slices ``make(*args)`` gives, or the reason it failed (one bad file never stops the rest)."""
    try:
        found.items.extend(make(*args))
    except VertebraReviewError as exc:
        found.errors.append((source, exc.message if exc.path else str(exc)))


def _refuse_clashes(items: Sequence[SliceInput]) -> None:
    """Two slices that would write one output file: refused, naming both, before anything is written."""
    writers: dict[Path, SliceInput] = {}
    for item in items:
        for target in (item.json_path, item.image_path) if item.write_png else (item.json_path,):
            key = Path(str(target).lower())  # a clash on a case-insensitive disk too
            earlier = writers.setdefault(key, item)
            if earlier is not item:
                raise FileWriteError(f"{earlier.name} and {item.name} would both be written to this file; give "
                                     "them separate --out folders, or run them one at a time", target)


def collect_inputs(inputs: Sequence[str | Path], out: Path, rendering: str) -> tuple[list[SliceInput], list]:
    """Every slice of ``inputs``, and (input, reason) for each input or file that could not be opened. Raises
    :class:`FileWriteError` when two slices would write one output file."""
    found = _Found()
    for source in map(Path, inputs):
        if Study.is_study(source):
            _add(found, str(source), _study_in_folder, source, out, rendering)
        elif not source.exists():
            found.errors.append((str(source), "no such file or folder"))
        elif source.is_dir():
            inner = folder_inputs(source, out, rendering)
            found.items.extend(inner.items)
            found.errors.extend(inner.errors)
            if not inner.items and not inner.errors:
                found.errors.append((str(source), "no DICOM, NIfTI, PNG or JPEG images found"))
        else:
            _add(found, str(source), file_inputs, source, out, rendering)
    _refuse_clashes(found.items)
    kept = []
    for item in found.items:
        why = not_overwritable(item.json_path)
        if why is None:
            kept.append(item)
        else:
            found.errors.append((str(item.json_path), why))
    return kept, found.errors


def not_overwritable(path: Path) -> str | None:
    """Why a model's prediction must not be written over ``path``, or None when it may: nothing is there, or a
    model's own prediction, unreviewed. A reader's, a reviewed or the consensus's LabelMe JSON, or a file that is
    not LabelMe JSON at all, is a person's work, kept whatever ``--out`` says (``OUT`` beside the images, or a study's
    ``consensus/``)."""
    if not path.exists() and not path.is_symlink():
        return None
    try:
        annotation = read_labelme(path)
    except VertebraReviewError:
        return "is there already and is not a model's prediction; it is left as it is (choose another --out)"
    if annotation.model is None or annotation.reader is not None or annotation.reviewed:
        return ("holds a person's annotation (a reader's, a reviewed one or a consensus); it is left as it is "
                "(choose another --out)")
    return None
