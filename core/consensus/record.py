"""Consensus files with their provenance.

``consensus/<case>/<slice>.json`` is ordinary LabelMe JSON (labelme opens it): one rectangle per agreed vertebra,
with ``source: "consensus"`` and a small shape key ``consensus`` (the method and who agreed). The full record sits
in the top-level key ``consensus``, which our reader keeps and writes back::

    "consensus": {
      "format": 1, "readers": ["r1", "r2", "r3"], "match": {"measure": "iom", "threshold": 0.5, ...},
      "finalised": false, "finalised_at": null, "finalised_by": [],
      "resolutions": [
        {"group": 3, "method": "reader", "reader": "r2", "agreed_by": ["r1", "r2", "r3"],
         "at": "2024-05-01T10:12:00+00:00", "note": "",
         "versions": [{"reader": "r1", "box": [..], "diseases": ["OVCF"], "level": "L1"},
                      {"reader": "r2", "box": [..], "diseases": ["OF"], "level": "L1"},
                      {"reader": "r3", "box": null}],
         "result": {"box": [..], "diseases": ["OF"], "level": "L1"}}],
      "history": [ ...superseded resolutions, each with "superseded_at" and "reason"... ]}

``versions`` are the readers' versions the resolution was made from (the earlier versions); they also tie the
resolution to its vertebra group after a restart. ``result`` null means "no vertebra here" (a stray box dropped); a
``result`` also holds ``genant`` when its vertebra has an imported Genant grade (the reader's, or the highest of the
majority's), which no comparison looks at.
A consensus file without this record (made by hand, imported, or the phantom's truth), or whose boxes no longer
match its record (edited in labelme), is *external*: it is treated as final and never overwritten until reopened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from core.annotations.model import DISEASES, Box, Disease, SliceAnnotation, Vertebra
from core.consensus.matching import VertebraGroup, version_json
from core.errors import ConsensusError

RECORD_KEY = "consensus"
RECORD_FORMAT = 1
CONSENSUS_SOURCE = "consensus"
#: ``proposed`` is a majority written by ``consensus --propose`` that nobody has confirmed yet.
METHODS = ("unanimous", "majority", "reader", "edited", "proposed")


def result_json(vertebra: Vertebra | None) -> dict[str, Any] | None:
    if vertebra is None:
        return None
    data: dict[str, Any] = {
        "box": [round(c, 3) for c in vertebra.box.as_list()],
        "diseases": [d.value for d in DISEASES if d in vertebra.diseases],
        "level": vertebra.level,
    }
    if vertebra.genant is not None:  # only when imported: records without grades stay as they were
        data["genant"] = vertebra.genant
    return data


def _result_from_json(data: Any) -> Vertebra | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("box"), list) or len(data["box"]) != 4:
        raise ValueError("a result needs a box [x1, y1, x2, y2]")
    return Vertebra(Box(*data["box"]), frozenset(Disease(d) for d in data.get("diseases", [])),
                    level=data.get("level"), source=CONSENSUS_SOURCE, genant=data.get("genant"))


@dataclass(frozen=True)
class Resolution:
    """How one vertebra group was decided, from which versions, by whom and when."""

    group: int
    method: str
    versions: tuple[Mapping[str, Any] | None, ...]
    result: Vertebra | None
    agreed_by: tuple[str, ...]
    at: str
    reader: str | None = None
    note: str = ""
    basis: str | None = None  # for a proposal: "unanimous" or "majority"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown resolution method {self.method!r}")
        if self.result is not None:  # the file and the record hold the same numbers
            box = Box(*(round(c, 3) for c in self.result.box.as_list()))
            object.__setattr__(self, "result", self.result.with_changes(box=box))

    @property
    def confirmed(self) -> bool:
        return self.method != "proposed"

    def matches(self, group: VertebraGroup) -> bool:
        """Whether this was decided from exactly the group's versions (in any order of the readers)."""

        def by_reader(versions: Sequence[Mapping[str, Any] | None]) -> list[Any]:
            return sorted((dict(v) for v in versions if v is not None), key=lambda v: str(v.get("reader")))

        return by_reader(self.versions) == by_reader(group.fingerprint())

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"group": self.group, "method": self.method}
        if self.reader is not None:
            data["reader"] = self.reader
        if self.basis is not None:
            data["basis"] = self.basis
        data.update({"agreed_by": list(self.agreed_by), "at": self.at, "note": self.note,
                     "versions": [dict(v) if v is not None else None for v in self.versions],
                     "result": result_json(self.result)})
        return data

    @classmethod
    def from_json(cls, data: Any) -> Resolution:
        if not isinstance(data, dict):
            raise ValueError("a resolution must be an object")
        return cls(
            group=int(data["group"]),
            method=str(data["method"]),
            versions=tuple(data["versions"]),
            result=_result_from_json(data.get("result")),
            agreed_by=tuple(str(r) for r in data.get("agreed_by", [])),
            at=str(data["at"]),
            reader=data.get("reader"),
            note=str(data.get("note") or ""),
            basis=data.get("basis"),
        )

    def consensus_vertebra(self) -> Vertebra | None:
        """The result as written to the consensus file, with its provenance in the shape."""
        if self.result is None:
            return None
        shape_note = {"method": self.method, "agreed_by": list(self.agreed_by), "at": self.at}
        if self.reader:
            shape_note["reader"] = self.reader
        return self.result.with_changes(source=CONSENSUS_SOURCE, extra={RECORD_KEY: shape_note},
                                        probabilities=None, score=None, diagnosed=True)


@dataclass(frozen=True)
class ConsensusRecord:
    """The provenance of one slice's consensus."""

    readers: tuple[str, ...] = ()
    match: Mapping[str, Any] = field(default_factory=dict)
    resolutions: tuple[Resolution, ...] = ()
    history: tuple[Mapping[str, Any], ...] = ()
    finalised_at: str | None = None
    finalised_by: tuple[str, ...] = ()
    external: bool = False  # made or changed outside the consensus workflow

    @property
    def finalised(self) -> bool:
        return self.finalised_at is not None

    @property
    def locked(self) -> bool:
        """Whether the file must not be changed (finalised, or external) until it is reopened."""
        return self.finalised or self.external

    def with_changes(self, **changes: Any) -> ConsensusRecord:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "readers": list(self.readers),
            "match": dict(self.match),
            "finalised": self.finalised,
            "finalised_at": self.finalised_at,
            "finalised_by": list(self.finalised_by),
            "resolutions": [r.to_json() for r in sorted(self.resolutions, key=lambda r: r.group)],
            "history": [dict(h) for h in self.history],
        }


def _same_vertebrae(expected: Sequence[Vertebra], actual: Sequence[Vertebra]) -> bool:
    def key(v: Vertebra) -> tuple[Any, ...]:
        return tuple(round(c, 3) for c in v.box.as_list()), tuple(sorted(d.value for d in v.diseases))

    return sorted(map(key, expected)) == sorted(map(key, actual))


def read_record(annotation: SliceAnnotation | None, where: str = "") -> ConsensusRecord:
    """The record of a consensus file; an empty record when there is no file; ``external`` when the file has no
    record or its boxes are not those of its record."""
    if annotation is None:
        return ConsensusRecord()
    data = annotation.extra.get(RECORD_KEY)
    if data is None:
        return ConsensusRecord(external=True)
    try:
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            found = data.get("format") if isinstance(data, dict) else data
            raise ValueError(f"format {found!r} is not {RECORD_FORMAT}")
        finalised_at = data.get("finalised_at") if data.get("finalised") else None
        record = ConsensusRecord(
            readers=tuple(str(r) for r in data.get("readers", [])),
            match=dict(data.get("match") or {}),
            resolutions=tuple(Resolution.from_json(r) for r in data.get("resolutions", [])),
            history=tuple(dict(h) for h in data.get("history", [])),
            finalised_at=str(finalised_at) if finalised_at else None,
            finalised_by=tuple(str(r) for r in data.get("finalised_by", [])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConsensusError(f"the consensus record of {where or 'the slice'} cannot be read: {exc}") from exc
    expected = [v for v in (r.consensus_vertebra() for r in record.resolutions) if v is not None]
    if not _same_vertebrae(expected, annotation.vertebrae):
        record = record.with_changes(external=True)
    return record


def consensus_annotation(
    record: ConsensusRecord, size: tuple[int, int], previous: SliceAnnotation | None = None
) -> SliceAnnotation:
    """The consensus file's content: the resolved vertebrae in group order, the record in the top-level key, and
    whatever else the previous file held (image flags, other shapes, unknown keys)."""
    vertebrae = [r.consensus_vertebra() for r in sorted(record.resolutions, key=lambda r: r.group)]
    extra = dict(previous.extra) if previous is not None else {}
    extra[RECORD_KEY] = record.to_json()
    base = previous if previous is not None else SliceAnnotation(size[0], size[1])
    return base.with_changes(
        image_width=size[0],
        image_height=size[1],
        vertebrae=tuple(v for v in vertebrae if v is not None),
        reader=None,
        model=None,
        reviewed=record.finalised,
        image_data=None,
        extra=extra,
    )


def external_history(annotation: SliceAnnotation, at: str, reason: str) -> dict[str, Any]:
    """A history entry keeping what an external consensus file held when it was reopened."""
    return {
        "superseded_at": at,
        "reason": reason,
        "vertebrae": [version_json(v.source or "consensus", v) for v in annotation.vertebrae],
    }
