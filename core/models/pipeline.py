"""The diagnosis pipeline: detector (VDModule) → patches (VEModule) → classifier (VCModule), plus levels.

A slice gives vertebrae with their boxes, detector scores, diseases, the six probabilities and a level. The patches
of all boxes of a slice go through the classifier in one batched forward pass. Levels are anchored on the sacrum
when it is detected and made consistent across the slices of one examination (see :mod:`core.models.levels`).
Without a classifier the pipeline only detects: boxes are written as undiagnosed ``vertebra`` boxes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.annotations.geometry import DETECTION_THRESHOLD
from core.annotations.labelme_io import read_labelme, write_labelme
from core.annotations.model import CLASS_CODES, DISEASES, MODEL_SOURCE, Box, SliceAnnotation, Vertebra
from core.errors import ModelPackageError, VertebraReviewError
from core.imaging.png_io import write_png
from core.imaging.rendering import ModelInput
from core.models.classifier import VertebraClassifier, decide
from core.models.detector import VertebraDetector
from core.models.inputs import SliceInput, collect_inputs, study_inputs
from core.models.levels import propagate_levels, slice_levels
from core.models.registry import DEMO_NOTICE, ModelSet, resolve_models
from core.models.run_detect import load_input
from core.progress import Progress, ProgressGenerator
from core.study.layout import Study
from core.study.slice_key import SliceKey


def recorded_thresholds(thresholds: Mapping[str, float]) -> dict[str, float]:
    """A classifier's disease thresholds as a result records them (to 4 decimals, like its probabilities)."""
    return {d.value: round(float(thresholds[d.value]), 4) for d in DISEASES}


@dataclass(frozen=True)
class SliceDiagnosis:
    """One slice's result: vertebrae (boxes in slice pixels) and how sure the sacrum anchor was."""

    vertebrae: tuple[Vertebra, ...]
    sacrum_probability: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class DiagnoseReport:
    slices: int = 0
    skipped: int = 0  # already done (same model), not run again
    vertebrae: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


class DiagnosisPipeline:
    """A loaded model set, ready to diagnose slices."""

    def __init__(self, models: ModelSet, detector: VertebraDetector, classifier: VertebraClassifier | None,
                 threshold: float = DETECTION_THRESHOLD) -> None:
        if classifier is not None and classifier.config.window != detector.config.window:
            raise ModelPackageError(
                f"the detector learnt from slices rendered {detector.config.window!r} and the classifier from "
                f"{classifier.config.window!r}; a model set needs one rendering (retrain one of them with --window)",
                models.classifier)
        self.models = models
        self.detector = detector
        self.classifier = classifier
        self.threshold = threshold

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto", precision: str = "auto", fast: bool = True,
             threshold: float = DETECTION_THRESHOLD, views: int | None = None) -> DiagnosisPipeline:
        """Load a model set (see :func:`core.models.registry.resolve_models` for what ``path`` may be); ``views``:
        the detector's test-time views instead of its package's setting."""
        models = resolve_models(path)
        detector = VertebraDetector.from_package(models.detector, device=device, precision=precision, fast=fast,
                                                 views=views)
        classifier = None
        if models.classifier is not None:
            classifier = VertebraClassifier.from_package(models.classifier, device=device, precision=precision)
        return cls(models, detector, classifier, threshold)

    @property
    def model_id(self) -> str:
        return self.models.model_id

    @property
    def rendering(self) -> str:
        """How a slice becomes this model set's input (:func:`core.imaging.rendering.model_view`)."""
        return self.detector.config.window

    @property
    def is_demo(self) -> bool:
        return self.models.demo

    def describe(self) -> str:
        what = "detector + classifier" if self.classifier else "detector only"
        views = self.detector.config.test_views
        what += f", {views} views of each slice" if views > 1 else ""
        smoothing = self.classifier.config.smoothing if self.classifier else 0.0
        spacing = self.classifier.config.spacing_mm if self.classifier else 0.0
        what += f", slices resampled to {spacing:g} mm pixels for the classifier" if spacing > 0 else ""
        what += f", slices smoothed {smoothing:g} px for the classifier" if smoothing > 0 else ""
        demo = f" · {DEMO_NOTICE}" if self.is_demo else ""
        return f"{self.model_id} ({what}){demo} · {self.detector.compute.describe()}"

    @property
    def call_thresholds(self) -> dict[str, float] | None:
        """The probability from which each disease is called (written with each result), or None without a
        classifier."""
        return recorded_thresholds(self.classifier.config.thresholds) if self.classifier is not None else None

    def diagnose_images(self, images: Sequence[np.ndarray],
                        spacings: Sequence[tuple[float, float] | None] | None = None) -> list[SliceDiagnosis]:
        """Diagnose uint8 slices (the model's input representation) with their pixel spacings (row, column mm; None
        where unknown, which a classifier with a reference spacing then takes as they are); levels per slice (no
        case propagation)."""
        started = time.perf_counter()
        found = self.detector.detect(list(images), threshold=self.threshold)
        detected = time.perf_counter()
        probabilities: list[np.ndarray | None] = [None] * len(images)
        if self.classifier is not None:
            probabilities = list(self.classifier.predict(list(images), [f.boxes for f in found], spacings=spacings))
        classified = time.perf_counter()
        results = []
        for detections, probs in zip(found, probabilities, strict=True):
            levels, sacrum = slice_levels(detections.boxes, self.detector.config.sacrum)
            results.append(SliceDiagnosis(self._vertebrae(detections.boxes, detections.scores, probs, levels), sacrum,
                                          {"detect": (detected - started) / len(images),
                                           "classify": (classified - detected) / len(images)}))
        return results

    def _vertebrae(self, boxes: np.ndarray, scores: np.ndarray, probabilities: np.ndarray | None,
                   levels: Sequence[str | None]) -> tuple[Vertebra, ...]:
        calls = decide(probabilities, self.classifier.config.thresholds) if probabilities is not None else None
        out = []
        for i, (box, score) in enumerate(zip(boxes, scores, strict=True)):
            extra = {}
            if probabilities is not None:
                extra = {"probabilities": {c: round(float(p), 4) for c, p in zip(CLASS_CODES, probabilities[i],
                                                                                  strict=True)},
                         "diseases": calls[i] if calls is not None else frozenset()}
            out.append(Vertebra(Box(*(float(v) for v in box)), score=round(float(score), 4), level=levels[i],
                                source=MODEL_SOURCE, diagnosed=probabilities is not None, **extra))
        return tuple(out)

    def with_case_levels(self, results: Sequence[SliceDiagnosis]) -> list[SliceDiagnosis]:
        """The slices of one examination with levels made consistent from its surest sacrum anchor."""
        boxes = [np.array([v.box.as_list() for v in r.vertebrae]).reshape(-1, 4) for r in results]
        levels = propagate_levels(boxes, [[v.level for v in r.vertebrae] for r in results],
                                  [r.sacrum_probability for r in results])
        return [SliceDiagnosis(tuple(v.with_changes(level=lv) for v, lv in zip(r.vertebrae, new, strict=True)),
                               r.sacrum_probability, r.seconds) for r, new in zip(results, levels, strict=True)]

    # -- running over slices -----------------------------------------------------------------------------------------
    def _done(self, item: SliceInput) -> bool:
        if not item.json_path.is_file():
            return False
        try:
            return read_labelme(item.json_path).model == self.model_id
        except VertebraReviewError:
            return False

    def run(self, items: Sequence[SliceInput], report: DiagnoseReport, *, overwrite: bool = False,
            batch_size: int = 4) -> Iterator[Progress]:
        """Diagnose ``items`` examination by examination and write their JSON; an examination whose every slice
        was already written by this model is skipped (``overwrite`` runs it again)."""
        groups: dict[str, list[SliceInput]] = {}
        for item in items:
            groups.setdefault(item.group, []).append(item)
        done = 0
        for members in groups.values():
            if not overwrite and all(self._done(item) for item in members):
                report.skipped += len(members)
                done += len(members)
                yield Progress("diagnose", done, len(items), f"{members[0].group}: already done")
                continue
            loaded: list[tuple[SliceInput, ModelInput]] = []
            for item in members:
                try:
                    loaded.append((item, load_input(item)))
                except VertebraReviewError as exc:
                    report.errors.append((item.name, str(exc)))
            results: list[SliceDiagnosis] = []
            for start in range(0, len(loaded), batch_size):
                chunk = loaded[start : start + batch_size]
                results.extend(self.diagnose_images([i.pixels for _, i in chunk], [i.spacing_mm for _, i in chunk]))
                done += len(chunk)
                yield Progress("diagnose", done, len(items), chunk[-1][0].name)
            for (item, given), result in zip(loaded, self.with_case_levels(results), strict=True):
                self._write(item, given.pixels, result, report)
            done += len(members) - len(loaded)
        yield Progress("diagnose", len(items), len(items), "done")

    def _write(self, item: SliceInput, pixels: np.ndarray, result: SliceDiagnosis, report: DiagnoseReport) -> None:
        try:
            if item.write_png:
                write_png(item.image_path, pixels)
            relative = Path(os.path.relpath(item.image_path, item.json_path.parent)).as_posix()
            annotation = SliceAnnotation(pixels.shape[1], pixels.shape[0], result.vertebrae, image_path=relative,
                                         model=self.model_id, thresholds=self.call_thresholds)
            report.written.append(write_labelme(annotation, item.json_path))
        except VertebraReviewError as exc:
            report.errors.append((item.name, str(exc)))
            return
        report.slices += 1
        report.vertebrae += len(result.vertebrae)

    def diagnose_inputs(self, inputs: Sequence[str | Path], out: str | Path, *,
                        overwrite: bool = False) -> ProgressGenerator[DiagnoseReport]:
        """``vertebra-review diagnose``: files, folders, DICOM series, NIfTI volumes or studies → ``out``."""
        report = DiagnoseReport()
        items, report.errors = collect_inputs(inputs, Path(out), self.rendering)
        yield from self.run(items, report, overwrite=overwrite)
        return report

    def diagnose_study(self, study: Study, slices: Sequence[SliceKey] | None = None, *,
                       overwrite: bool = True) -> ProgressGenerator[DiagnoseReport]:
        """Diagnose slices of a study into ``predictions/<model-id>/`` (all slices when ``slices`` is None)."""
        report = DiagnoseReport()
        out = study.root / "predictions" / self.model_id
        items = list(study_inputs(study, out, self.rendering, slices))
        yield from self.run(items, report, overwrite=overwrite)
        return report
