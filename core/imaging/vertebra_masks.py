"""Vertebra segmentations as users have them: which label is which vertebra, read from the three usual forms.

- **One multi-label NIfTI**: VerSe's ``*_seg-vert_msk.nii.gz`` (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum,
  28 T13) or TotalSegmentator's ``--ml`` file (v2 numbering: 25 sacrum, 26 S1, 27-31 L5-L1, 32-43 T12-T1, 44-50
  C7-C1).
- **A folder of one mask per structure**, as TotalSegmentator writes by default (``vertebrae_L1.nii.gz``, …) or as
  per-vertebra exports name them (``L1_seg.nii.gz``); other structures in the folder are passed over.
- **VerSe's subregion map** beside a VerSe mask (``*_seg-subreg_msk.nii.gz``), whose labels 49 and 50 are the
  vertebral body, so the body is known exactly.

The scheme is never guessed from the numbers alone, since the schemes overlap: it is named by the user, or read from
a label table beside the mask (``structures.csv``: a name and an id per label, as TotalSegmentator's class map), or
from the file names (``seg-vert`` is VerSe; a name containing ``totalseg`` is TotalSegmentator's).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import GeometryError, NiftiReadError
from core.imaging.image import Volume
from core.imaging.nifti import MAX_VOXELS, is_nifti, open_nifti

SCHEMES = ("verse", "totalsegmentator")
#: VerSe's vertebra labels (Sekuboyina et al. 2021).
VERSE_LABELS: Mapping[int, str] = {
    **{i: f"C{i}" for i in range(1, 8)}, **{7 + i: f"T{i}" for i in range(1, 13)},
    **{19 + i: f"L{i}" for i in range(1, 7)}, 26: "sacrum", 28: "T13",
}
#: TotalSegmentator v2's vertebra labels in its multi-label output.
TOTALSEGMENTATOR_LABELS: Mapping[int, str] = {
    25: "sacrum", 26: "S1", **{26 + i: f"L{6 - i}" for i in range(1, 6)},
    **{31 + i: f"T{13 - i}" for i in range(1, 13)}, **{43 + i: f"C{8 - i}" for i in range(1, 8)},
}
SCHEME_LABELS: Mapping[str, Mapping[int, str]] = {"verse": VERSE_LABELS, "totalsegmentator": TOTALSEGMENTATOR_LABELS}
#: VerSe subregion labels of the vertebral body (its border and its corpus).
BODY_SUBREGIONS = (49, 50)
#: Two grids are one when their voxel centres lie within this distance (mm) and their shapes agree.
GRID_TOLERANCE_MM = 0.5
TABLE_NAMES = ("structures.csv", "labels.csv", "label_table.csv")
_NAME = re.compile(r"(?:^|[_\-\s])(C[1-7]|T1[0-3]|T[1-9]|L[1-6]|S1|sacrum)(?:$|[_\-\s.])", re.IGNORECASE)


def vertebra_name(structure: str) -> str | None:
    """The vertebra a structure name means (``vertebrae_L1`` → ``L1``, ``L1_seg`` → ``L1``, ``sacrum``), or None."""
    match = _NAME.search(structure.strip())
    if match is None:
        return None
    name = match.group(1)
    return "sacrum" if name.lower() == "sacrum" else name.upper()


@dataclass
class VertebraMasks:
    """Vertebra labels on a canonical (RAS) grid: ``labels`` holds label ids, ``names`` says which vertebra each id
    is; ``body`` (when a subregion map came with them) marks the vertebral bodies exactly."""

    labels: np.ndarray
    names: dict[int, str]
    affine: np.ndarray
    source: Path
    scheme: str
    body: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def check_grid(self, ct: Volume) -> None:
        """Raise GeometryError (naming the mask) unless the masks lie on the CT's grid."""
        canonical = ct.canonical()
        if canonical.shape != self.labels.shape:
            raise GeometryError(f"the mask's grid is {_shape(self.labels.shape)} voxels and the CT's "
                                f"{_shape(canonical.shape)}: they must be on the same grid", self.source)
        corners = np.array([[i, j, k, 1.0] for i in (0, self.labels.shape[0] - 1)
                            for j in (0, self.labels.shape[1] - 1) for k in (0, self.labels.shape[2] - 1)])
        distance = np.linalg.norm((corners @ self.affine.T - corners @ canonical.affine.T)[:, :3], axis=1).max()
        if distance > GRID_TOLERANCE_MM:
            spacing_mask = np.linalg.norm(self.affine[:3, :3], axis=0)
            spacing_ct = np.linalg.norm(canonical.affine[:3, :3], axis=0)
            raise GeometryError(
                f"the mask and the CT have the same size but lie {distance:.1f} mm apart (spacing "
                f"{_spacing(spacing_mask)} against {_spacing(spacing_ct)} mm; at most {GRID_TOLERANCE_MM} mm is "
                "allowed): they must be on the same grid", self.source)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


def _spacing(values: np.ndarray) -> str:
    return " x ".join(f"{v:.3g}" for v in values)


def read_label_volume(path: Path) -> Volume:
    """A NIfTI label map as integers on its canonical grid. Raises NiftiReadError naming the file."""
    image, shape = open_nifti(path)
    if len(shape) != 3:
        raise NiftiReadError(f"a label map needs three dimensions, not shape {image.shape}", path)
    if int(np.prod(shape)) > MAX_VOXELS:
        raise NiftiReadError(f"volume of {image.shape} voxels is larger than the {MAX_VOXELS} voxel limit", path)
    try:
        raw = np.asanyarray(image.dataobj).reshape(shape)
    except (EOFError, OSError, ValueError) as exc:
        raise NiftiReadError(f"voxel data is truncated or corrupt ({exc})", path) from exc
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or not np.array_equal(raw, np.round(raw)):
            raise NiftiReadError("not a label map: its values are not whole numbers", path)
    elif raw.dtype.kind not in "iub":
        raise NiftiReadError(f"not a label map: values of type {raw.dtype}", path)
    if raw.size and (raw.min() < 0 or raw.max() > 65535):
        raise NiftiReadError("not a label map: labels must lie between 0 and 65535", path)
    affine = image.affine
    if affine is None or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise NiftiReadError("the header has no usable voxel-to-patient affine", path)
    volume = Volume(raw.astype(np.uint16), np.asarray(affine, dtype=float), path, is_label_map=True)
    return volume.canonical()


def read_vertebra_masks(path: str | Path, scheme: str | None = None, subregions: str | Path | None = None, *,
                        find_subregions: bool = True) -> VertebraMasks:
    """The vertebra labels at ``path`` (a multi-label NIfTI or a folder of one mask per structure), with the body
    subregions of ``subregions`` or (``find_subregions``) a VerSe subregion map found beside. Raises a
    NiftiReadError or GeometryError naming the file when they cannot be used."""
    path = Path(path)
    if scheme is not None and scheme not in SCHEMES:
        raise NiftiReadError(f"unknown label scheme {scheme!r}: use {' or '.join(SCHEMES)}", path)
    if path.is_dir():
        masks = _read_folder(path)
    elif path.is_file():
        masks = _read_multilabel(path, scheme)
    else:
        raise NiftiReadError("no such file or folder", path)
    found = subregions if subregions is not None else (_subregions_beside(path) if find_subregions else None)
    if found is not None:
        masks.body = _read_body(Path(found), masks)
    return masks


def _read_multilabel(path: Path, scheme: str | None) -> VertebraMasks:
    if not is_nifti(path):
        raise NiftiReadError("a vertebra mask must be a NIfTI file (.nii or .nii.gz) or a folder of them", path)
    names, scheme = _label_names(path, scheme)
    volume = read_label_volume(path)
    present = [int(v) for v in np.unique(volume.voxels) if v != 0]
    vertebrae = {label: names[label] for label in present if label in names}
    notes = []
    others = [label for label in present if label not in names]
    if others:
        notes.append(f"{path.name}: labels {', '.join(map(str, others[:12]))}{' …' if len(others) > 12 else ''} "
                     f"are not vertebrae ({_scheme_text(scheme, path)}) and were left out")
    if not vertebrae:
        raise NiftiReadError(f"no vertebra labels ({_scheme_text(scheme, path)}) in this mask (labels found: "
                             f"{', '.join(map(str, present[:12])) or 'none'})", path)
    return VertebraMasks(volume.voxels, vertebrae, volume.affine, path, scheme, notes=notes)


def label_table_beside(path: Path) -> Path | None:
    """A label table (``structures.csv`` …) in the mask's folder, or None."""
    return next((path.parent / name for name in TABLE_NAMES if (path.parent / name).is_file()), None)


def _scheme_text(scheme: str, path: Path) -> str:
    if scheme == "label table":
        table = next((name for name in TABLE_NAMES if (path.parent / name).is_file()), "the table")
        return f"by the label table {table}"
    return f"in the {scheme} numbering"


def _label_names(path: Path, scheme: str | None) -> tuple[dict[int, str], str]:
    """(label id → vertebra name, scheme) for a multi-label mask (see the module's rules)."""
    if scheme is not None:
        return dict(SCHEME_LABELS[scheme]), scheme
    table = label_table_beside(path)
    if table is not None:
        return _read_table(table), "label table"
    lowered = path.name.lower()
    if "seg-vert" in lowered:
        return dict(VERSE_LABELS), "verse"
    if "totalseg" in lowered:
        return dict(TOTALSEGMENTATOR_LABELS), "totalsegmentator"
    raise NiftiReadError("cannot tell which labelling this mask uses (VerSe and TotalSegmentator number vertebrae "
                         "differently): give --label-scheme verse or totalsegmentator, or put a structures.csv "
                         "table beside it", path)


def _read_table(table: Path) -> dict[int, str]:
    """The vertebrae of a ``structures.csv``-style table (label id → vertebra name)."""
    names = {label: vertebra_name(name) for label, name in read_label_table(table).items()}
    return {label: name for label, name in names.items() if name is not None}


def read_label_table(table: Path) -> dict[int, str]:
    """Every structure of a ``structures.csv``-style table: an id column and a structure (or name) column."""
    if table.stat().st_size > 1_000_000:
        raise NiftiReadError("a label table this large is not a label table", table)
    try:
        rows = list(csv.DictReader(table.read_text(encoding="utf-8").splitlines()))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise NiftiReadError(f"the label table cannot be read ({exc})", table) from exc
    columns = {c.strip().lower(): c for c in (rows[0].keys() if rows else []) if c}
    id_column = columns.get("id") or columns.get("label") or columns.get("value")
    name_column = columns.get("structure") or columns.get("name")
    if id_column is None or name_column is None:
        raise NiftiReadError(f"a label table needs an id and a structure (or name) column; it has "
                             f"{', '.join(columns) or 'none'}", table)
    names: dict[int, str] = {}
    for line, row in enumerate(rows, start=2):
        name = str(row.get(name_column) or "").strip()
        if not name:
            continue
        try:
            names[int(str(row[id_column]).strip())] = name
        except ValueError as exc:
            raise NiftiReadError(f"line {line}: the id {row[id_column]!r} is not a whole number", table) from exc
    return names


def _read_folder(folder: Path) -> VertebraMasks:
    """One mask per structure: the vertebra files (named by level) combined into one label map."""
    files = sorted(p for p in folder.iterdir() if is_nifti(p) and vertebra_name(p.name.split(".")[0]))
    if not files:
        raise NiftiReadError("no vertebra masks here: expected files named by level (vertebrae_L1.nii.gz, "
                             "L1_seg.nii.gz, …)", folder)
    first = read_label_volume(files[0])
    labels = np.zeros(first.voxels.shape, dtype=np.uint16)
    names: dict[int, str] = {}
    notes = []
    for number, file in enumerate(files, start=1):
        volume = first if number == 1 else read_label_volume(file)
        mask = VertebraMasks(volume.voxels, {}, volume.affine, file, "")
        mask.check_grid(first)
        inside = volume.voxels > 0
        if not inside.any():
            notes.append(f"{file.name}: empty, left out")
            continue
        if (labels[inside] > 0).any():
            notes.append(f"{file.name} overlaps an earlier mask; the overlap goes to {file.name}")
        labels[inside] = number
        names[number] = str(vertebra_name(file.name.split(".")[0]))
    if not names:
        raise NiftiReadError("every vertebra mask here is empty", folder)
    return VertebraMasks(labels, names, first.affine, folder, "files", notes=notes)


def _subregions_beside(path: Path) -> Path | None:
    if path.is_file() and "seg-vert" in path.name:
        beside = path.with_name(path.name.replace("seg-vert", "seg-subreg"))
        return beside if beside.is_file() else None
    return None


def _read_body(path: Path, masks: VertebraMasks) -> np.ndarray:
    volume = read_label_volume(path)
    VertebraMasks(volume.voxels, {}, volume.affine, path, "").check_grid(
        Volume(masks.labels, masks.affine, masks.source))
    body = np.isin(volume.voxels, BODY_SUBREGIONS)
    if not body.any():
        raise NiftiReadError(f"no vertebral body (labels {' and '.join(map(str, BODY_SUBREGIONS))}) in this "
                             "subregion map", path)
    return body
