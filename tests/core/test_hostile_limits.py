"""Issue 18, a second look: hostile files and faults that got past the first defences, each refused by its mechanism.

- One 2-D image is limited by its decoded bytes (:data:`~core.imaging.limits.MAX_IMAGE_BYTES`), not by a pixel count:
  a 250 KB PNG of 8000 x 8000 pixels, a LabelMe ``imageData`` of 5000 x 5000, or a 2 KB JPEG 2000 DICOM frame of
  12000 x 12000 is refused from its header (each once reached 1.2-1.9 GB resident).
- ``study.json`` is refused by its size before it is read (a 1 GiB one took 2.1 GB).
- An annotation file of the study that is a link out of it (or a pipe) is not followed: export copied its content.
- A case whose import was killed is not listed, and the next import removes it (it stayed for ever, half written).

Every hostile file is made here at test time, small or sparse.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import zlib
from pathlib import Path

import pydicom
import pytest
from filelock import FileLock, Timeout
from PIL import Image
from pydicom.encaps import encapsulate

from core.annotations.labelme_io import read_labelme
from core.errors import AnnotationFileError, DicomReadError, ImageTooLargeError, StudyError
from core.imaging import limits
from core.imaging.dicom import read_dicom, read_header
from core.imaging.raster import decode_raster, read_raster
from core.progress import run
from core.study.case_claim import abandoned_cases, claim_case
from core.study.importer import import_source
from core.study.layout import IMPORTING, Study
from tests.core.imaging_helpers import png_chunk, png_claiming_size
from tests.core.test_bombs import dicom_claiming, refusal, sparse_file


def zeros_png(path: Path, side: int, *, colour_type: int = 2, channels: int = 3) -> Path:
    """A real PNG of ``side`` x ``side`` black pixels: a few hundred KB that decode to hundreds of MB."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + side * channels)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = side.to_bytes(4, "big") * 2 + bytes([8, colour_type, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data)
                     + png_chunk(b"IEND", b""))
    return path


# -- one 2-D image: limited by its decoded bytes ---------------------------------------------------------------------
@pytest.mark.parametrize(("colour_type", "channels"), [(0, 1), (2, 3), (6, 4)], ids=["grey", "rgb", "rgba"])
def test_a_png_bomb_is_refused_by_its_decoded_bytes(tmp_path: Path, colour_type: int, channels: int) -> None:
    """64 MP was under the old pixel limit: decoding it took 1.2 GB."""
    path = zeros_png(tmp_path / "bomb.png", 8000, colour_type=colour_type, channels=channels)
    assert path.stat().st_size < 300_000

    error = refusal(ImageTooLargeError, read_raster, path)

    assert error.message == "the image claims 8000 x 8000 pixels (244.1 MiB); the limit is 64 MiB"


def test_image_data_over_the_image_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "embedded.json"
    data = base64.b64encode(png_claiming_size(5000, 5000)).decode()
    path.write_text(json.dumps({"version": "5.0.1", "shapes": [], "imagePath": "x.png", "imageData": data,
                                "imageWidth": 5000, "imageHeight": 5000}))

    error = refusal(AnnotationFileError, read_labelme, path)

    assert "'imageData' holds an image too large to open" in error.message
    assert "5000 x 5000 pixels (95.4 MiB); the limit is 64 MiB" in error.message


def test_an_image_at_the_limit_is_read(tmp_path: Path) -> None:
    side = 4096  # 4096 x 4096 float32 is exactly 64 MiB
    image = decode_raster(zeros_png(tmp_path / "edge.png", side).read_bytes())
    assert image.pixels.shape == (side, side)


def test_a_compressed_dicom_frame_over_the_image_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    """A 2 KB JPEG 2000 frame can claim 12000 x 12000 pixels (576 MB as float32, under the 2 GiB volume limit)."""
    path = dicom_claiming(tmp_path / "frame.dcm", rows=12000, columns=12000)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"  # JPEG 2000 lossless: no length to check
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(200)])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)

    for read in (read_header, read_dicom):
        error = refusal(DicomReadError, read, path)
        assert error.message == "the file claims an image of 12000 x 12000 pixels (549.3 MiB); the limit is 64 MiB"


def test_uncompressed_frames_over_the_image_limit_name_the_limit_not_a_truncation(tmp_path: Path) -> None:
    path = dicom_claiming(tmp_path / "frames.dcm", frames=3, rows=5000, columns=5000)

    error = refusal(DicomReadError, read_header, path)

    assert error.message == "the file claims frames of 5000 x 5000 pixels (95.4 MiB); the limit is 64 MiB"


# -- study.json: its size before it is read ---------------------------------------------------------------------------
def test_a_huge_study_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    root = tmp_path / "study"
    Study.create(root)
    (root / "study.json").unlink()
    sparse_file(root / "study.json", 100 * limits.MiB)

    error = refusal(StudyError, lambda _: Study.open(root), root / "study.json")

    assert error.message == "the study settings file is 100 MiB; the limit is 64 MiB"


# -- annotation files: inside the study, regular files ----------------------------------------------------------------
@pytest.fixture
def study(tmp_path: Path) -> Study:
    root = tmp_path / "study"
    source = tmp_path / "source"
    source.mkdir()
    Image.new("L", (40, 30)).save(source / "a.png")
    (source / "a.json").write_text(json.dumps({"version": "5.0.1", "shapes": [
        {"label": "L1", "points": [[5, 5], [20, 20]], "shape_type": "rectangle"}],
        "imagePath": "a.png", "imageData": None, "imageWidth": 40, "imageHeight": 30}))
    run(import_source(source, root))
    return Study.open(root)


def test_an_annotation_linked_out_of_the_study_is_not_followed(study: Study, tmp_path: Path) -> None:
    reader = study.readers()[0]
    path = study.annotation_path("case-0001", "s001", reader=reader)
    outside = tmp_path / "elsewhere.json"
    shutil.copyfile(path, outside)
    path.unlink()
    path.symlink_to(outside)

    with pytest.raises(AnnotationFileError, match=r"leads outside .* symbolic link") as caught:
        study.load_annotation("case-0001", "s001", reader=reader)
    assert caught.value.path == str(path)


def test_an_annotation_that_is_a_pipe_is_refused_not_opened(study: Study) -> None:
    reader = study.readers()[0]
    path = study.annotation_path("case-0001", "s001", reader=reader)
    path.unlink()
    os.mkfifo(path)

    with pytest.raises(AnnotationFileError, match="is not a regular file"):
        study.load_annotation("case-0001", "s001", reader=reader)
    assert study.load_annotation("case-0001", "s002", reader=reader) is None  # none there: None, as before


# -- a case an import is writing, or was killed writing --------------------------------------------------------------
def test_a_case_being_imported_is_not_listed_and_a_killed_import_is_removed_by_the_next(study: Study,
                                                                                         tmp_path: Path) -> None:
    root = study.root
    live = claim_case(study)  # an import still writing (its lock held)
    killed = claim_case(study)  # what kill -9 leaves: the marker, its lock gone, some of the case's files
    (root / "images" / killed.case / "s001.png").write_bytes(b"half")
    (root / "readers" / "imported" / killed.case).mkdir(parents=True)
    killed.lock.release()
    assert study.cases() == ["case-0001"]
    assert abandoned_cases(study) == [killed.case]

    source = tmp_path / "more"
    source.mkdir()
    Image.new("L", (16, 16), 7).save(source / "b.png")
    report = run(import_source(source, root))

    assert f"removed {killed.case}, the partial output of an import that was killed" in report.notes
    assert not (root / "readers" / "imported" / killed.case).exists()
    assert [c.case for c in report.cases] == [killed.case]  # the lowest free id again, for the new examination
    assert (root / "images" / killed.case / "s001.png").read_bytes() != b"half"
    assert (root / "images" / live.case / IMPORTING).exists(), "a live import is left alone"
    assert Study.open(root).cases() == ["case-0001", killed.case]
    live.done()
    assert live.case in Study.open(root).cases()


def test_a_killed_import_whose_record_was_written_keeps_its_case(study: Study) -> None:
    """Killed between writing the record and removing the marker: the case is complete, only the marker goes."""
    marker = study.root / "images" / "case-0001" / IMPORTING
    marker.touch()
    assert study.cases() == []
    claim = claim_case(study)
    claim.abandon()
    assert not marker.exists() and study.cases() == ["case-0001"]


def test_the_marker_lock_tells_a_live_import_from_a_killed_one(study: Study) -> None:
    claim = claim_case(study)
    try:
        with pytest.raises(Timeout):
            FileLock(study.root / "images" / claim.case / IMPORTING, timeout=0).acquire()
    finally:
        claim.abandon()
    assert not (study.root / "images" / claim.case).exists()


def test_a_huge_reader_file_counts_as_not_reviewed_without_being_read(tmp_path, monkeypatch):
    from core.consensus import reading
    from core.imaging.limits import MAX_ANNOTATION_BYTES

    small, huge = tmp_path / "small.json", tmp_path / "huge.json"
    small.write_text('{"reviewed": true}')
    with huge.open("wb") as out:  # sparse: claims more than the limit, costs no disk
        out.write(b'{"reviewed": true, "pad": "')
        out.truncate(MAX_ANNOTATION_BYTES + 1)
    read = []
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (read.append(self.name), real(self, *a, **k))[1])
    assert reading._is_reviewed(small) is True
    assert reading._is_reviewed(huge) is False and read == ["small.json"]
