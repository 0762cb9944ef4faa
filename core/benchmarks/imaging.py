"""Imaging benchmark: one DICOM slice read and windowed, and a 300-slice series loaded and reformatted.

The 300-slice series is written to a temporary folder from the bundled real CT (its 20 slices repeated at 1 mm
steps), uncompressed, as a scanner or PACS export would give it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

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


def _source_slices() -> tuple[list[np.ndarray], list[Path]]:
    folder = sample_dicom_series()
    scan = scan_dicom(folder)
    if scan.series:
        series = scan.series[0]
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


def bench_io(repeats: int = 5) -> dict[str, Any]:
    slices, compressed_files = _source_slices()
    with tempfile.TemporaryDirectory(prefix="vr-bench-") as tmp:
        folder = Path(tmp) / "series"
        folder.mkdir()
        write_series(folder, slices)
        files = sorted(folder.iterdir())

        def read_and_window(paths: list[Path]) -> Callable[[], None]:
            def job() -> None:
                for path in paths:
                    read_dicom(path)[0].display(BONE)

            return job

        sample = files[:20]
        slice_s, _ = _median_time(read_and_window(sample), repeats)
        result: dict[str, Any] = {"read_window_ms": 1000 * slice_s / len(sample)}
        if compressed_files:
            j2k_s, _ = _median_time(read_and_window(compressed_files), max(1, repeats // 2))
            result["read_window_j2k_ms"] = 1000 * j2k_s / len(compressed_files)

        stages: dict[str, list[float]] = {"scan_s": [], "load_s": [], "reformat_s": []}

        def load_and_reformat() -> None:
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
            result["_volume"] = volume

        total_s, totals = _median_time(load_and_reformat, repeats)
        volume = result.pop("_volume")
        reformat = SagittalReformat(volume)
        every_plane_s, _ = _median_time(lambda: [reformat.slice(i) for i in range(reformat.plane_count)], 1)
    result.update({key: statistics.median(values) for key, values in stages.items()})
    result.update(
        {
            "series_slices": SERIES_SLICES,
            "series_load_reformat_s": total_s,
            "series_load_reformat_max_s": max(totals),
            "reformat_every_plane_s": every_plane_s,
            "sagittal_shape": list(reformat.output_shape),
            "repeats": repeats,
        }
    )
    result["lines"] = [
        f"read + window one 512x512 DICOM slice (uncompressed): {result['read_window_ms']:.1f} ms median (aim ≤ 20 ms)",
        *(
            [f"read + window one 512x512 DICOM slice (JPEG 2000): {result['read_window_j2k_ms']:.1f} ms median"]
            if "read_window_j2k_ms" in result
            else []
        ),
        f"load {SERIES_SLICES}-slice series + sagittal reformat (11 slabs): {total_s:.2f} s median, "
        f"max {max(totals):.2f} s (aim ≤ 3 s)",
        f"  scan {result['scan_s']:.2f} s, load {result['load_s']:.2f} s, reformat {result['reformat_s']:.3f} s",
        f"  every sagittal plane ({reformat.plane_count} of {reformat.output_shape[1]}x{reformat.output_shape[0]}): "
        f"{every_plane_s:.2f} s",
    ]
    return result
