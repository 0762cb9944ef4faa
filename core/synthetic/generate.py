"""Generating a phantom study: plan every case and its truth first (cheap), then render and write the slices.

The study follows the DESIGN layout: ``images/<case>/<slice>.dcm`` (HU) with the paper's 8-bit min-max PNG beside
it, ``readers/r1..r3/`` (simulated readers), and ``consensus/`` holding the truth (the reference consensus).
Everything is deterministic for a seed: the same seed gives the same files, byte for byte.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.annotations.model import Box, Disease, SliceAnnotation, Vertebra
from core.errors import StudyError
from core.imaging.dicom_write import SliceTags, derived_uid
from core.imaging.image import SliceImage
from core.imaging.windowing import BONE, Window
from core.progress import Progress, ProgressGenerator
from core.study.images import write_slice_images
from core.study.layout import Study
from core.study.staging import staged_study
from core.synthetic.anatomy import LEVEL_SIZES_MM, SPINE_LEVELS
from core.synthetic.case import SITES, CaseSkeleton, PhantomCase, Site, build_case, sample_skeleton
from core.synthetic.diseases import (
    FOCAL,
    PAPER_PREVALENCE,
    DiseasePlan,
    VertebraDisease,
    allocate,
    expected_visibility,
    vertebra_disease,
)
from core.synthetic.readers import ReaderCall, VertebraTruth, measured_disagreement, simulate_readers
from core.synthetic.render import CaseRenderer, TruthBox, truth_boxes

GENERATOR_VERSION = 1
TRUTH_SOURCE = "truth"
DEFAULT_DISAGREEMENT = 0.08
NOT_PATIENT_DATA = "synthetic phantom, not patient data"


@dataclass(frozen=True)
class SynthOptions:
    cases: int = 10
    seed: int = 0
    readers: int = 3
    site: str = "A"
    slices_per_case: int = 10
    prevalence: Mapping[Disease, float] = field(default_factory=lambda: dict(PAPER_PREVALENCE))
    disagreement: float = DEFAULT_DISAGREEMENT
    preview: bool = False

    def __post_init__(self) -> None:
        if self.site not in SITES:
            raise StudyError(f"unknown site {self.site!r}: use A or B")
        if self.cases < 1 or self.slices_per_case < 1:
            raise StudyError("a phantom study needs at least one case and one slice per case")
        if not 0 <= self.readers <= 9:
            raise StudyError("between 0 and 9 simulated readers")
        if not 0.0 <= self.disagreement < 0.9:
            raise StudyError("the disagreement rate must be between 0 and 0.9")
        for disease, rate in self.prevalence.items():
            if not 0.0 <= rate < 1.0:
                raise StudyError(f"prevalence of {disease} must be between 0 and 1, not {rate}")
        _check_rates(DiseasePlan(self.prevalence))


def _check_rates(plan: DiseasePlan) -> None:
    try:
        plan.primary_rates()
    except ValueError as exc:
        raise StudyError(str(exc)) from None


@dataclass(frozen=True)
class PlannedCase:
    """A case with the truth of each of its slices (slice number → boxes), before any pixel is drawn."""

    case_id: str
    case: PhantomCase
    truth: dict[int, list[TruthBox]]
    render_seed: np.random.SeedSequence


@dataclass
class StudyPlan:
    options: SynthOptions
    cases: list[PlannedCase]
    readers: list[dict[tuple[int, str, int], ReaderCall]]

    def truth_boxes(self) -> list[TruthBox]:
        return [box for planned in self.cases for boxes in planned.truth.values() for box in boxes]

    def prevalence(self) -> dict[str, float]:
        """Measured per-box prevalence of each disease, and of NORMAL."""
        boxes = self.truth_boxes()
        counts = Counter(d.value for box in boxes for d in box.diseases)
        total = max(len(boxes), 1)
        result = {d.value: counts.get(d.value, 0) / total for d in Disease}
        result["NORMAL"] = sum(not box.diseases for box in boxes) / total
        return result

    def disagreement(self) -> float:
        return measured_disagreement(self.readers) if len(self.readers) > 1 else 0.0


def _streams(seed: int) -> dict[str, np.random.SeedSequence]:
    names = ("skeletons", "visibility", "allocation", "readers", "cases")
    return dict(zip(names, np.random.SeedSequence([GENERATOR_VERSION, seed]).spawn(len(names)), strict=True))


def plan_study(options: SynthOptions) -> StudyPlan:
    """Every case's anatomy, diseases and truth, and the readers' calls; no rendering."""
    site = SITES[options.site]
    streams = _streams(options.seed)
    skeleton_rng = np.random.default_rng(streams["skeletons"])
    skeletons = [sample_skeleton(i, site, skeleton_rng) for i in range(options.cases)]
    diseased = [(s.index, SPINE_LEVELS[i]) for s in skeletons for i in s.window if SPINE_LEVELS[i] != "S1"]
    nominal = [(i - (options.slices_per_case - 1) / 2) * site.step_mm for i in range(options.slices_per_case)]
    half_widths = [LEVEL_SIZES_MM[level][2] / 2 for _, level in diseased] or [20.0]
    visibility_rng = np.random.default_rng(streams["visibility"])
    visibility = {d: expected_visibility(d, nominal, site.thickness_mm, half_widths, visibility_rng) for d in FOCAL}
    plan = DiseasePlan(options.prevalence, visibility)
    _check_rates(plan)
    allocation_rng = np.random.default_rng(streams["allocation"])
    allocated = allocate(plan, len(diseased), allocation_rng)
    by_case: dict[int, dict[str, VertebraDisease]] = {s.index: {} for s in skeletons}
    for (case_index, level), diseases in zip(diseased, allocated, strict=True):
        if diseases:
            half_width = LEVEL_SIZES_MM[level][2] / 2
            by_case[case_index][level] = vertebra_disease(diseases, half_width, allocation_rng)
    case_seeds = streams["cases"].spawn(options.cases)
    planned = [_plan_case(s, site, by_case[s.index], case_seeds[s.index], options) for s in skeletons]
    readers = _simulate(planned, options, np.random.default_rng(streams["readers"]))
    return StudyPlan(options, planned, readers)


def _plan_case(
    skeleton: CaseSkeleton,
    site: Site,
    diseases: dict[str, VertebraDisease],
    seed: np.random.SeedSequence,
    options: SynthOptions,
) -> PlannedCase:
    build_seed, render_seed = seed.spawn(2)
    case = build_case(skeleton, site, diseases, np.random.default_rng(build_seed), slice_count=options.slices_per_case)
    truth = {n: truth_boxes(case, x) for n, x in enumerate(case.offsets_mm, start=1)}
    return PlannedCase(f"case-{skeleton.index + 1:04d}", case, truth, render_seed)


def _simulate(
    planned: list[PlannedCase], options: SynthOptions, rng: np.random.Generator
) -> list[dict[tuple[int, str, int], ReaderCall]]:
    if options.readers == 0:
        return []
    vertebrae: dict[tuple[int, str], list[tuple[int, TruthBox]]] = {}
    for index, item in enumerate(planned):
        for number, boxes in item.truth.items():
            for box in boxes:
                vertebrae.setdefault((index, box.level), []).append((number, box))
    truths = [
        VertebraTruth(key, planned[key[0]].case.disease_of(key[1]).diseases, tuple(boxes))
        for key, boxes in vertebrae.items()
    ]
    sizes = {i: (p.case.width_px, p.case.height_px) for i, p in enumerate(planned)}
    return simulate_readers(truths, options.readers, options.disagreement, rng, sizes)


# -- writing ----------------------------------------------------------------------------------------------------------
@dataclass
class SynthReport:
    study: Path
    cases: int
    slices: int
    boxes: int
    prevalence: dict[str, float]
    disagreement: float
    seconds: float
    preview: Path | None = None
    #: What was done on the way (an earlier killed run's partial output removed).
    notes: list[str] = field(default_factory=list)


def generate_study(out: str | Path, options: SynthOptions, *, workers: int = 1,
                   staged: bool = True) -> ProgressGenerator[SynthReport]:
    """Write a phantom study into the new folder ``out``.

    With ``workers`` > 1, cases are rendered in that many processes (the files are the same either way). The study
    is written beside ``out`` and moved into place when complete (:func:`core.study.staging.staged_study`), so an
    interrupted run leaves no half study; ``staged=False`` writes into ``out`` directly (a caller that stages the
    whole of its own output).
    """
    if not staged:
        return (yield from _generate(Path(out), options, workers))
    notes: list[str] = []
    with staged_study(out, notes) as staging:
        report = yield from _generate(staging, options, workers)
    preview = Path(out) / report.preview.name if report.preview else None
    return replace(report, study=Path(out), preview=preview, notes=notes)


def _generate(out: Path, options: SynthOptions, workers: int) -> ProgressGenerator[SynthReport]:
    started = time.perf_counter()
    plan = plan_study(options)
    study = Study.create(out, name=f"phantom site {options.site} seed {options.seed}")
    _configure(study, options)
    total = sum(len(p.truth) for p in plan.cases)
    jobs = [_CaseJob(study.root, options, planned, _calls_of(plan, i)) for i, planned in enumerate(plan.cases)]
    if workers > 1 and len(jobs) > 1:
        yield from _in_processes(jobs, min(workers, len(jobs)), total)
    else:
        done = 0
        for job in jobs:
            for number in job.slices():
                yield Progress("synth", done, total, f"{job.planned.case_id} slice {number}")
                done += 1
    preview = None
    if options.preview:
        from core.synthetic.preview import write_preview

        preview = write_preview(study, study.root / "preview.png")
    yield Progress("synth", total, total, "done")
    return SynthReport(
        study.root,
        options.cases,
        total,
        len(plan.truth_boxes()),
        plan.prevalence(),
        plan.disagreement(),
        time.perf_counter() - started,
        preview,
    )


def _calls_of(plan: StudyPlan, index: int) -> list[dict[tuple[str, int], ReaderCall]]:
    return [{(level, n): call for (i, level, n), call in calls.items() if i == index} for calls in plan.readers]


@dataclass
class _CaseJob:
    """Everything needed to render and write one case, in this process or another."""

    root: Path
    options: SynthOptions
    planned: PlannedCase
    readers: list[dict[tuple[str, int], ReaderCall]]

    def slices(self) -> Iterator[int]:
        """Render and write the slices one by one, yielding each slice's number when it is on disk."""
        study = Study.open(self.root)
        renderer = CaseRenderer(self.planned.case, np.random.default_rng(self.planned.render_seed))
        for number, x_mm in enumerate(self.planned.case.offsets_mm, start=1):
            rendered = renderer.render(x_mm, number=number)
            _write_slice(study, self, number, rendered.hu, x_mm)
            yield number

    def run(self) -> int:
        return sum(1 for _ in self.slices())


def _in_processes(jobs: list[_CaseJob], workers: int, total: int) -> Iterator[Progress]:
    # fork is quick and safe from the command line; a process that has Qt loaded must not fork.
    method = "fork" if sys.platform.startswith("linux") and "PySide6" not in sys.modules else "spawn"
    done = 0
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                               initializer=_leave_interrupts_to_the_parent)
    try:
        futures = {pool.submit(_CaseJob.run, job): job for job in jobs}
        for future in as_completed(futures):
            done += future.result()
            yield Progress("synth", done, total, f"{futures[future].planned.case_id} written")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _leave_interrupts_to_the_parent() -> None:
    """Ctrl+C reaches every process of a terminal's group; a worker ignores it, and the parent lets the running
    cases finish, cancels the rest and removes the partial study (a pool whose workers die of it can hang)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _configure(study: Study, options: SynthOptions) -> None:
    settings = study.settings
    settings.readers = [f"r{i + 1}" for i in range(options.readers)]
    settings.png_window = "min-max"
    settings.salt = hashlib.sha256(f"phantom-{options.seed}".encode()).hexdigest()[:32]
    settings.extra["synthetic"] = {
        "note": NOT_PATIENT_DATA,
        "generator_version": GENERATOR_VERSION,
        "seed": options.seed,
        "site": options.site,
        "cases": options.cases,
        "slices_per_case": options.slices_per_case,
        "prevalence": {d.value: float(r) for d, r in options.prevalence.items()},
        "disagreement": options.disagreement,
    }
    study.save_settings()


def _site_window(site: str) -> Window:
    return BONE if site == "A" else Window(500.0, 2000.0, "bone")


def _write_slice(study: Study, job: _CaseJob, number: int, hu: np.ndarray, x_mm: float) -> None:
    planned, options = job.planned, job.options
    case = planned.case
    slice_id = f"s{number:03d}"
    spacing = case.spacing_mm
    window = _site_window(options.site)
    key = (options.seed, planned.case_id)
    tags = SliceTags(
        patient_id=f"PHANTOM-{planned.case_id}",
        study_uid=derived_uid("phantom", *map(str, key), "study"),
        series_uid=derived_uid("phantom", *map(str, key), "series"),
        sop_uid=derived_uid("phantom", *map(str, key), slice_id),
        frame_of_reference_uid=derived_uid("phantom", *map(str, key), "frame"),
        instance_number=number,
        series_description=f"synthetic sagittal, site {options.site}",
        spacing_mm=(spacing, spacing),
        thickness_mm=case.site.thickness_mm,
        position_lps=(-x_mm, -case.width_px * spacing / 2 + spacing / 2, case.height_px * spacing / 2 - spacing / 2),
        orientation_lps=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
        window=window,
        image_type=("DERIVED", "SECONDARY", "SYNTHETIC"),
    )
    image = SliceImage(pixels=hu, spacing_mm=(spacing, spacing), hu=True, windows=(window,), orientation="sagittal")
    write_slice_images(study.root / "images" / planned.case_id, slice_id, image, "min-max", tags)
    width, height = case.width_px, case.height_px
    truth = planned.truth[number]
    vertebrae = tuple(Vertebra(Box(*box.box), box.diseases, level=box.level, source=TRUTH_SOURCE) for box in truth)
    extra = {"synthetic": NOT_PATIENT_DATA}
    consensus = SliceAnnotation(width, height, vertebrae, reviewed=True, extra=extra)
    study.save_annotation(consensus, planned.case_id, slice_id)
    for reader_index, calls in enumerate(job.readers):
        reader = f"r{reader_index + 1}"
        drawn = []
        for box in truth:
            call = calls[(box.level, number)]
            if call.box is not None:
                drawn.append(Vertebra(Box(*call.box), call.diseases, level=box.level, source=reader))
        annotation = SliceAnnotation(width, height, tuple(drawn), reviewed=True, extra=extra)
        study.save_annotation(annotation, planned.case_id, slice_id, reader=reader)
