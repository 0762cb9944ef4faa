"""The bundled demo: a small phantom study with three readers who disagree, one case already agreed, and demo
models trained on other phantom studies, active and with their predictions written, so that a newcomer sees the
whole workflow at once. ``vertebra-review demo build resources/demo`` makes it (about two and a half hours on two
cores, most of it training the detector); ``--detector`` and ``--classifier`` reuse packages trained by the same recipe.

The recipe (all seeds fixed): training study site A, 36 cases x 10 slices, seed 11; a second training study of 100
cases x 4 slices, seed 21, richer in Schmorl's nodes and Kummell's disease (prevalence per vertebra SN 0.05, KD 0.04
instead of 0.013 and 0.008); validation studies site A at the paper's prevalence, seeds 14 (6 cases x 10 slices), 15
(10 x 10) and 22 (60 x 4); ``train detector <seed 11> --preset cpu --seed 0 --validation <seed 14>``;
``train classifier <seed 11> <seed 21> --preset cpu --seed 0 --validation <seed 14> <seed 15> <seed 22>``, which
trains the endplate head for Schmorl's nodes after the main network (the bundled classifier's main network was
trained before the head existed, and its head added by ``train endplate`` on the same studies and seed). The demo
study itself is site A, 6 cases of 10 slices, seed 5, readers r1-r3 with a disagreement rate of 0.15. DICOM slices
are stored JPEG 2000 lossless.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.uid import JPEG2000Lossless

from core.annotations.model import Disease
from core.errors import StudyError
from core.fileio import atomic_write_bytes
from core.models.package import read_manifest, read_weights, write_package
from core.models.registry import DEMO_NOTICE, Registry, write_model_set
from core.progress import Progress, ProgressGenerator
from core.study.layout import Study
from core.synthetic.diseases import PAPER_PREVALENCE
from core.synthetic.generate import SynthOptions, generate_study

DEMO_MODEL_ID = "demo-v1"
AGREED_CASE = "case-0001"
DEMO_STUDY = SynthOptions(cases=6, seed=5, slices_per_case=10, readers=3, disagreement=0.15)
RARE_ENRICHED = {**PAPER_PREVALENCE, Disease.SN: 0.05, Disease.KD: 0.04}
TRAINING = {"train": SynthOptions(cases=36, seed=11, readers=0),
            "train2": SynthOptions(cases=100, seed=21, readers=0, slices_per_case=4, prevalence=RARE_ENRICHED),
            "val": SynthOptions(cases=6, seed=14, readers=0), "val2": SynthOptions(cases=10, seed=15, readers=0),
            "val3": SynthOptions(cases=60, seed=22, readers=0, slices_per_case=4)}


@dataclass
class DemoReport:
    study: Path
    model_id: str
    slices: int
    model_megabytes: float


def as_demo_package(source: Path, destination: Path) -> Path:
    """A copy of a package marked "demo", with float16 weights (half the size)."""
    manifest = read_manifest(source)
    return write_package(destination, kind=manifest.kind, state=read_weights(source),
                         architecture=manifest.architecture, classes=list(manifest.classes), input_spec=manifest.input,
                         training=manifest.training, metrics=manifest.metrics, parent=manifest.parent, demo=True,
                         notes=DEMO_NOTICE, half=True)


def _train_models(work: Path) -> Iterator[Progress]:
    from core.training.classification_engine import PRESETS as CLASSIFIER_PRESETS
    from core.training.classification_engine import train_classifier
    from core.training.detection_engine import PRESETS as DETECTOR_PRESETS
    from core.training.detection_engine import train_detector

    for name, options in TRAINING.items():
        yield from generate_study(work / name, options)
    yield from train_detector([work / "train"], work / "packages", DETECTOR_PRESETS["cpu"],
                              validation=[work / "val"], model_id="detector")
    yield from train_classifier([work / "train", work / "train2"], work / "packages", CLASSIFIER_PRESETS["cpu"],
                                validation=[work / "val", work / "val2", work / "val3"], model_id="classifier")


def compress_dicom(study: Study) -> None:
    """Rewrite the study's DICOM slices JPEG 2000 lossless (a third of the size; the same HU values)."""
    for case, slice_id in study.all_slices():
        path = study.image_path(case, slice_id)
        if path.suffix != ".dcm":
            continue
        dataset = pydicom.dcmread(path)
        if dataset.file_meta.TransferSyntaxUID != JPEG2000Lossless:
            dataset.compress(JPEG2000Lossless)
            buffer = pydicom.filebase.DicomBytesIO()
            dataset.save_as(buffer, enforce_file_format=True)
            atomic_write_bytes(path, buffer.getvalue())


def _keep_one_agreed_case(study: Study) -> None:
    """The phantom's truth stands in for the readers' consensus of one case; the others are left to agree on."""
    for folder in (study.root / "consensus").iterdir():
        if folder.is_dir() and folder.name != AGREED_CASE:
            shutil.rmtree(folder)


def build_demo(out: str | Path, *, detector: Path | None = None,
               classifier: Path | None = None) -> ProgressGenerator[DemoReport]:
    """Write the demo study with its active demo models into ``out`` (a new folder)."""
    from core.models.pipeline import DiagnosisPipeline

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise StudyError("the demo folder exists and is not empty; remove it or choose another", out)
    with tempfile.TemporaryDirectory(prefix="vertebra-review-demo-") as temporary:
        work = Path(temporary)
        if detector is None or classifier is None:
            yield from _train_models(work)
            detector, classifier = work / "packages" / "detector", work / "packages" / "classifier"
        yield from generate_study(out, DEMO_STUDY)
        study = Study.open(out)
        _keep_one_agreed_case(study)
        yield Progress("compress", 0, 1, "JPEG 2000 lossless")
        compress_dicom(study)
        as_demo_package(detector, work / "demo" / "detector")
        as_demo_package(classifier, work / "demo" / "classifier")
        write_model_set(study.root / "models", DEMO_MODEL_ID, work / "demo" / "detector", work / "demo" / "classifier",
                        demo=True, data={"recipe": __doc__.split("\n\n")[1].replace("\n", " ")})
    Registry(study.root / "models").activate(DEMO_MODEL_ID)
    study.settings.model = DEMO_MODEL_ID
    study.save_settings()
    pipeline = DiagnosisPipeline.load(study.root / "models")
    report = yield from pipeline.diagnose_study(study)
    size = sum(f.stat().st_size for f in (study.root / "models").rglob("*") if f.is_file()) / 1e6
    return DemoReport(study.root, DEMO_MODEL_ID, report.slices, size)
