"""A table of Genant fracture grades per vertebra (CSV), as it comes with segmented CT such as VerSe.

One row per vertebra of a subject. The columns are found by name, in any case, with synonyms:

- subject: ``case``, ``subject``, ``patient``, ``patient_id`` or ``subject_id``;
- level: ``level``, ``vertebra`` or ``vert`` (``T12``, ``l1``, …: C1-C7, T1-T13, L1-L6, S1);
- grade: ``grade``, ``genant`` or ``genant_grade`` (a whole number 0-3: normal, mild, moderate, severe).

Other columns are ignored. The VerSe19 manifest (``patient_id, scan_id, vertebra, genant_grade, …``) is the model.
Anything that cannot be read as such a table is refused with a :class:`~core.errors.StudyError` that names the file
and, for a bad row, its line. A subject's vertebra given twice must have the same grade both times.

:meth:`GradeTable.for_source` finds the subject of one imported image: the one named, else the one whose id matches
the image's file or folder name (``sub-verse004`` matches ``sub-verse004_ct.nii.gz``, ``verse004.nii.gz`` and a folder
``sub-verse004/``), else the table's only subject.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from core.errors import StudyError

MAX_GRADES_BYTES = 16 * 2**20
SUBJECT_COLUMNS: tuple[str, ...] = ("case", "subject", "patient", "patient_id", "subject_id")
LEVEL_COLUMNS: tuple[str, ...] = ("level", "vertebra", "vert")
GRADE_COLUMNS: tuple[str, ...] = ("grade", "genant", "genant_grade")
#: The level names a grades table may use: VerSe labels T13 and L6 (transitional vertebrae) too.
GRADE_LEVELS: tuple[str, ...] = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 14)),
    *(f"L{i}" for i in range(1, 7)),
    "S1",
)
_GRADES = {"0": 0, "1": 1, "2": 2, "3": 3}
_SHOWN_SUBJECTS = 8


@dataclass(frozen=True)
class GradeTable:
    """Grades read from ``path``: subject id (as written) → level (upper case) → grade 0-3. ``rows`` counts the
    table's rows, including repeated ones."""

    path: Path
    grades: Mapping[str, Mapping[str, int]]
    rows: int

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(self.grades)

    def for_source(self, source_path: str | Path, subject: str | None = None) -> tuple[str, dict[str, int]]:
        """The subject of the image at ``source_path`` and its grades (level → grade, top to bottom).

        With ``subject`` given, that subject (its id as written, or the same id in another case or without ``sub-``).
        Otherwise the subject whose id matches the source's file name or its folder's name, else the only subject.
        Raises :class:`StudyError` when there is no such subject, or several match.
        """
        chosen = self._named(subject) if subject is not None else self._matching(Path(source_path))
        return chosen, dict(self.grades[chosen])

    def _named(self, subject: str) -> str:
        if subject in self.grades:
            return subject
        wanted = subject_key(subject)
        found = [s for s in self.grades if subject_key(s) == wanted]
        if len(found) == 1:
            return found[0]
        if found:
            raise StudyError(f"subject {subject!r} could be any of {', '.join(found)}; name one exactly", self.path)
        raise StudyError(f"no subject {subject!r} in the grades table ({self._known()})", self.path)

    def _matching(self, source: Path) -> str:
        for name in (source.name, source.parent.name):
            if not name:
                continue
            found = _longest_matches(name, self.grades)
            if len(found) == 1:
                return found[0]
            if found:
                raise StudyError(
                    f"{name!r} matches several subjects ({', '.join(found)}); say which subject to use", self.path
                )
        if len(self.grades) == 1:
            return next(iter(self.grades))
        raise StudyError(
            f"no subject of the grades table matches {source.name!r}; say which subject to use ({self._known()})",
            self.path,
        )

    def _known(self) -> str:
        subjects = list(self.grades)
        shown = ", ".join(subjects[:_SHOWN_SUBJECTS])
        more = len(subjects) - _SHOWN_SUBJECTS
        return f"{len(subjects)} subjects: {shown}" + (f", … and {more} more" if more > 0 else "")


def subject_key(name: str) -> str:
    """A subject id or file name for matching: lower case, without a leading ``sub-``, numbers without leading zeros
    (``sub-verse004`` → ``verse4``)."""
    text = name.strip().lower()
    text = text.removeprefix("sub-")
    return re.sub(r"\d+", lambda m: str(int(m.group())), text)


def _longest_matches(name: str, subjects: Iterable[str]) -> list[str]:
    """The subjects whose id starts ``name`` up to a separator (``_``, ``-``, ``.``) or its end; the most specific
    (longest) id wins."""
    key = subject_key(name)
    found: dict[str, list[str]] = {}
    for subject in subjects:
        id_key = subject_key(subject)
        if id_key and key.startswith(id_key) and (len(key) == len(id_key) or key[len(id_key)] in "_-."):
            found.setdefault(id_key, []).append(subject)
    if not found:
        return []
    return found[max(found, key=len)]


def read_grades(path: str | Path) -> GradeTable:
    """Read a grades CSV. Raises :class:`StudyError` naming the file (and the line) for anything not readable."""
    path = Path(path)
    text = _read_text(path)
    delimiter = _delimiter(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        columns = _columns(header, path)
        grades: dict[str, dict[str, int]] = {}
        rows = 0
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            subject, level, grade = _row(row, columns, reader.line_num, path)
            _add(grades, subject, level, grade, reader.line_num, path)
            rows += 1
    except csv.Error as exc:
        raise StudyError(f"line {reader.line_num}: not valid CSV ({exc})", path) from exc
    if not rows:
        raise StudyError("the grades table has a header but no rows", path)
    ordered = {s: MappingProxyType(dict(sorted(g.items(), key=lambda i: GRADE_LEVELS.index(i[0]))))
               for s, g in grades.items()}
    return GradeTable(path, MappingProxyType(ordered), rows)


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise StudyError("is a folder, not a grades CSV file", path)
        if size > MAX_GRADES_BYTES:
            raise StudyError(
                f"file is {size / 1e6:.1f} MB; a grades table over {MAX_GRADES_BYTES // 2**20} MB is refused", path
            )
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise StudyError("grades file not found", path) from exc
    except OSError as exc:
        raise StudyError(f"cannot read the grades file: {exc.strerror or exc}", path) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise StudyError(f"line {line}: not UTF-8 text (byte {exc.start}); save the table as UTF-8 CSV", path) from exc
    if not text.strip():
        raise StudyError("the grades file is empty", path)
    return text


def _delimiter(header: str) -> str:
    """Comma, or the semicolon or tab that a spreadsheet wrote instead."""
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _columns(header: Sequence[str], path: Path) -> tuple[int, int, int]:
    """The positions of the subject, level and grade columns."""
    names = [h.strip().lower() for h in header]
    positions = []
    for role, synonyms in (("subject", SUBJECT_COLUMNS), ("level", LEVEL_COLUMNS), ("grade", GRADE_COLUMNS)):
        found = [i for i, name in enumerate(names) if name in synonyms]
        if len(found) > 1:
            both = " and ".join(repr(header[i].strip()) for i in found)
            raise StudyError(f"{both} could each be the {role} column; keep one", path)
        if not found:
            shown = ", ".join(repr(h.strip()) for h in header[:20]) or "none"
            raise StudyError(
                f"no {role} column (one of {', '.join(synonyms)}); the columns found are {shown}", path
            )
        positions.append(found[0])
    return positions[0], positions[1], positions[2]


def _row(row: Sequence[str], columns: tuple[int, int, int], line: int, path: Path) -> tuple[str, str, int]:
    subject, level, grade = (row[i].strip() if i < len(row) else "" for i in columns)
    if not subject:
        raise StudyError(f"line {line}: no subject", path)
    if not subject.isprintable():
        raise StudyError(f"line {line}: the subject {subject[:40]!r} has control characters", path)
    if level.upper() not in GRADE_LEVELS:
        shown = repr(level[:20]) if level else "empty"
        raise StudyError(f"line {line}: the level is {shown}, not a vertebra name such as T12 or L1", path)
    if grade not in _GRADES:
        shown = repr(grade[:20]) if grade else "empty"
        raise StudyError(f"line {line}: the Genant grade is {shown}, not a whole number 0, 1, 2 or 3", path)
    return subject, level.upper(), _GRADES[grade]


def _add(grades: dict[str, dict[str, int]], subject: str, level: str, grade: int, line: int, path: Path) -> None:
    levels = grades.setdefault(subject, {})
    before = levels.get(level)
    if before is not None and before != grade:
        raise StudyError(f"line {line}: {subject} {level} has grade {grade} here but {before} above", path)
    levels[level] = grade
