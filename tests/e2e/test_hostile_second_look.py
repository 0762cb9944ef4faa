"""Issue 18, a second look, on the command line: what got past the first defences, run as a user runs it.

- ``import`` read every file whole for its fingerprint before any limit was checked: a sparse 3 GiB NIfTI whose
  header claims 64^3 voxels, a 3 GiB PNG or a 100 MB lone LabelMe file was hashed (20 GiB took 131 s) before the
  refusal. Now each is refused from its header and size, and the good file beside it is imported.
- nibabel printed its own header fixes ("pixdim[1,2,3] should be non-zero ...") past the filter on library output.
- ``export`` followed an annotation file linked out of the study and copied what it pointed to into the export.
- ``kill -9`` during an import left half a case in the study for good (listed, never recorded, never removed).
- A 2 KB JPEG 2000 DICOM claiming 12000 x 12000 pixels drove ``import`` to 1.9 GB.

Every hostile file is made here at test time, small or sparse.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate

import core
from core.imaging import limits
from core.study import import_sources as importer
from core.study.layout import IMPORTING, Study
from desktop.cli import main
from tests.core.test_bombs import dicom_claiming, nifti_header, sparse_file

REPO = Path(core.__file__).resolve().parents[1]


def here(capfd: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capfd.readouterr()
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def skipped_lines(stderr: str) -> dict[str, str]:
    lines = [line[len("skipped "):] for line in stderr.splitlines() if line.startswith("skipped ")]
    return dict(line.split(": ", 1) for line in lines)


def png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.arange(48 * 64) % 251 + value).astype(np.uint8).reshape(48, 64)).save(path)
    return path


# -- import: every limit before the file is read whole ----------------------------------------------------------------
@pytest.fixture
def no_digest_of_big_files(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Fails the test if the importer reads a file over 1 MiB whole (for its fingerprint); lists the files read."""
    digest = importer._file_digest
    read: list[Path] = []

    def guarded(path: Path) -> str:
        assert path.stat().st_size < limits.MiB, f"{path} was read whole before its limits were checked"
        read.append(path)
        return digest(path)

    monkeypatch.setattr(importer, "_file_digest", guarded)
    return read


def test_import_refuses_oversized_files_before_reading_them_and_imports_the_rest(tmp_path: Path, capfd,
                                                                                 no_digest_of_big_files) -> None:
    source = tmp_path / "source"
    good = png(source / "slices" / "good.png")
    big_png = sparse_file(source / "slices" / "big.png", limits.MAX_FILE_BYTES + limits.MiB)
    big_nifti = sparse_file(source / "volume.nii", limits.MAX_FILE_BYTES + limits.MiB)
    with big_png.open("r+b") as handle:
        handle.write(good.read_bytes())
    with big_nifti.open("r+b") as handle:  # the header claims 64^3 voxels: it is the file that is too big
        handle.write(nifti_header((64, 64, 64), np.int16).binaryblock)
    lying = source / "claims.nii"
    lying.write_bytes(nifti_header((2048, 2048, 1200), np.float32).binaryblock + bytes(4))
    lone = sparse_file(source / "lone.json", limits.MAX_ANNOTATION_BYTES + 1)

    code, out, err = here(capfd, "import", source, tmp_path / "study")

    assert code == 3, err
    assert "case-0001: 1 slices" in out and no_digest_of_big_files == [good]
    skipped = skipped_lines(err)
    assert skipped[str(big_png)] == skipped[str(big_nifti)] == "the file is 2.0 GiB; the limit is 2 GiB per file"
    assert skipped[str(lying)] == ("the file claims 2048 x 2048 x 1200 voxels of float32 (18.8 GiB); the limit is "
                                   "2 GiB")
    assert skipped[str(lone)].endswith("LabelMe JSON over 64 MB is refused")
    assert "Traceback" not in err and "internal error" not in err


def test_a_compressed_frame_bomb_is_skipped_and_the_good_slice_imported(tmp_path: Path, capfd) -> None:
    source = tmp_path / "source"
    png(source / "good.png")
    bomb = dicom_claiming(source / "bomb.dcm", rows=12000, columns=12000)
    ds = pydicom.dcmread(bomb)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(200)])
    ds["PixelData"].VR = "OB"
    ds.save_as(bomb)

    code, out, err = here(capfd, "import", source, tmp_path / "study")

    assert code == 3 and "imported 1 cases, 1 slices" in out, err
    assert skipped_lines(err)[str(bomb)] == ("the file claims an image of 12000 x 12000 pixels (549.3 MiB); the "
                                             "limit is 64 MiB")


# -- only our line reaches stderr: nibabel's own handler too -----------------------------------------------------------
def vr(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The command in a fresh interpreter: what the libraries print on their own (their handlers) is the point."""
    return subprocess.run([sys.executable, "-m", "desktop.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


@pytest.mark.slow  # two fresh interpreters
def test_nibabel_header_fixes_are_a_detail_for_debug(tmp_path: Path) -> None:
    header = nib.Nifti1Header()
    header.set_data_shape((16, 16, 16))
    header.set_data_dtype(np.int16)
    header["pixdim"][1:4] = (1.0, 1.0, 0.0)  # nibabel fixes it (0 becomes 1) and says so through its own handler
    path = tmp_path / "zero-pixdim.nii"
    path.write_bytes(header.binaryblock + bytes(4) + np.full(16**3, -1000, np.int16).tobytes())

    result = vr("inspect", path)

    assert result.returncode == 0 and json.loads(result.stdout)["kind"] == "nifti"
    assert result.stderr == "", "nibabel's message reached the user"
    debug = vr("--debug", "inspect", path)
    assert debug.returncode == 0 and "pixdim[1,2,3] should be non-zero" in debug.stderr


# -- export: annotation files linked out of the study are not followed ------------------------------------------------
def test_export_does_not_copy_an_annotation_linked_out_of_the_study(tmp_path: Path, capfd) -> None:
    source = tmp_path / "source"
    png(source / "a.png")
    png(source / "b.png", 5)
    code, _, err = here(capfd, "import", source, tmp_path / "study", "--reader", "rx")
    assert code == 0, err
    secret = tmp_path / "elsewhere.json"
    secret.write_text(json.dumps({"version": "5.0.1", "shapes": [
        {"label": "L1", "points": [[1, 1], [9, 9]], "shape_type": "rectangle", "description": "SECRET ELSEWHERE"}],
        "imagePath": "a.png", "imageData": None, "imageWidth": 64, "imageHeight": 48}))
    consensus = tmp_path / "study" / "consensus" / "case-0001" / "s001.json"
    consensus.parent.mkdir(parents=True)
    consensus.symlink_to(secret)
    out = tmp_path / "export"

    code, said, err = here(capfd, "export", tmp_path / "study", out)

    assert code == 3, err
    assert "exported 2 images and 0 annotations" in said
    assert "leads outside" in skipped_lines(err)["case-0001/s001"]
    assert not any(b"SECRET ELSEWHERE" in f.read_bytes() for f in out.rglob("*") if f.is_file())


# -- kill -9 during an import ------------------------------------------------------------------------------------------
#: An import whose third case stops after its first slice, says so, and waits to be killed.
STALLED_IMPORT = """
import sys, time
from core.study import import_case as importer
write = importer._write_image
def stall(study, case, slice_id, *args):
    note = write(study, case, slice_id, *args)
    if case == "case-0003":
        print("stalled", flush=True)
        time.sleep(300)
    return note
importer._write_image = stall
from desktop.cli import main
main(["import", sys.argv[1], sys.argv[2], "--reader", "rx"])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_case_left_by_kill_9_during_an_import_is_hidden_then_removed(tmp_path: Path, capfd) -> None:
    source, study = tmp_path / "source", tmp_path / "study"
    for number in range(5):
        for index in range(2):
            png(source / f"exam{number}" / f"{index}.png", number * 10 + index)
    process = subprocess.Popen([sys.executable, "-c", STALLED_IMPORT, str(source), str(study)],
                               stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 120
        while process.stdout.readline().strip() != "stalled":
            assert process.poll() is None and time.monotonic() < deadline, "the import never reached case-0003"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    half = study / "images" / "case-0003"
    assert (half / IMPORTING).exists() and list(half.glob("*.png")), "kill -9 left half a case"
    assert Study.open(study).cases() == ["case-0001", "case-0002"], "half a case is never listed"

    code, _, err = here(capfd, "import", source, study, "--reader", "rx")

    assert code == 0, err
    assert "note: removed case-0003, the partial output of an import that was killed" in err
    reopened = Study.open(study)
    assert reopened.cases() == [f"case-{n:04d}" for n in range(1, 6)]
    assert sorted(r["case"] for r in reopened.settings.imports) == reopened.cases()
    assert all(len(reopened.slices(case)) == 2 for case in reopened.cases())
    assert not list((study / "images").glob(f"*/{IMPORTING}"))
