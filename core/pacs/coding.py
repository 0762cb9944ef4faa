"""The coded concepts of our reports, in one place.

- Structure (TID 1500): DICOM (DCM) codes, as highdicom uses them.
- Vertebral levels C1-L5: SNOMED CT (SCT), from DICOM PS3.16 CID 7602 (the codes ship with pydicom, so they are
  checked against the standard, not typed in). S1 has no vertebra code there and uses our private code ``S1``.
- Findings (OVCF, OF, SN, KD, PS, NORMAL), the classifier's probabilities and the detector's score: our private
  coding scheme ``99VRTBR`` ("99" marks a private scheme in DICOM). SNOMED CT has concepts for some of these
  findings, but no SNOMED release was available to check their identifiers against while this was built, and a
  wrong code in a clinical report is worse than an honest private one; the README's table lists the scheme.
"""

from __future__ import annotations

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from core.annotations.model import CLASS_CODES, DISEASE_NAMES, LEVELS, NORMAL

PRIVATE_SCHEME = "99VRTBR"
PRIVATE_SCHEME_NAME = "Vertebra Review private codes"

#: The procedure reported and the report title.
PROCEDURE = codes.SCT.ImagingProcedure
TITLE = codes.DCM.ImagingMeasurementReport
#: The concept each vertebra's findings are given under (private: highdicom reserves DCM "Finding" for the group's
#: finding type, and reads qualitative evaluations under that name as something else).
FINDING = Code("VFINDING", PRIVATE_SCHEME, "Vertebral finding")
#: What each measurement group is about: one vertebra.
VERTEBRA = codes.SCT.Vertebra
NO_UNITS = codes.UCUM.NoUnits

_FINDING_MEANINGS = {
    "OVCF": "Osteoporotic vertebral compression fracture, acute",
    "OF": "Old vertebral fracture, healed",
    "SN": "Schmorl node",
    "KD": "Kummell disease (vertebral osteonecrosis)",
    "PS": "Previous vertebral augmentation (cement)",
    NORMAL: "No vertebral finding",
}
#: A vertebra's findings: a code per disease, and NORMAL for a diagnosed vertebra with none.
FINDING_CODES: dict[str, Code] = {name: Code(name, PRIVATE_SCHEME, _FINDING_MEANINGS[name]) for name in CLASS_CODES}
#: The classifier's output per class: "Probability of <finding>", unit "no units".
PROBABILITY_CODES: dict[str, Code] = {
    name: Code(f"P-{name}", PRIVATE_SCHEME, f"Probability of {DISEASE_NAMES[name]}") for name in CLASS_CODES}
DETECTOR_SCORE = Code("DETSCORE", PRIVATE_SCHEME, "Vertebral body detection score")


def _level_code(level: str) -> Code:
    name = f"{level}Vertebra"
    if level.startswith(("C", "T", "L")) and hasattr(codes.SCT, name):
        return getattr(codes.SCT, name)
    return Code(level, PRIVATE_SCHEME, f"{level} vertebra")


#: The vertebral levels, as finding sites.
LEVEL_CODES: dict[str, Code] = {level: _level_code(level) for level in LEVELS}


def _key(scheme: str, value: str) -> tuple[str, str]:
    return (scheme, value)


_FINDING_BY_CODE = {_key(c.scheme_designator, c.value): name for name, c in FINDING_CODES.items()}
_PROBABILITY_BY_CODE = {_key(c.scheme_designator, c.value): name for name, c in PROBABILITY_CODES.items()}
_LEVEL_BY_CODE = {_key(c.scheme_designator, c.value): name for name, c in LEVEL_CODES.items()}


def finding_of(scheme: str, value: str) -> str | None:
    """The class code (``OVCF`` … ``NORMAL``) of a finding code, or None when it is not one of ours."""
    return _FINDING_BY_CODE.get(_key(scheme, value))


def probability_of(scheme: str, value: str) -> str | None:
    return _PROBABILITY_BY_CODE.get(_key(scheme, value))


def level_of(scheme: str, value: str) -> str | None:
    return _LEVEL_BY_CODE.get(_key(scheme, value))


def coding_table() -> list[tuple[str, str, str, str]]:
    """(what, scheme, code, meaning) for every code our reports use: the README's table comes from this."""
    rows = [("finding", c.scheme_designator, c.value, c.meaning) for c in FINDING_CODES.values()]
    rows += [("probability", c.scheme_designator, c.value, c.meaning) for c in PROBABILITY_CODES.values()]
    rows.append(("detector score", DETECTOR_SCORE.scheme_designator, DETECTOR_SCORE.value, DETECTOR_SCORE.meaning))
    rows += [("level", c.scheme_designator, c.value, c.meaning) for c in LEVEL_CODES.values()]
    rows += [("structure", c.scheme_designator, c.value, c.meaning) for c in (PROCEDURE, TITLE, FINDING, VERTEBRA)]
    return rows
