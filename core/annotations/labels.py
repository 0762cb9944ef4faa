"""Reading disease labels as readers write them: codes in any case, ``+`` or comma lists, and common synonyms.

Examples: ``OVCF+KD``, ``ovcf, kd``, ``compression fracture``, ``Kümmell``, ``Schmorl's node``, ``L3: OVCF``,
``vertebra`` (a detection box with no disease), ``normal``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from core.annotations.model import LEVELS, Disease

_SYNONYMS: dict[str, Disease | str] = {}


def _add(target: Disease | str, *names: str) -> None:
    for name in names:
        _SYNONYMS[_normalise(name)] = target


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower().replace("'", "").replace("’", "").replace("`", "")
    text = re.sub(r"[_\-.]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


VERTEBRA = "vertebra"
NORMAL = "normal"

_add(
    Disease.OVCF,
    "ovcf",
    "vcf",
    "ocf",
    "osteoporotic vertebral compression fracture",
    "osteoporotic compression fracture",
    "osteoporotic fracture",
    "vertebral compression fracture",
    "compression fracture",
    "acute fracture",
    "acute compression fracture",
    "fresh fracture",
    "new fracture",
    "fracture",
    "acute ovcf",
)
_add(
    Disease.OF,
    "of",
    "old fracture",
    "old compression fracture",
    "healed fracture",
    "chronic fracture",
    "old ovcf",
    "old vertebral fracture",
)
_add(
    Disease.SN,
    "sn",
    "schmorl",
    "schmorls",
    "schmorl node",
    "schmorls node",
    "schmorl nodes",
    "schmorls nodes",
    "schmorls nodule",
    "intravertebral disc herniation",
)
_add(
    Disease.KD,
    "kd",
    "kummell",
    "kummells",
    "kummell disease",
    "kummells disease",
    "kuemmell",
    "kuemmells disease",
    "kummel",
    "kummels disease",
    "avascular necrosis",
    "vertebral osteonecrosis",
    "osteonecrosis",
    "intravertebral vacuum cleft",
    "vacuum cleft",
    "ivc",
)
_add(
    Disease.PS,
    "ps",
    "previous surgery",
    "prior surgery",
    "post surgery",
    "postoperative",
    "post operative",
    "surgery",
    "vertebroplasty",
    "kyphoplasty",
    "pvp",
    "pkp",
    "cement",
    "bone cement",
    "augmentation",
)
_add(NORMAL, "normal", "none", "healthy", "no disease", "negative", "nil")
_add(VERTEBRA, "vertebra", "vertebrae", "vertebral body", "vb", "body")

_SPLIT = re.compile(r"\s*(?:\+|,|;|/|&|\|)\s*|\s+and\s+")
# The level ends at anything but a letter or digit: "\b" would not end it at "_" ("L3_OVCF").
_LEVEL_PREFIX = re.compile(r"^\s*([ctls]\d{1,2})(?![^\W_])[\s:_\-]*", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedLabel:
    """What a label says: its diseases, whether it was only a detection box, and a level when it names one."""

    diseases: frozenset[Disease]
    vertebra_only: bool = False
    level: str | None = None


class UnknownLabelError(ValueError):
    """A label term that is not a disease code, a synonym, ``normal`` or ``vertebra``."""


def parse_label(label: str) -> ParsedLabel:
    """Parse one shape label. Raises :class:`UnknownLabelError` naming the term it does not know."""
    text = label.strip()
    level = None
    match = _LEVEL_PREFIX.match(text)
    if match and match.group(1).upper() in LEVELS:
        level = match.group(1).upper()
        text = text[match.end() :]
    terms = [t for t in _SPLIT.split(_normalise(text).replace(" + ", "+")) if t]
    if not terms:
        if level is not None:
            return ParsedLabel(frozenset(), vertebra_only=True, level=level)
        raise UnknownLabelError("empty label")
    diseases: set[Disease] = set()
    vertebra_only = True
    for term in terms:
        meaning = _SYNONYMS.get(term)
        if meaning is None:
            raise UnknownLabelError(
                f"unknown label {term[:60]!r}: use OVCF, OF, SN, KD, PS or NORMAL (joined with '+'), or 'vertebra'"
            )
        if isinstance(meaning, Disease):
            diseases.add(meaning)
            vertebra_only = False
        elif meaning == NORMAL:
            vertebra_only = False
    return ParsedLabel(frozenset(diseases), vertebra_only=vertebra_only and not diseases, level=level)
