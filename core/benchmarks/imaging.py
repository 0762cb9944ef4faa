"""Imaging benchmark: one DICOM slice read and windowed, and a 300-slice series loaded and reformatted.

The 300-slice series is written to a temporary folder from the bundled real CT (its 20 slices repeated at 1 mm
steps), uncompressed, as a scanner or PACS export would give it. At the ``smoke`` size the series has 8 slices.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.benchmarks import scale_for
from core.imaging.dicom import read_dicom
from core.imaging.dicom_series import scan_dicom
from core.imaging.dicom_write import SliceTags, derived_uid, write_ct_slice
from core.imaging.reformat import SagittalReformat, sagittal_slices
from core.imaging.windowing import BONE
from core.resources import sample_dicom_series

SERIES_SLICES = 300


def _median_time(func: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _source_slices(limit: int | None = None) -> tuple[list[np.ndarray], list[Path]]:
    """The bundled real series' slices (the first ``limit``, or all) and their JPEG 2000 files."""
    folder = sample_dicom_series()
    scan = scan_dicom(folder)
    if scan.series:
        series = scan.series[0]
        if limit is not None:
            files = series.files[:limit]
            return [read_dicom(path)[0].pixels for path in files], files
        return [s.pixels for s in series.load_slices()], series.files
    rng = np.random.default_rng(0)
    return [rng.normal(0, 200, (512, 512)).astype(np.float32) for _ in range(20)], []


def write_series(folder: Path, slices: list[np.ndarray], count: int = SERIES_SLICES, step_mm: float = 1.0) -> None:
    """An uncompressed axial series of ``count`` slices, ``step_mm`` apart."""
    for i in range(count):
        tags = SliceTags(
            patient_id="BENCH",
            study_uid=derived_uid("bench", "study"),
            series_uid=derived_uid("bench", "series"),
            sop_uid=derived_uid("bench", str(i)),
            frame_of_reference_uid=derived_uid("bench", "for"),
            instance_number=i + 1,
            spacing_mm=(0.9765625, 0.9765625),
            thickness_mm=step_mm,
            position_lps=(-250.0, -250.0, -i * step_mm),
            orientation_lps=(1, 0, 0, 0, 1, 0),
            image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
        )
        write_ct_slice(folder / f"IM{i:04d}", slices[i % len(slices)], tags)


@dataclass(frozen=True)
class IoScale:
    """How much ``bench io`` reads: the series it writes, loads and reformats, the slices it reads one by one, and
    how many of the bundled JPEG 2000 slices (None: all)."""

    series_slices: int
    sample_slices: int
    compressed_slices: int | None


SCALES = {"full": IoScale(SERIES_SLICES, 20, None), "smoke": IoScale(8, 2, 1)}


def _read_and_window(paths: list[Path]) -> Callable[[], None]:
    def job() -> None:
        for path in paths:
            read_dicom(path)[0].display(BONE)

    return job


def _load_and_reformat(folder: Path, repeats: int) -> dict[str, Any]:
    """Scan, load and reformat the series ``repeats`` times: the median of each stage and of the whole."""
    stages: dict[str, list[float]] = {"scan_s": [], "load_s": [], "reformat_s": []}
    volumes: list[Any] = []

    def job() -> None:
        t0 = time.perf_counter()
        series = scan_dicom(folder).series[0]
        t1 = time.perf_counter()
        volume = series.load_volume()
        t2 = time.perf_counter()
        sagittal_slices(volume)
        t3 = time.perf_counter()
        stages["scan_s"].append(t1 - t0)
        stages["load_s"].append(t2 - t1)
        stages["reformat_s"].append(t3 - t2)
        volumes[:] = [volume]

    total_s, totals = _median_time(job, repeats)
    reformat = SagittalReformat(volumes[0])
    every_plane_s, _ = _median_time(lambda: [reformat.slice(i) for i in range(reformat.plane_count)], 1)
    return {
        **{key: statistics.median(values) for key, values in stages.items()},
        "series_load_reformat_s": total_s,
        "series_load_reformat_max_s": max(totals),
        "reformat_every_plane_s": every_plane_s,
        "sagittal_shape": list(reformat.output_shape),
        "_planes": reformat.plane_count,
    }


def bench_io(repeats: int = 5, size: str = "full") -> dict[str, Any]:
    scale = scale_for(SCALES, size)
    slices, compressed_files = _source_slices(scale.compressed_slices)
    with tempfile.TemporaryDirectory(prefix="vr-bench-") as tmp:
        folder = Path(tmp) / "series"
        folder.mkdir()
        write_series(folder, slices, scale.series_slices)
        sample = sorted(folder.iterdir())[: scale.sample_slices]
        slice_s, _ = _median_time(_read_and_window(sample), repeats)
        result: dict[str, Any] = {"read_window_ms": 1000 * slice_s / len(sample)}
        if compressed_files:
            j2k_s, _ = _median_time(_read_and_window(compressed_files), max(1, repeats // 2))
            result["read_window_j2k_ms"] = 1000 * j2k_s / len(compressed_files)
        result.update(_load_and_reformat(folder, repeats))
    planes = result.pop("_planes")
    result.update({"series_slices": scale.series_slices, "repeats": repeats, "size": size})
    result["lines"] = _lines(result, planes)
    return result


def _lines(result: dict[str, Any], planes: int) -> list[str]:
    width, height = result["sagittal_shape"][1], result["sagittal_shape"][0]
    j2k = result.get("read_window_j2k_ms")
    return [
        f"read + window one 512x512 DICOM slice (uncompressed): {result['read_window_ms']:.1f} ms median (aim ≤ 20 ms)",
        *([f"read + window one 512x512 DICOM slice (JPEG 2000): {j2k:.1f} ms median"] if j2k is not None else []),
        f"load {result['series_slices']}-slice series + sagittal reformat (11 slabs): "
        f"{result['series_load_reformat_s']:.2f} s median, max {result['series_load_reformat_max_s']:.2f} s "
        f"(aim ≤ 3 s)",
        f"  scan {result['scan_s']:.2f} s, load {result['load_s']:.2f} s, reformat {result['reformat_s']:.3f} s",
        f"  every sagittal plane ({planes} of {width}x{height}): {result['reformat_every_plane_s']:.2f} s",
    ]
