"""Finding DICOM series in a file or folder, sorting their slices, and building volumes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.uid import UID

from core.errors import DicomReadError, GeometryError, ImageReadError, NotDicomError
from core.imaging import limits
from core.imaging.dicom import frame_to_slice, read_header
from core.imaging.dicom_file import file_errors, read_dataset
from core.imaging.dicom_header import DicomHeader, FrameGeometry, orientation_name, read_header_from
from core.imaging.dicom_pixels import decode_frames
from core.imaging.dicom_values import dicom_windows, frame_values, integer_values, is_hu
from core.imaging.image import SliceImage, Volume
from core.imaging.limits import in_memory_bytes, refuse_over

#: Files that are never DICOM images, skipped quietly when a folder is scanned.
_NOT_DICOM_SUFFIXES = {".json", ".txt", ".md", ".nii", ".gz", ".png", ".jpg", ".jpeg", ".csv", ".xml", ".zip"}
#: A file named so claims to be DICOM: when it is not, a folder scan says so rather than passing it over.
DICOM_SUFFIXES = (".dcm", ".dicom")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class FrameRef:
    """One frame of one file."""

    header: DicomHeader
    frame: int

    @property
    def geometry(self) -> FrameGeometry:
        return self.header.frames[self.frame]


@dataclass
class DicomSeries:
    """Frames that belong together, sorted along the slice normal (then by instance number)."""

    uid: str
    frames: list[FrameRef]
    description: str = ""

    @property
    def first(self) -> DicomHeader:
        return self.frames[0].header

    @property
    def orientation(self) -> str:
        return orientation_name(self.frames[0].geometry.orientation)

    @property
    def files(self) -> list[Path]:
        return list(dict.fromkeys(ref.header.path for ref in self.frames))

    def positions_along_normal(self) -> np.ndarray | None:
        normal = self.frames[0].geometry.normal
        if normal is None or any(ref.geometry.position is None for ref in self.frames):
            return None
        return np.array([np.dot(ref.geometry.position, normal) for ref in self.frames])

    def slice_spacing(self) -> float | None:
        positions = self.positions_along_normal()
        if positions is None or len(positions) < 2:
            return None
        return float(np.median(np.diff(positions)))

    def sort(self) -> None:
        normal = self.frames[0].geometry.normal

        def key(ref: FrameRef) -> tuple[float, int, int]:
            pos = ref.geometry.position
            along = float(np.dot(pos, normal)) if normal is not None and pos is not None else 0.0
            return (round(along, 4), ref.header.instance_number or 0, ref.frame)

        self.frames.sort(key=key)

    def check_size(self) -> None:
        """Refuse (DicomReadError) a series whose frames together exceed MAX_VOLUME_BYTES as float32, from the
        headers alone: before anything is decoded or allocated."""
        header = self.first
        claim = f"{len(self.frames)} slices of {header.columns} x {header.rows} pixels"
        amount = in_memory_bytes(len(self.frames) * header.rows * header.columns, 2)
        refuse_over(amount, limits.MAX_VOLUME_BYTES, claim, DicomReadError, header.path.parent, claimant="the series")

    def load_slices(self) -> list[SliceImage]:
        """Every frame as its own 2D slice, in series order (each file is read once)."""
        self.check_size()
        loaded: dict[tuple[Path, int], SliceImage] = {}
        for path, refs in _by_file(self.frames):
            ds = read_dataset(path, pixels=True)
            stored = decode_frames(ds, path)
            header = read_header_from(ds, path)
            for ref in refs:
                loaded[(path, ref.frame)] = frame_to_slice(ds, header, stored[ref.frame], ref.frame)
        return [loaded[(ref.header.path, ref.frame)] for ref in self.frames]

    def load_volume(self) -> Volume:
        """Stack the frames into a volume with its patient geometry (RAS affine). Raises GeometryError.

        HU are kept as int16 when that is exact (the usual CT case), else float32.
        """
        self.check_size()
        affine = self.affine()
        rows, columns = self.first.rows, self.first.columns
        order = {(ref.header.path, ref.frame): k for k, ref in enumerate(self.frames)}
        voxels: np.ndarray | None = None
        hu, windows = False, ()
        for path, refs in _by_file(self.frames):
            ds = read_dataset(path, pixels=True)
            stored = decode_frames(ds, path)
            if stored.shape[1:3] != (rows, columns):
                size = f"{stored.shape[2]}x{stored.shape[1]}"
                raise GeometryError(f"slice is {size}, the series is {columns}x{rows}", path)
            for ref in refs:
                with file_errors(path, "pixel values cannot be converted"):
                    values = integer_values(ds, stored[ref.frame], ref.frame)
                    if values is None:
                        values, hu, _ = frame_values(ds, stored[ref.frame], ref.frame)
                    else:
                        hu = is_hu(ds)
                if voxels is None:
                    voxels = np.empty((len(self.frames), rows, columns), dtype=values.dtype)
                    windows = dicom_windows(ds, ref.frame)
                elif values.dtype != voxels.dtype:
                    voxels = voxels.astype(np.float32)
                voxels[order[(path, ref.frame)]] = values
        assert voxels is not None
        return Volume(
            voxels=voxels,
            affine=affine,
            source=self.first.path.parent,
            hu=hu,
            windows=windows,
            description=self.description,
        )

    def affine(self) -> np.ndarray:
        """Voxel (slice, row, column) → RAS mm. Raises GeometryError when the frames do not form a regular grid."""
        first = self.frames[0]
        where = first.header.path
        geometry = first.geometry
        spacing = first.header.pixel_spacing
        if geometry.orientation is None or geometry.position is None:
            raise GeometryError("no ImagePositionPatient/ImageOrientationPatient; cannot place the slices", where)
        if spacing is None:
            raise GeometryError("no PixelSpacing; cannot give the image a physical size", where)
        row_cos, col_cos = np.asarray(geometry.orientation[:3]), np.asarray(geometry.orientation[3:])
        for ref in self.frames[1:]:
            other = ref.geometry.orientation
            if other is None or not np.allclose(other, geometry.orientation, atol=1e-3):
                raise GeometryError("slices have different orientations; this is not one volume", ref.header.path)
        step = self._slice_step(np.cross(row_cos, col_cos))
        lps = np.eye(4)
        lps[:3, 0] = step
        lps[:3, 1] = col_cos * spacing[0]
        lps[:3, 2] = row_cos * spacing[1]
        lps[:3, 3] = geometry.position
        return _LPS_TO_RAS @ lps

    def _slice_step(self, normal: np.ndarray) -> np.ndarray:
        positions = np.array([ref.geometry.position for ref in self.frames], dtype=float)
        if len(positions) == 1:
            return normal * 1.0
        along = positions @ normal
        steps = np.diff(along)
        duplicates = np.flatnonzero(np.abs(steps) < 1e-3)
        if duplicates.size:
            a, b = self.frames[duplicates[0]].header.path, self.frames[duplicates[0] + 1].header.path
            raise GeometryError(
                f"two slices at the same position ({a.name} and {b.name}); the folder mixes acquisitions", a.parent
            )
        median = float(np.median(steps))
        irregular = np.flatnonzero(np.abs(steps - median) > 0.1 * abs(median) + 0.01)
        if irregular.size:
            i = int(irregular[0])
            raise GeometryError(
                f"irregular slice spacing: {steps[i]:.2f} mm between {self.frames[i].header.path.name} and "
                f"{self.frames[i + 1].header.path.name}, {median:.2f} mm elsewhere (a missing slice?)",
                self.frames[i].header.path.parent,
            )
        return (positions[-1] - positions[0]) / (len(positions) - 1)


def _by_file(frames: Iterable[FrameRef]) -> list[tuple[Path, list[FrameRef]]]:
    grouped: dict[Path, list[FrameRef]] = {}
    for ref in frames:
        grouped.setdefault(ref.header.path, []).append(ref)
    return list(grouped.items())


@dataclass
class DicomScan:
    """The image series found under a path; the files skipped, with the reason (to be told: bad DICOM, DICOM that is
    not an image, and files that claim to be DICOM but are not: named ``.dcm`` or ``.dicom``, or empty); and the
    files passed over quietly, with the reason: not DICOM, and not claiming to be, such as the other files of a PACS
    export."""

    series: list[DicomSeries] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    passed_over: list[tuple[Path, str]] = field(default_factory=list)


def scan_dicom(path: str | Path) -> DicomScan:
    """Find DICOM image series in a file or a folder (searched recursively).

    Series are split by SeriesInstanceUID. When that is missing they are split by frame of reference, orientation and
    image size. Non-image DICOM objects and non-DICOM files are listed in ``skipped``.
    """
    root = Path(path)
    if not root.exists():
        raise ImageReadError("no such file or folder", root)
    if root.is_file():
        return scan_dicom_files([root], strict=True)
    return scan_dicom_files(sorted(p for p in root.rglob("*") if p.is_file()))


def scan_dicom_files(files: Sequence[Path], *, strict: bool = False) -> DicomScan:
    """:func:`scan_dicom` over the given files. Hidden files and files with a suffix that is never DICOM are passed
    over silently; ``strict`` raises the reason a file is not DICOM instead of listing it."""
    scan = DicomScan()
    groups: dict[tuple, list[FrameRef]] = defaultdict(list)
    for file in files:
        if not strict and (file.suffix.lower() in _NOT_DICOM_SUFFIXES or file.name.startswith(".")):
            continue
        try:
            header = read_header(file)
        except NotDicomError as exc:
            if strict:
                raise
            told = _not_dicom_reason(file, exc.message)
            (scan.passed_over if told is None else scan.skipped).append((file, told or exc.message))
            continue
        except DicomReadError as exc:
            if strict:
                raise
            scan.skipped.append((file, exc.message))
            continue
        if not header.has_pixels:
            if header.rows > 0 or "Image Storage" in UID(header.sop_class_uid).name:
                scan.skipped.append((file, "DICOM image without pixel data (truncated or incomplete)"))
            else:
                scan.skipped.append((file, "DICOM without pixel data (not an image)"))
            continue
        for frame in range(header.frame_count):
            groups[_series_key(header, frame)].append(FrameRef(header, frame))
    for key, frames in groups.items():
        first = frames[0].header
        series = DicomSeries(uid=first.series_uid or key[0], frames=frames, description=first.series_description)
        series.sort()
        scan.series.append(series)
    scan.series.sort(key=lambda s: (s.first.series_number or 0, str(s.first.path)))
    return scan


def _not_dicom_reason(file: Path, reason: str) -> str | None:
    """What to tell about a file that is not DICOM: an empty file (cut off, or never written) and a file named
    ``.dcm`` or ``.dicom`` are named with the reason; any other file is passed over quietly (None)."""
    try:
        empty = file.stat().st_size == 0
    except OSError:
        empty = False
    if empty:
        return reason
    if file.suffix.lower() in DICOM_SUFFIXES:
        return f"named {file.suffix}, but {reason}"
    return None


def _series_key(header: DicomHeader, frame: int) -> tuple:
    orientation = header.frames[frame].orientation
    rounded = tuple(round(v, 2) for v in orientation) if orientation else None
    uid = header.series_uid or f"no-uid:{header.frame_of_reference_uid}:{header.series_number}"
    return (uid, rounded, header.rows, header.columns)
