"""The consistency check: every slice of a study, the chosen readers' boxes matched and classified.

A slice where some readers have a file and others have none is compared among those who have one, and the check
is *partial*: ``missing`` names each reader and slice. A reader's file that cannot be read is skipped the same way,
with the reason. Slices no reader has annotated are listed in ``unread``. Readers whose files of one slice give
different image sizes (or a size other than the slice's image) stop the check with an error naming the files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.annotations.labelme_io import read_labelme
from core.annotations.model import SliceAnnotation
from core.consensus.matching import Agreement, MatchSettings, VertebraGroup, match_vertebrae
from core.consensus.reading import cases_not_done
from core.errors import AnnotationFileError, ConsensusError
from core.progress import Progress, ProgressGenerator
from core.study.layout import Study, check_id
from core.study.slice_key import SliceKey


@dataclass(frozen=True)
class ReaderChoice:
    """The readers a consensus compares, and those it leaves out with the reason (reader → why)."""

    readers: tuple[str, ...]
    left_out: Mapping[str, str] = field(default_factory=dict)

    def note(self) -> str:
        """``Left out of the consensus: me (not one of the study's readers in study.json).``, or ""."""
        if not self.left_out:
            return ""
        parts = [f"{r} ({why})" for r, why in self.left_out.items()]
        return f"Left out of the consensus: {', '.join(parts)}."


def study_readers(study: Study) -> ReaderChoice:
    """The readers to compare unless told otherwise: the readers the study names (``study.json``) when it names at
    least two, else every reader with a folder. Someone else who annotated a few slices (the coordinator trying the
    app, a trainee) is left out, so they do not become a fourth reader of the consensus; name them with ``--readers``
    to compare them."""
    named = list(dict.fromkeys(study.settings.readers))
    every = study.readers()
    if len(named) < 2:
        return ReaderChoice(tuple(every))
    return ReaderChoice(tuple(named), {r: "not one of the study's readers in study.json" for r in every
                                       if r not in named})


def resolve_readers(study: Study, requested: Sequence[str] | None = None) -> tuple[str, ...]:
    """The readers to compare: ``requested`` (checked against the study's readers) or :func:`study_readers`."""
    known = study.readers()
    if requested is None or not list(requested):
        chosen = list(study_readers(study).readers)
    else:
        chosen = list(dict.fromkeys(r.strip() for r in requested if r.strip()))
        unknown = [r for r in chosen if r not in known]
        if unknown:
            listing = ", ".join(known) if known else "none"
            raise ConsensusError(
                f"unknown reader{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                f"the study's readers are: {listing}",
                study.root,
            )
    for reader in chosen:
        check_id(reader, "reader")
    if len(chosen) < 2:
        where = (f"{len(chosen)} {'was' if len(chosen) == 1 else 'were'} chosen of the study's {len(known)}"
                 if requested and len(known) >= 2 else f"the study has {len(chosen)}")
        raise ConsensusError(f"a consensus needs at least two readers, {where}", study.root)
    return tuple(chosen)


@dataclass(frozen=True)
class SliceMatch:
    """One slice: the readers compared (those with a file), those absent, and the matched vertebra groups."""

    case: str
    slice_id: str
    image_size: tuple[int, int]
    readers: tuple[str, ...]
    absent: tuple[str, ...]
    groups: tuple[VertebraGroup, ...]
    annotations: Mapping[str, SliceAnnotation] = field(repr=False)
    consensus: SliceAnnotation | None = field(default=None, repr=False)
    consensus_problem: str | None = None  # why the slice's consensus file could not be read

    @property
    def key(self) -> SliceKey:
        return self.case, self.slice_id

    @property
    def partial(self) -> bool:
        return bool(self.absent)

    def disagreements(self) -> list[VertebraGroup]:
        return [g for g in self.groups if g.is_disagreement]


@dataclass
class ConsistencyCheck:
    readers: tuple[str, ...]
    settings: MatchSettings
    slices: list[SliceMatch]
    missing: list[tuple[str, str, str]] = field(default_factory=list)  # (reader, case, slice): no file
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why): could not be read
    unread: list[SliceKey] = field(default_factory=list)  # no reader has a file
    not_done: list[tuple[str, str]] = field(default_factory=list)  # (reader, case) not marked done
    blinding: bool = False

    @property
    def partial(self) -> bool:
        return bool(self.missing or self.skipped)

    def groups(self) -> Iterator[tuple[SliceMatch, VertebraGroup]]:
        for item in self.slices:
            for group in item.groups:
                yield item, group

    def disagreements(self) -> list[tuple[SliceMatch, VertebraGroup]]:
        return [(s, g) for s, g in self.groups() if g.is_disagreement]

    def status_counts(self) -> dict[str, int]:
        counts = Counter(g.status.value for _, g in self.groups())
        result = {a.value: counts.get(a.value, 0) for a in Agreement}
        result["boxes_differ"] = sum(g.boxes_differ for _, g in self.groups())
        result["groups"] = sum(len(s.groups) for s in self.slices)
        result["disagreements"] = len(self.disagreements())
        return result


def _png_size(study: Study, case: str, slice_id: str) -> tuple[tuple[int, int], Path] | None:
    path = study.labelme_image_path(case, slice_id)
    if not path.is_file():
        return None
    try:
        with Image.open(path) as image:
            return (int(image.width), int(image.height)), path
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None


def _check_sizes(study: Study, case: str, slice_id: str, files: Mapping[str, tuple[Path, SliceAnnotation]]) -> None:
    sizes = {who: (a.image_width, a.image_height) for who, (_, a) in files.items()}
    image = _png_size(study, case, slice_id)
    if len(set(sizes.values())) <= 1 and (image is None or not sizes or image[0] in sizes.values()):
        return
    parts = [f"{path} ({sizes[who][0]}x{sizes[who][1]})" for who, (path, _) in files.items()]
    if image is not None:
        parts.append(f"image {image[1]} ({image[0][0]}x{image[0][1]})")
    raise ConsensusError(f"the image sizes of slice {case}/{slice_id} differ: " + "; ".join(parts))


def load_slice(
    study: Study, case: str, slice_id: str, readers: Sequence[str], result: ConsistencyCheck
) -> tuple[dict[str, SliceAnnotation], SliceAnnotation | None, str | None]:
    """The readers' annotations of one slice, the consensus, and why the consensus could not be read (if so);
    missing and unreadable files are recorded in ``result``."""
    files: dict[str, tuple[Path, SliceAnnotation]] = {}
    no_file = []
    for reader in readers:
        path = study.reader_path(reader, case, slice_id)
        if not path.is_file():
            no_file.append(reader)
            continue
        try:
            files[reader] = (path, read_labelme(path))
        except AnnotationFileError as exc:
            result.skipped.append((str(path), exc.message))
    consensus = problem = None
    consensus_path = study.consensus_path(case, slice_id)
    if consensus_path.is_file():
        try:
            consensus = read_labelme(consensus_path)
            files["consensus"] = (consensus_path, consensus)
        except AnnotationFileError as exc:
            result.skipped.append((str(consensus_path), exc.message))
            problem = exc.message
    _check_sizes(study, case, slice_id, files)
    annotations = {r: files[r][1] for r in readers if r in files}
    if annotations:  # a slice nobody has read yet is "unread", not missing for each reader
        result.missing.extend((r, case, slice_id) for r in no_file)
    return annotations, consensus, problem


def match_slice(
    case: str,
    slice_id: str,
    readers: Sequence[str],
    annotations: Mapping[str, SliceAnnotation],
    settings: MatchSettings,
    consensus: SliceAnnotation | None = None,
    consensus_problem: str | None = None,
) -> SliceMatch:
    present = tuple(r for r in readers if r in annotations)
    first = annotations[present[0]]
    groups = match_vertebrae({r: annotations[r].vertebrae for r in present}, settings)
    return SliceMatch(
        case,
        slice_id,
        (first.image_width, first.image_height),
        present,
        tuple(r for r in readers if r not in annotations),
        tuple(groups),
        dict(annotations),
        consensus,
        consensus_problem,
    )


def check_study(
    study: Study, readers: Sequence[str] | None = None, settings: MatchSettings | None = None
) -> ProgressGenerator[ConsistencyCheck]:
    """Match and classify the readers' boxes on every slice of the study."""
    chosen = resolve_readers(study, readers)
    settings = settings or MatchSettings()
    result = ConsistencyCheck(chosen, settings, [], blinding=study.settings.blinding)
    if study.settings.blinding:
        result.not_done = cases_not_done(study, chosen)
    keys = study.all_slices()
    for number, (case, slice_id) in enumerate(keys):
        yield Progress("consistency check", number, len(keys), f"{case}/{slice_id}")
        annotations, consensus, problem = load_slice(study, case, slice_id, chosen, result)
        if not annotations:
            result.unread.append((case, slice_id))
            continue
        result.slices.append(match_slice(case, slice_id, chosen, annotations, settings, consensus, problem))
    yield Progress("consistency check", len(keys), len(keys), "done")
    return result
