"""Atomic writes: a temporary file beside the target, then os.replace; the old file survives every failure."""

from __future__ import annotations

import json
import os
import stat
import tempfile

import pytest

from core.errors import FileWriteError
from core.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text, atomic_write_together


def test_write_creates_parent_folders_and_returns_the_path(tmp_path):
    target = tmp_path / "a" / "b" / "c.bin"
    assert atomic_write_bytes(target, b"\x00\x01data") == target
    assert target.read_bytes() == b"\x00\x01data"
    assert atomic_write_bytes(str(tmp_path / "s.bin"), b"x") == tmp_path / "s.bin"


def test_write_replaces_the_old_content(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old and longer")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_new_content_goes_to_a_temporary_file_beside_the_target(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    target.write_text("old")
    real_replace = os.replace
    seen = {}

    def checking_replace(src, dst):
        seen["src"], seen["dst"] = os.fspath(src), os.fspath(dst)
        seen["target_then"] = target.read_text()
        with open(src, encoding="utf-8") as handle:
            seen["temp_content"] = handle.read()
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", checking_replace)
    atomic_write_text(target, "new")
    assert seen["target_then"] == "old"  # a reader meanwhile sees the old content whole
    assert seen["temp_content"] == "new"
    assert os.path.dirname(seen["src"]) == str(tmp_path)  # same folder, so the rename is atomic
    assert os.path.basename(seen["src"]).startswith(".f.json.") and seen["src"].endswith(".tmp")
    assert seen["dst"] == str(target)
    assert target.read_text() == "new"


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failure_keeps_old_file_and_removes_temp(tmp_path, monkeypatch, failing):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(FileWriteError) as info:
        atomic_write_text(target, "new")
    assert str(info.value).startswith(f"{target}: ")
    assert "No space left on device" in str(info.value)
    assert "previous file is unchanged" in str(info.value)
    assert info.value.path == str(target)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_interrupt_removes_temp_and_propagates(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_read_only_folder(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "f.txt").write_text("old")
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # running as root: the mode is ignored, so refuse as the OS would

            def refused(*args, **kwargs):
                raise PermissionError(13, "Permission denied")

            monkeypatch.setattr(tempfile, "mkstemp", refused)
        with pytest.raises(FileWriteError) as info:
            atomic_write_text(folder / "f.txt", "new")
        assert str(info.value).startswith(f"{folder / 'f.txt'}: cannot write here")
        assert "Permission denied" in str(info.value)
        assert (folder / "f.txt").read_text() == "old"
        assert os.listdir(folder) == ["f.txt"]
    finally:
        folder.chmod(0o755)


def test_parent_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileWriteError, match="cannot write here"):
        atomic_write_bytes(tmp_path / "file" / "child.json", b"{}")
    assert (tmp_path / "file").read_text() == "x"


def test_target_is_a_folder(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "inside").write_text("kept")
    with pytest.raises(FileWriteError) as info:
        atomic_write_bytes(tmp_path / "folder", b"{}")
    assert str(tmp_path / "folder") in str(info.value)
    assert (tmp_path / "folder" / "inside").read_text() == "kept"
    assert sorted(os.listdir(tmp_path)) == ["folder"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_new_file_gets_the_usual_mode_not_mkstemp_0600(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    target = atomic_write_bytes(tmp_path / "new.json", b"{}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # as open() would make it
    with open(tmp_path / "plain.json", "w") as handle:
        handle.write("{}")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE((tmp_path / "plain.json").stat().st_mode)


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_existing_file_keeps_its_mode(tmp_path):
    target = tmp_path / "shared.json"
    target.write_text("{}")
    target.chmod(0o664)
    atomic_write_text(target, "[]")
    assert stat.S_IMODE(target.stat().st_mode) == 0o664
    target.chmod(0o600)
    atomic_write_text(target, "[1]")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == "[1]"


def test_refused_chmod_does_not_stop_the_write(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refused)
    assert atomic_write_text(tmp_path / "f.txt", "content").read_text() == "content"
    assert os.listdir(tmp_path) == ["f.txt"]


# ---------------------------------------------------------------------------------------------------------------
# JSON


def test_json_is_indented_utf8_with_a_final_newline(tmp_path):
    target = atomic_write_json(tmp_path / "j.json", {"reader": "Dr. Øster", "label": "Kümmell", "n": [1, 2.5]})
    raw = target.read_bytes()
    assert "Kümmell".encode() in raw and b"\\u" not in raw
    assert raw.endswith(b"\n")
    assert b'\n  "reader"' in raw
    assert json.loads(raw) == {"reader": "Dr. Øster", "label": "Kümmell", "n": [1, 2.5]}
    compact = atomic_write_json(tmp_path / "c.json", {"a": [1, 2]}, indent=None)
    assert compact.read_text() == '{"a": [1, 2]}\n'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_json_is_strict(tmp_path, value):
    target = tmp_path / "j.json"
    target.write_text('{"old": true}')
    with pytest.raises(FileWriteError, match="cannot serialise to JSON") as info:
        atomic_write_json(target, {"score": value})
    assert str(target) in str(info.value)
    assert target.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["j.json"]


def test_unserialisable_values_are_refused(tmp_path):
    circular: list = []
    circular.append(circular)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    for value in ({"x": object()}, {("tuple", "key"): 1}, circular, deep, {1, 2}):
        with pytest.raises(FileWriteError, match="cannot serialise to JSON"):
            atomic_write_json(tmp_path / "j.json", value)
    assert os.listdir(tmp_path) == []


def test_lone_surrogate_is_written_escaped(tmp_path):
    target = atomic_write_json(tmp_path / "s.json", {"text": "a\ud800b", "ok": "ü"})
    raw = target.read_bytes()
    raw.decode("utf-8")  # valid UTF-8 on disk
    assert b"\\ud800" in raw
    assert json.loads(raw) == {"text": "a\ud800b", "ok": "ü"}


def test_text_that_is_not_utf8_encodable_is_a_write_error(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(FileWriteError, match="cannot be written as UTF-8") as info:
        atomic_write_text(target, "bad \udc80 text")
    assert str(target) in str(info.value)
    assert target.read_text() == "old"


def test_files_written_together_all_change(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "sub" / "b.html"
    a.write_text("old a")
    assert atomic_write_together({a: b"new a", b: b"new b"}) == [a, b]
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
    assert sorted(os.listdir(tmp_path)) == ["a.csv", "sub"]


def test_files_written_together_stay_as_they_were_when_one_cannot_be_written(tmp_path, monkeypatch):
    """The second file's disk fills: neither target changes and no temporary file is left."""
    a, b = tmp_path / "a.csv", tmp_path / "b.html"
    a.write_text("old a")
    b.write_text("old b")
    real_fsync, calls = os.fsync, []

    def second_fails(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", second_fails)
    with pytest.raises(FileWriteError, match="No space left on device") as info:
        atomic_write_together({a: b"new a", b: b"new b"})
    assert info.value.path == str(b)
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    assert sorted(os.listdir(tmp_path)) == ["a.csv", "b.html"]


def test_files_written_together_refuse_a_folder_target_before_writing_any(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.html"
    b.mkdir()
    with pytest.raises(FileWriteError, match="is a folder, not a file; nothing was written"):
        atomic_write_together({a: b"new a", b: b"new b"})
    assert not a.exists() and b.is_dir()


def test_a_failed_rename_names_how_many_files_had_changed(tmp_path, monkeypatch):
    a, b = tmp_path / "a.csv", tmp_path / "b.html"
    real_replace, calls = os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(FileWriteError, match="after 1 of the 2 files were replaced"):
        atomic_write_together({a: b"new a", b: b"new b"})
    assert a.read_text() == "new a" and sorted(os.listdir(tmp_path)) == ["a.csv"]


def test_a_link_is_written_through_and_kept(tmp_path):
    real = tmp_path / "shared" / "findings.csv"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "findings.csv"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "shared" / "not-yet.csv")
    atomic_write_together({dangling: b"made"})
    assert dangling.is_symlink() and (tmp_path / "shared" / "not-yet.csv").read_bytes() == b"made"


def test_a_device_or_pipe_is_never_replaced_by_a_file(tmp_path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(FileWriteError, match="device, a pipe or a socket"):
        atomic_write_text(pipe, "x")
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    with pytest.raises(FileWriteError, match="device, a pipe or a socket"):
        atomic_write_bytes("/dev/null", b"x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
