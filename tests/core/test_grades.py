"""The Genant grades table: columns by name with synonyms, every bad input refused with file and line, the subject of
an imported image found by its name, and the real VerSe19 manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import StudyError
from core.study import grades as grades_module
from core.study.grades import GRADE_LEVELS, GradeTable, read_grades, subject_key

VERSE_MANIFEST = Path("/work/shared/data/real/verse_genant_grades/kvskushal_verse19_manifest.csv")


def table(tmp_path: Path, text: str, name: str = "grades.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- reading ----------------------------------------------------------------------------------------------------------
def test_columns_are_found_by_name_in_any_case_and_order(tmp_path):
    path = table(tmp_path, "Note,GENANT,Vertebra,Patient_ID\nx,2,t12,p1\ny,0,L1,p1\nz,3,l1,p2\n")
    grades = read_grades(path)
    assert grades.path == path and grades.rows == 3
    assert grades.grades == {"p1": {"T12": 2, "L1": 0}, "p2": {"L1": 3}}
    assert grades.subjects == ("p1", "p2")


@pytest.mark.parametrize("subject", ["case", "subject", "patient", "patient_id", "subject_id"])
@pytest.mark.parametrize(("level", "grade"), [("level", "grade"), ("vert", "genant_grade"), ("vertebra", "genant")])
def test_every_synonym_names_its_column(tmp_path, subject, level, grade):
    path = table(tmp_path, f"{subject},{level},{grade}\ns1,L2,1\n")
    assert read_grades(path).grades == {"s1": {"L2": 1}}


def test_levels_are_ordered_top_to_bottom_and_transitional_levels_are_valid(tmp_path):
    path = table(tmp_path, "case,level,grade\na,S1,0\na,L6,1\na,T13,2\na,C1,0\na,t1,3\n")
    assert list(read_grades(path).grades["a"].items()) == [("C1", 0), ("T1", 3), ("T13", 2), ("L6", 1), ("S1", 0)]
    assert {"T13", "L6", "S1", "C7"} <= set(GRADE_LEVELS) and "L7" not in GRADE_LEVELS


def test_a_repeated_row_with_the_same_grade_is_fine(tmp_path):
    grades = read_grades(table(tmp_path, "case,level,grade\na,L1,2\na,l1,2\n"))
    assert grades.grades == {"a": {"L1": 2}} and grades.rows == 2


def test_blank_lines_bom_semicolons_and_spaces_are_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffCase ; Level ; Grade\r\n a ; L1 ; 1 \r\n\r\n;;\r\nb;T12;0\r\n".encode())
    assert read_grades(path).grades == {"a": {"L1": 1}, "b": {"T12": 0}}


def test_quoted_fields_are_read(tmp_path):
    path = table(tmp_path, 'case,level,grade,note\n"a, left",L1,1,"two\nlines"\n')
    assert read_grades(path).grades == {"a, left": {"L1": 1}}


# -- bad tables -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("grade", "shown"),
    [("", "empty"), ("4", "'4'"), ("-1", "'-1'"), ("1.5", "'1.5'"), ("two", "'two'"), ("2.0", "'2.0'")],
)
def test_a_grade_that_is_not_0_to_3_names_file_and_line(tmp_path, grade, shown):
    path = table(tmp_path, f"case,level,grade\na,L1,1\na,L2,{grade}\n")
    with pytest.raises(StudyError, match=f"line 3: the Genant grade is {shown}, not a whole number") as caught:
        read_grades(path)
    assert caught.value.path == str(path) and str(path) in str(caught.value)


def test_a_missing_cell_is_an_empty_grade(tmp_path):
    with pytest.raises(StudyError, match="line 2: the Genant grade is empty"):
        read_grades(table(tmp_path, "case,level,grade\na,L1\n"))


@pytest.mark.parametrize("level", ["L7", "T14", "C0", "X1", "lumbar", ""])
def test_an_unknown_level_names_file_and_line(tmp_path, level):
    path = table(tmp_path, f"case,level,grade\na,{level},1\n")
    with pytest.raises(StudyError, match=r"line 2: the level is .*not a vertebra name") as caught:
        read_grades(path)
    assert caught.value.path == str(path)


def test_a_row_without_subject_is_refused(tmp_path):
    with pytest.raises(StudyError, match="line 3: no subject"):
        read_grades(table(tmp_path, "case,level,grade\na,L1,1\n ,L2,1\n"))


def test_one_vertebra_with_two_grades_is_refused(tmp_path):
    path = table(tmp_path, "case,level,grade\na,L1,1\nb,L1,3\na,l1,2\n")
    with pytest.raises(StudyError, match="line 4: a L1 has grade 2 here but 1 above"):
        read_grades(path)


@pytest.mark.parametrize(
    ("header", "missing"),
    [("level,grade", "subject"), ("case,grade", "level"), ("case,level", "grade"), ("case,level,score", "grade")],
)
def test_a_missing_column_is_named_with_the_columns_found(tmp_path, header, missing):
    path = table(tmp_path, f"{header}\na,L1\n")
    with pytest.raises(StudyError, match=f"no {missing} column .*the columns found are") as caught:
        read_grades(path)
    for column in header.split(","):
        assert repr(column) in str(caught.value)


def test_two_columns_for_one_role_are_refused(tmp_path):
    with pytest.raises(StudyError, match="'case' and 'patient_id' could each be the subject column"):
        read_grades(table(tmp_path, "case,patient_id,level,grade\na,a,L1,1\n"))


@pytest.mark.parametrize("content", [b"", b"  \n\n", "\ufeff".encode()])
def test_an_empty_file_is_refused(tmp_path, content):
    path = tmp_path / "grades.csv"
    path.write_bytes(content)
    with pytest.raises(StudyError, match="is empty") as caught:
        read_grades(path)
    assert caught.value.path == str(path)


def test_a_header_without_rows_is_refused(tmp_path):
    with pytest.raises(StudyError, match="header but no rows"):
        read_grades(table(tmp_path, "case,level,grade\n\n"))


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("case,level,grade\nMüller,L1,1\n".encode("latin-1"))
    with pytest.raises(StudyError, match="line 2: not UTF-8 text") as caught:
        read_grades(path)
    assert caught.value.path == str(path)


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    path = table(tmp_path, "case,level,grade\n" + "a,L1,1\n" * 40)
    monkeypatch.setattr(grades_module, "MAX_GRADES_BYTES", 100)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read a file over the limit"))
    with pytest.raises(StudyError, match=r"a grades table over .* is refused"):
        read_grades(path)


def test_the_default_limit_is_16_mb():
    assert grades_module.MAX_GRADES_BYTES == 16 * 2**20


def test_a_missing_file_and_a_folder_are_refused(tmp_path):
    with pytest.raises(StudyError, match="not found"):
        read_grades(tmp_path / "nowhere.csv")
    with pytest.raises(StudyError, match="is a folder"):
        read_grades(tmp_path)


def test_a_nul_byte_in_a_subject_is_refused(tmp_path):
    path = tmp_path / "nul.csv"
    path.write_bytes(b"case,level,grade\na,L1,1\nb\x00,L2,1\n")
    with pytest.raises(StudyError, match="line 3: the subject 'b\\\\x00' has control characters"):
        read_grades(path)


def test_a_field_over_the_csv_limit_is_not_valid_csv(tmp_path):
    path = table(tmp_path, "case,level,grade\na,L1,1\n" + "b" * 200_000 + ",L2,1\n")
    with pytest.raises(StudyError, match="line 3: not valid CSV"):
        read_grades(path)


# -- the subject of an image ------------------------------------------------------------------------------------------
def verse_like(tmp_path: Path) -> GradeTable:
    return read_grades(table(tmp_path, "patient_id,vertebra,genant_grade\n"
                                       "sub-verse004,L1,3\nsub-verse040,L1,1\nsub-verse400,L2,2\nsub-gl003,T12,0\n"))


@pytest.mark.parametrize(
    ("source", "subject"),
    [
        ("data/sub-verse004_ct.nii.gz", "sub-verse004"),
        ("data/SUB-VERSE004_CT.NII.GZ", "sub-verse004"),
        ("data/verse004.nii.gz", "sub-verse004"),
        ("data/verse004_seg.nii.gz", "sub-verse004"),
        ("data/verse4.nii", "sub-verse004"),
        ("data/verse40.nii", "sub-verse040"),
        ("rawdata/sub-verse400/", "sub-verse400"),
        ("rawdata/sub-verse400", "sub-verse400"),
        ("rawdata/sub-gl003/sub-gl003_dir-ax_ct.nii.gz", "sub-gl003"),
        ("rawdata/sub-gl003/ct.nii.gz", "sub-gl003"),  # the folder names the subject
    ],
)
def test_the_subject_is_found_from_the_file_or_folder_name(tmp_path, source, subject):
    grades = verse_like(tmp_path)
    found, levels = grades.for_source(tmp_path / source)
    assert found == subject and levels == dict(grades.grades[subject])


def test_a_name_that_only_begins_like_a_subject_does_not_match(tmp_path):
    with pytest.raises(StudyError, match=r"no subject of the grades table matches 'verse0041\.nii\.gz'; say which"):
        verse_like(tmp_path).for_source(tmp_path / "verse0041.nii.gz")


def test_the_named_subject_wins_and_is_matched_loosely(tmp_path):
    grades = verse_like(tmp_path)
    assert grades.for_source(tmp_path / "sub-verse004_ct.nii.gz", "sub-verse040") == ("sub-verse040", {"L1": 1})
    assert grades.for_source(tmp_path / "x.nii.gz", "VERSE400")[0] == "sub-verse400"


def test_an_unknown_named_subject_lists_known_ones(tmp_path):
    with pytest.raises(StudyError, match=r"no subject 'sub-verse999' .*4 subjects: sub-verse004, sub-verse040"):
        verse_like(tmp_path).for_source(tmp_path / "x.nii.gz", "sub-verse999")


def test_the_only_subject_is_taken_whatever_the_name(tmp_path):
    grades = read_grades(table(tmp_path, "case,level,grade\npatient-a,L1,2\n"))
    assert grades.for_source(tmp_path / "scan.nii.gz") == ("patient-a", {"L1": 2})


def test_ids_that_look_alike_must_be_named(tmp_path):
    grades = read_grades(table(tmp_path, "case,level,grade\nsub-verse004,L1,2\nverse004,L1,1\n"))
    with pytest.raises(StudyError, match="matches several subjects"):
        grades.for_source(tmp_path / "sub-verse004_ct.nii.gz")
    with pytest.raises(StudyError, match="could be any of"):
        grades.for_source(tmp_path / "x", "Verse4")
    assert grades.for_source(tmp_path / "x", "verse004") == ("verse004", {"L1": 1})


def test_subject_key():
    assert subject_key(" Sub-VerSe004 ") == "verse4" == subject_key("verse4")
    assert subject_key("case-0012_ct.nii.gz") == "case-12_ct.nii.gz"


# -- the real VerSe19 manifest ----------------------------------------------------------------------------------------
def test_the_verse19_manifest_is_read():
    grades = read_grades(VERSE_MANIFEST)
    assert len(grades.subjects) == 128 and grades.rows == 1129
    subject, levels = grades.for_source(Path("verse/sub-verse004_ct.nii.gz"))
    assert subject == "sub-verse004"
    assert (levels["T9"], levels["T10"], levels["L1"]) == (2, 2, 3)
    assert {g for levels in grades.grades.values() for g in levels.values()} == {0, 1, 2, 3}
