"""One wording for a file that cannot be read at all (missing, a folder, an operating-system error), whichever
format's reader meets it: each names the file and says which of the three it is."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from core.annotations.labelme_io import read_labelme
from core.errors import AnnotationFileError, DicomReadError
from core.fileio import read_failure
from core.imaging.dicom import read_dicom


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), "file not found"),
        (IsADirectoryError(errno.EISDIR, "Is a directory"), "is a folder, not a DICOM file"),
        (PermissionError(errno.EACCES, "Permission denied"), "cannot read: Permission denied"),
        (OSError("device gone"), "cannot read: device gone"),
    ],
)
def test_read_failure_says_which_failure(exc, message):
    error = read_failure(DicomReadError, exc, Path("/x/a.dcm"), "DICOM file")
    assert isinstance(error, DicomReadError)
    assert message in str(error)
    assert "a.dcm" in str(error)


@pytest.mark.parametrize(("reader", "error", "kind"), [(read_dicom, DicomReadError, "DICOM file"),
                                                       (read_labelme, AnnotationFileError, "JSON file")])
def test_readers_name_a_missing_file_and_a_folder(tmp_path, reader, error, kind):
    missing = tmp_path / "gone.bin"
    with pytest.raises(error, match="file not found") as caught:
        reader(missing)
    assert "gone.bin" in str(caught.value)
    folder = tmp_path / "a-folder.json"
    folder.mkdir()
    with pytest.raises(error, match=f"is a folder, not a {kind}") as caught:
        reader(folder)
    assert "a-folder.json" in str(caught.value)


@pytest.mark.parametrize(("reader", "error"), [(read_dicom, DicomReadError), (read_labelme, AnnotationFileError)])
def test_readers_pass_on_the_systems_reason(tmp_path, monkeypatch, reader, error):
    target = tmp_path / "slice.bin"
    target.write_bytes(b"x" * 300)

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(error, match="cannot read: Permission denied") as caught:
        reader(target)
    assert "slice.bin" in str(caught.value)
