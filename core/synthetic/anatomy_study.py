"""Phantom studies from real anatomy: the second phantom source, written in the same study layout as the analytic one.

Each case takes one anatomy atlas (a real label map, cycling through those given) and draws, once per case, its
diseases (by the paper's per-box prevalence), its deformation and its appearance; its slices are sagittal slabs at
random positions across the vertebral bodies and random thicknesses (1-3 mm). Every slice is rendered as: slab →
discs and canal → the body around the spine → lesions → deformation → appearance (see :mod:`core.synthetic.slab`).
The truth is each body's box on the deformed slab (pixels at least half body), kept when at least
:data:`MIN_VISIBLE` of the body lies in the field of view, with its level and diseases. The studies carry no patient
data: the label maps are real anatomy, every HU is drawn.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.annotations.model import LEVELS, Box, Disease, SliceAnnotation, Vertebra
from core.errors import StudyError
from core.imaging.dicom_write import SliceTags, derived_uid
from core.imaging.image import SliceImage
from core.imaging.windowing import BONE
from core.progress import Progress, ProgressGenerator
from core.study.images import write_slice_images
from core.study.layout import Study
from core.study.staging import staged_study
from core.synthetic.appearance import apply_appearance, draw_appearance
from core.synthetic.atlas import TissueAtlas, build_atlas, fill_spine
from core.synthetic.deform import draw_warp, warp_slab
from core.synthetic.diseases import PAPER_PREVALENCE, DiseasePlan, allocate
from core.synthetic.lesions import make_lesions
from core.synthetic.slab import AnatomySlab
from core.synthetic.surroundings import around_the_spine, whole_body

GENERATOR = "anatomy"
GENERATOR_VERSION = 1
MIN_VISIBLE = 0.6
NOT_PATIENT_DATA = "synthetic phantom from real anatomy (label maps), not patient data"


@dataclass(frozen=True)
class AnatomySource:
    """A label map to draw cases from (any form the segmented-CT import reads) and its scheme when it is needed."""

    labels: Path
    scheme: str | None = None

    def key(self) -> str:
        return f"{self.labels}|{self.scheme}"


@dataclass(frozen=True)
class AnatomyOptions:
    sources: tuple[AnatomySource, ...]
    cases: int = 10
    seed: int = 0
    slices_per_case: int = 4
    prevalence: Mapping[Disease, float] = field(default_factory=lambda: dict(PAPER_PREVALENCE))
    preview: bool = False  # also write preview.png, a montage of slices with their truth

    def __post_init__(self) -> None:
        if not self.sources:
            raise StudyError("an anatomy phantom needs at least one label map (--anatomy)")
        if self.cases < 1 or self.slices_per_case < 1:
            raise StudyError("a phantom study needs at least one case and one slice per case")


@lru_cache(maxsize=8)
def _atlas(key: str) -> TissueAtlas:
    labels, scheme = key.rsplit("|", 1)
    return build_atlas(Path(labels), None if scheme == "None" else scheme)


def atlas_for(source: AnatomySource) -> TissueAtlas:
    """The source's atlas, built once per process."""
    return _atlas(source.key())


@dataclass
class _CasePlan:
    case_id: str
    atlas: TissueAtlas
    diseases: dict[str, frozenset[Disease]]
    positions: list[tuple[int, float]]  # (x index, thickness mm) per slice
    seeds: dict[str, np.random.SeedSequence]


def plan_case(options: AnatomyOptions, index: int) -> _CasePlan:
    """One case's atlas, diseases per body, slab positions and the seeds of its random draws."""
    source = options.sources[index % len(options.sources)]
    atlas = atlas_for(source)
    root = np.random.SeedSequence([GENERATOR_VERSION, options.seed, index])
    names = ("diseases", "positions", "lesions", "surroundings", "warp", "appearance", "slices")
    seeds = dict(zip(names, root.spawn(len(names)), strict=True))
    rng = np.random.default_rng(seeds["diseases"])
    bodies = [b.name for b in atlas.bodies if b.boxed]
    calls = allocate(DiseasePlan(options.prevalence), len(bodies), rng) if bodies else []
    diseases = {name: frozenset(call) for name, call in zip(bodies, calls, strict=True) if call}
    return _CasePlan(f"case-{index + 1:04d}", atlas, diseases, _positions(atlas, options, seeds["positions"]), seeds)


def _positions(atlas: TissueAtlas, options: AnatomyOptions, seed: np.random.SeedSequence) -> list[tuple[int, float]]:
    """Slab centres spread across the middle 70 % of the bodies' width, and thicknesses of 1-3 mm."""
    rng = np.random.default_rng(seed)
    widths = [b.mask.shape[0] for b in atlas.bodies if b.boxed] or [20]
    half = 0.35 * float(np.median(widths))
    xs = np.sort(rng.uniform(atlas.midline - half, atlas.midline + half, options.slices_per_case))
    top = atlas.tissues.shape[0] - 1
    return [(int(np.clip(round(x), 0, top)), float(rng.uniform(1.0, 3.0))) for x in xs]


def render_slice(plan: _CasePlan, number: int) -> tuple[np.ndarray, float, list[Vertebra]]:
    """(HU image, pixel size, truth vertebrae) of slice ``number`` (1-based) of a planned case."""
    x_index, thickness = plan.positions[number - 1]
    rng = np.random.default_rng(plan.seeds["slices"].spawn(number)[-1])
    slab = fill_spine(plan.atlas.slab(x_index, thickness), rng)
    surround = np.random.default_rng(plan.seeds["surroundings"])  # the same body around every slice of a case
    slab = whole_body(slab, surround) if plan.atlas.whole_body else around_the_spine(slab, surround)
    slab = make_lesions(slab, plan.diseases, plan.seeds["lesions"])
    warp = draw_warp(slab.shape, slab.pixel_mm, np.random.default_rng(plan.seeds["warp"]))
    warped = warp_slab(slab, warp)
    look = draw_appearance(np.random.default_rng(plan.seeds["appearance"]))
    hu = apply_appearance(warped.slab, look, rng)
    return hu, warped.slab.pixel_mm, truth(warped.slab, warped.visible)


def truth(slab: AnatomySlab, visible: Sequence[float]) -> list[Vertebra]:
    """The truth vertebrae of a rendered slab: each body mostly in view, boxed, with its level and diseases."""
    found = []
    for body, share in zip(slab.bodies, visible, strict=True):
        box = body.box()
        if box is None or share < MIN_VISIBLE or box[2] - box[0] < 2 or box[3] - box[1] < 2:
            continue
        level = body.name if body.name in LEVELS else None
        description = "" if level else f"{body.name} (beyond T1-L5 and S1)"
        found.append(Vertebra(Box(*box), body.diseases, level=level, source="truth", description=description,
                              genant=body.grade or None))
    return sorted(found, key=lambda v: v.box.y1)


@dataclass
class AnatomyReport:
    study: Path
    cases: int
    slices: int
    boxes: int
    seconds: float
    diseases: dict[str, int]
    #: What was done on the way (an earlier killed run's partial output removed).
    notes: list[str] = field(default_factory=list)
    preview: Path | None = None


def generate_anatomy_study(out: str | Path, options: AnatomyOptions, *,
                           workers: int = 1) -> ProgressGenerator[AnatomyReport]:
    """Write an anatomy phantom study into the new folder ``out`` (cases in ``workers`` processes; the files are
    the same either way)."""
    started = time.perf_counter()
    for number, source in enumerate(options.sources, start=1):  # a map that cannot be read stops before any file
        yield Progress("synth", 0, options.cases * options.slices_per_case, f"reading label map {number}")
        atlas_for(source)  # (built once here; forked workers inherit it)
    notes: list[str] = []
    with staged_study(out, notes) as staging:  # moved into place when complete: never half a study at ``out``
        study = Study.create(staging, name=f"anatomy phantom seed {options.seed}")
        _configure(study, options)
        total, counts = options.cases * options.slices_per_case, Counter()
        if workers > 1 and options.cases > 1:
            yield from _in_processes(study.root, options, min(workers, options.cases), total, counts)
        else:
            for index in range(options.cases):
                yield Progress("synth", index * options.slices_per_case, total, f"case {index + 1}")
                counts.update(write_case(study.root, options, index))
        if options.preview:
            from core.synthetic.preview import write_preview

            write_preview(study, study.root / "preview.png")
    yield Progress("synth", total, total, "done")
    diseases = {d.value: counts.get(d.value, 0) for d in Disease}
    return AnatomyReport(Path(out), options.cases, total, counts["boxes"], time.perf_counter() - started, diseases,
                         notes, Path(out) / "preview.png" if options.preview else None)


def write_case(root: Path, options: AnatomyOptions, index: int) -> Counter:
    """Render and write one case; the counts of its boxes and diseased boxes."""
    study, plan, counts = Study.open(root), plan_case(options, index), Counter()
    for number in range(1, options.slices_per_case + 1):
        hu, pixel_mm, vertebrae = render_slice(plan, number)
        _write(study, options, plan, number, hu, pixel_mm, vertebrae)
        counts["boxes"] += len(vertebrae)
        counts.update(d.value for v in vertebrae for d in v.diseases)
    return counts


def _in_processes(root: Path, options: AnatomyOptions, workers: int, total: int, counts: Counter) -> Iterator[Progress]:
    method = "fork" if sys.platform.startswith("linux") and "PySide6" not in sys.modules else "spawn"
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                               initializer=_one_thread)
    done = 0
    try:
        futures = [pool.submit(write_case, root, options, index) for index in range(options.cases)]
        for future in as_completed(futures):
            counts.update(future.result())
            done += options.slices_per_case
            yield Progress("synth", done, total, "case written")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _one_thread() -> None:
    """A worker renders with one thread: the processes already use every core, and more threads only contend. It
    leaves Ctrl+C to the parent, which lets the running cases finish and removes the partial study."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    torch.set_num_threads(1)


def iterate_slices(options: AnatomyOptions) -> Iterator[tuple[np.ndarray, list[Vertebra]]]:
    """Every slice of the study as (HU, truth), without writing anything (benchmarks, tests)."""
    for index in range(options.cases):
        plan = plan_case(options, index)
        for number in range(1, options.slices_per_case + 1):
            hu, _, vertebrae = render_slice(plan, number)
            yield hu, vertebrae


def _configure(study: Study, options: AnatomyOptions) -> None:
    settings = study.settings
    settings.readers = []
    settings.png_window = "min-max"
    settings.salt = hashlib.sha256(f"anatomy-{options.seed}".encode()).hexdigest()[:32]
    settings.extra["synthetic"] = {
        "note": NOT_PATIENT_DATA, "generator": GENERATOR, "generator_version": GENERATOR_VERSION,
        "seed": options.seed, "cases": options.cases, "slices_per_case": options.slices_per_case,
        "sources": [str(s.labels) for s in options.sources],
        "prevalence": {d.value: float(r) for d, r in options.prevalence.items()},
    }
    study.save_settings()


def _write(study: Study, options: AnatomyOptions, plan: _CasePlan, number: int, hu: np.ndarray, pixel_mm: float,
           vertebrae: list[Vertebra]) -> None:
    slice_id = f"s{number:03d}"
    key = ("anatomy", str(options.seed), plan.case_id)
    height, width = hu.shape
    tags = SliceTags(
        patient_id=f"PHANTOM-{plan.case_id}", study_uid=derived_uid(*key, "study"),
        series_uid=derived_uid(*key, "series"), sop_uid=derived_uid(*key, slice_id),
        frame_of_reference_uid=derived_uid(*key, "frame"), instance_number=number,
        series_description="synthetic sagittal from real anatomy", spacing_mm=(pixel_mm, pixel_mm),
        thickness_mm=plan.positions[number - 1][1],
        position_lps=(0.0, -width * pixel_mm / 2 + pixel_mm / 2, height * pixel_mm / 2 - pixel_mm / 2),
        orientation_lps=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0), window=BONE, image_type=("DERIVED", "SECONDARY", "SYNTHETIC"),
    )  # fmt: skip
    image = SliceImage(pixels=hu, spacing_mm=(pixel_mm, pixel_mm), hu=True, windows=(BONE,), orientation="sagittal")
    write_slice_images(study.root / "images" / plan.case_id, slice_id, image, "min-max", tags)
    annotation = SliceAnnotation(width, height, tuple(vertebrae), reviewed=True, extra={"synthetic": NOT_PATIENT_DATA})
    study.save_annotation(annotation, plan.case_id, slice_id)
