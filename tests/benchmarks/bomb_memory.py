"""Peak memory on hostile files (not collected by pytest): ``python tests/benchmarks/bomb_memory.py [--kinds …]``.

Writes the worst file of each kind that the header limits refuse (``core/imaging/limits.py``), runs
``vertebra-review inspect`` on each in a fresh process under ``/usr/bin/time -v`` (its own peak resident memory where
that tool is missing), and prints a table: file, size, exit status, peak resident memory, wall time, and the line the
user sees. The baseline is the same program's peak for ``--version`` (the libraries it loads).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np

from tests.core.test_bombs import axial_series, dicom_claiming, gz_of_zeros, nifti_claiming, nifti_header, sparse_file

_PEAK = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
_RUSAGE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:]); "
           "print(f'Maximum resident set size (kbytes): {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}', "
           "file=sys.stderr)")


def _pixdim(root: Path) -> Path:
    path = root / "pixdim.nii.gz"
    nib.save(nib.Nifti1Image(np.full((16, 16, 16), -1000, np.int16), np.diag([1.0, 0.0001, 1000.0, 1.0])), path)
    return path


def _gz(root: Path) -> Path:
    path = root / "bomb.nii.gz"
    path.write_bytes(gz_of_zeros(nifti_header((1024, 1024, 1024), np.int32).binaryblock + b"\x00" * 4, 4 << 30))
    return path


def _png(root: Path) -> Path:
    from tests.core.test_hostile_limits import zeros_png

    return zeros_png(root / "bomb.png", 8000)


def _frame(root: Path) -> Path:
    import pydicom
    from pydicom.encaps import encapsulate

    path = dicom_claiming(root / "frame.dcm", rows=12000, columns=12000)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"  # JPEG 2000: a 2 KB frame can claim this much
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(200)])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)
    return path


def _study(root: Path) -> Path:
    from core.study.layout import Study

    Study.create(root / "study")
    (root / "study" / "study.json").unlink()
    sparse_file(root / "study" / "study.json", 1 << 30)
    return root / "study"


def _flat(root: Path) -> Path:
    path = root / "flat.nii"
    nib.save(nib.Nifti1Image(np.zeros((48, 48), np.float32) - 1000, np.eye(4)), path)
    return path


KINDS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "frames": ("DICOM claiming 2147483647 frames, 128 B of pixels",
               lambda root: dicom_claiming(root / "frames.dcm", frames=2147483647)),
    "nifti": ("NIfTI of 385 B claiming 1024x1024x1000 float64",
              lambda root: nifti_claiming(root / "claims.nii", (1024, 1024, 1000), np.float64)),
    "gz": ("NIfTI .gz of 4 MB inflating to 4 GiB", _gz),
    "pixdim": ("NIfTI with pixdim (1, 0.0001, 1000 mm)", _pixdim),
    "series": ("DICOM series, 0.0001 mm pixels 1000 mm apart",
               lambda root: axial_series(root / "series", spacing=0.0001, step=1000.0)),
    "flat": ("2-D NIfTI", _flat),
    "labelme": ("LabelMe JSON of 200 MB", lambda root: sparse_file(root / "huge.json", 200 * 1000 * 1000)),
    "png": ("PNG of 8000 x 8000 black pixels (190 KB)", _png),
    "frame": ("DICOM whose JPEG 2000 frame claims 12000 x 12000 pixels", _frame),
    "study": ("study whose study.json is 1 GiB", _study),
}


def _measure(*command: str) -> tuple[subprocess.CompletedProcess, int]:
    time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    prefix = [time, "-v"] if time else [sys.executable, "-c", _RUSAGE]
    done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=300)
    return done, int(_PEAK.search(done.stderr).group(1)) // 1024


def main(kinds: list[str]) -> list[str]:
    program = [sys.executable, "-m", "desktop.cli"]
    lines = [f"baseline (--version): {_measure(*program, '--version')[1]} MiB peak resident",
             "| file | size | exit | peak resident | what the user sees |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as temporary:
        for kind in kinds:
            name, make = KINDS[kind]
            path = make(Path(temporary))
            size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*"))
            done, peak = _measure(*program, "inspect", str(path))
            said = [line for line in done.stderr.splitlines() if line.startswith("vertebra-review")]
            shown = said[0].replace(str(path), path.name) if said else "described (" + done.stdout[:60] + "…)"
            lines.append(f"| {name} | {size:,} B | {done.returncode} | {peak} MiB | {shown} |")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=list(KINDS))
    print("\n".join(main(parser.parse_args().kinds)))
